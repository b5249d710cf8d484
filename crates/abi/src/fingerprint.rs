//! The content fingerprint (FNV-1a 64) and the preinstall file name built
//! from it. Host and dispatcher compute both independently from the same
//! bytes, so they agree on the file name with no other channel.

use core::hash::Hasher;

use crate::names::{NAME_FIELD_LEN, PREINSTALL_PREFIX, PREINSTALL_SUFFIX};

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
        let hex = name
            .strip_prefix(PREINSTALL_PREFIX)?
            .strip_suffix(PREINSTALL_SUFFIX)?;
        if hex.len() != HEX_LEN || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
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
    }
}
