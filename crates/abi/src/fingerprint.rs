//! The content fingerprint (FNV-1a 64) and the preinstall file name built
//! from it. Host and dispatcher compute both independently from the same
//! bytes, so they agree on the file name with no other channel.

use core::hash::Hasher;

use crate::names::{NAME_FIELD_LEN, PREINSTALL_PREFIX, PREINSTALL_SUFFIX, PREINSTALL_TEMP_INFIX};

/// FNV-1a 64 of `bytes`.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

const PREFIX_LEN: usize = PREINSTALL_PREFIX.len();
const HEX_LEN: usize = 16;
/// Length of every preinstall basename, without its NUL.
pub const PREINSTALL_NAME_LEN: usize = PREFIX_LEN + HEX_LEN + PREINSTALL_SUFFIX.len();

// Every fingerprint formats to the same length, so this is the longest name:
// it must fit a 64-byte name field together with its NUL.
const _: () = assert!(PREINSTALL_NAME_LEN < NAME_FIELD_LEN);

/// `simpler_inner_<16 lower-case hex>.so`, formatted without allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreinstallName {
    // Always ASCII and NUL-terminated at PREINSTALL_NAME_LEN.
    buf: [u8; PREINSTALL_NAME_LEN + 1],
}

impl PreinstallName {
    /// The preinstall name for fingerprint `fp`.
    pub const fn new(fp: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; PREINSTALL_NAME_LEN + 1];
        let prefix = PREINSTALL_PREFIX.as_bytes();
        let suffix = PREINSTALL_SUFFIX.as_bytes();
        let mut i = 0;
        while i < PREFIX_LEN {
            buf[i] = prefix[i];
            i += 1;
        }
        let mut d = 0;
        while d < HEX_LEN {
            let nibble = (fp >> (4 * (HEX_LEN - 1 - d))) & 0xf;
            buf[PREFIX_LEN + d] = HEX[nibble as usize];
            d += 1;
        }
        let mut s = 0;
        while s < suffix.len() {
            buf[PREFIX_LEN + HEX_LEN + s] = suffix[s];
            s += 1;
        }
        Self { buf }
    }

    /// The preinstall name for the content `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::new(fingerprint(bytes))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // The buffer holds only ASCII written by `new`, so this never falls
        // back to the empty string.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The name's bytes, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let (name, _nul) = self.buf.split_at(PREINSTALL_NAME_LEN);
        name
    }

    /// The name's bytes with the terminating NUL.
    pub const fn as_bytes_with_nul(&self) -> &[u8; PREINSTALL_NAME_LEN + 1] {
        &self.buf
    }

    /// The name as a NUL-padded 64-byte field.
    pub const fn to_field(&self) -> [u8; NAME_FIELD_LEN] {
        let mut out = [0u8; NAME_FIELD_LEN];
        let mut i = 0;
        while i < PREINSTALL_NAME_LEN {
            out[i] = self.buf[i];
            i += 1;
        }
        out
    }

    /// The fingerprint encoded in a preinstall basename, if `name` is one.
    pub fn parse(name: &str) -> Option<u64> {
        Self::parse_bytes(name.as_bytes())
    }

    /// [`parse`](Self::parse) for a name that may not be UTF-8 (a
    /// directory entry): exactly `simpler_inner_<16 lower-case hex>.so`.
    pub fn parse_bytes(name: &[u8]) -> Option<u64> {
        let mut rest = Cursor(name);
        let ok = rest.literal(PREINSTALL_PREFIX.as_bytes());
        let fp = rest.hex16();
        (ok && rest.literal(PREINSTALL_SUFFIX.as_bytes()) && rest.0.is_empty())
            .then_some(fp)
            .flatten()
    }
}

/// Whether `name` is exactly what the dispatcher names a temp file:
/// `.simpler_inner_<16 hex>.so.tmp.<dec>.<dec>.<dec>.<dec>.<16 hex>.<16 hex>`
/// (see [`PREINSTALL_TEMP_INFIX`]), hex in lower case, decimals without
/// leading zeros. Nothing looser: the sweep and the maintenance commands
/// remove files by this test.
pub fn is_temp_name(name: &[u8]) -> bool {
    let mut rest = Cursor(name);
    rest.literal(b".")
        && rest.literal(PREINSTALL_PREFIX.as_bytes())
        && rest.hex16().is_some()
        && rest.literal(PREINSTALL_SUFFIX.as_bytes())
        && rest.literal(PREINSTALL_TEMP_INFIX.as_bytes())
        && rest.decimal()
        && rest.literal(b".")
        && rest.decimal()
        && rest.literal(b".")
        && rest.decimal()
        && rest.literal(b".")
        && rest.decimal()
        && rest.literal(b".")
        && rest.hex16().is_some()
        && rest.literal(b".")
        && rest.hex16().is_some()
        && rest.0.is_empty()
}

/// The longest name [`is_temp_name`] accepts: the dot, the preinstall name,
/// the infix, four `u64` decimals (20 digits) with their dots, and two
/// numbers of 16 hex digits with the dot between.
pub const TEMP_NAME_MAX_LEN: usize =
    1 + PREINSTALL_NAME_LEN + PREINSTALL_TEMP_INFIX.len() + 4 * 21 + 2 * HEX_LEN + 1;

/// What is left of a name being matched. Every step is checked, so the
/// dispatcher links it without a panic path.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn literal(&mut self, text: &[u8]) -> bool {
        self.take_if(text.len(), |head| head == text)
    }

    /// 16 lower-case hex digits, as the dispatcher writes them, and their
    /// value.
    fn hex16(&mut self) -> Option<u64> {
        let mut value = 0u64;
        let ok = self.take_if(HEX_LEN, |head| {
            head.iter().all(|&b| {
                let digit = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => return false,
                };
                value = (value << 4) | u64::from(digit);
                true
            })
        });
        ok.then_some(value)
    }

    /// A `u64` in decimal, as the dispatcher writes it: 1 to 20 digits, no
    /// leading zero unless the number is 0.
    fn decimal(&mut self) -> bool {
        let digits = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let leading_zero = digits > 1 && self.0.first() == Some(&b'0');
        (1..=20).contains(&digits) && !leading_zero && self.take_if(digits, |_| true)
    }

    /// Consumes the next `len` bytes if there are that many and `accept`
    /// takes them.
    fn take_if(&mut self, len: usize, accept: impl FnOnce(&[u8]) -> bool) -> bool {
        match self.0.split_at_checked(len) {
            Some((head, tail)) if accept(head) => {
                self.0 = tail;
                true
            }
            _ => false,
        }
    }
}

impl core::fmt::Display for PreinstallName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::fmt::Debug for PreinstallName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PreinstallName({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_fnv1a_64_vectors() {
        assert_eq!(fingerprint(b""), 0xcbf29ce484222325);
        assert_eq!(fingerprint(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fingerprint(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn preinstall_name_format() {
        let name = PreinstallName::new(0x0123_4567_89ab_cdef);
        assert_eq!(name.as_str(), "simpler_inner_0123456789abcdef.so");
        assert_eq!(name.as_str().len(), 33);
        assert_eq!(name.as_bytes_with_nul()[33], 0);
        assert_eq!(
            PreinstallName::new(0).as_str(),
            "simpler_inner_0000000000000000.so"
        );
        assert_eq!(
            PreinstallName::of(b"a").as_str(),
            "simpler_inner_af63dc4c8601ec8c.so"
        );
        let field = name.to_field();
        assert_eq!(crate::names::field_str(&field), Some(name.as_str()));
    }

    #[test]
    fn parse_round_trips_and_rejects() {
        for fp in [0, 1, u64::MAX, 0xaf63dc4c8601ec8c] {
            assert_eq!(
                PreinstallName::parse(PreinstallName::new(fp).as_str()),
                Some(fp)
            );
        }
        assert_eq!(
            PreinstallName::parse("simpler_inner_AF63DC4C8601EC8C.so"),
            None
        );
        assert_eq!(PreinstallName::parse("simpler_inner_af63.so"), None);
        assert_eq!(PreinstallName::parse("libfoo.so"), None);
        for near in [
            "simpler_inner_af63dc4c8601ec8c.so.",
            "simpler_inner_af63dc4c8601ec8c.s",
            "simpler_inner_af63dc4c8601ec8cc.so",
            "simpler_inner_af63dc4c8601ec8g.so",
            "xsimpler_inner_af63dc4c8601ec8c.so",
            ".simpler_inner_af63dc4c8601ec8c.so",
        ] {
            assert_eq!(PreinstallName::parse(near), None, "{near}");
        }
        assert_eq!(
            PreinstallName::parse_bytes(b"simpler_inner_\xff\xfe3dc4c8601ec8c.so"),
            None
        );
    }

    const GOOD: &str =
        ".simpler_inner_0123456789abcdef.so.tmp.3.41.42.0.17f0c3a2b4d5e6f7.00ff00ff00ff00ff";

    #[test]
    fn temp_names_match_exactly_the_dispatchers() {
        extern crate std;
        use std::borrow::ToOwned;
        use std::format;
        use std::string::String;
        assert!(is_temp_name(GOOD.as_bytes()));
        let longest = ".simpler_inner_ffffffffffffffff.so.tmp.18446744073709551615.\
                       18446744073709551615.18446744073709551615.18446744073709551615.\
                       0000000000000000.ffffffffffffffff";
        assert!(is_temp_name(longest.as_bytes()));
        assert_eq!(longest.len(), TEMP_NAME_MAX_LEN);
        let near_misses = [
            String::new(),
            // The installed file, and the temp name without its dot.
            "simpler_inner_0123456789abcdef.so".to_owned(),
            GOOD[1..].to_owned(),
            // Upper-case or short hex in the fingerprint, clock or random.
            GOOD.replace("abcdef.so", "ABCDEF.so"),
            GOOD.replace("0123456789abcdef", "0123456789abcde"),
            GOOD.replace(".17f0c3a2b4d5e6f7", ".17f0c3a2b4d5e6f"),
            GOOD.replace(".00ff00ff00ff00ff", ".00ff00ff00ff00f"),
            GOOD.replace(".00ff00ff00ff00ff", ".00ff00ff00ff00fg"),
            // Something after the name, or a part missing.
            format!("{GOOD}.partial"),
            format!("{GOOD}x"),
            GOOD.replace(".0.", "."),
            // A leading zero, an empty number, or more than 20 digits.
            GOOD.replace(".41.", ".041."),
            GOOD.replace(".41.", ".."),
            GOOD.replace(".41.", ".123456789012345678901."),
            // Another infix or suffix.
            GOOD.replace(".tmp.", ".tmp"),
            GOOD.replace(".so.", ".os."),
        ];
        for name in near_misses {
            assert!(!is_temp_name(name.as_bytes()), "{name:?}");
        }
    }
}
