//! Removing temp files that earlier writers left behind.
//!
//! A writer that dies mid-write (its host was killed, so its AICPU process
//! was too) leaves its temp file in the preinstall directory, and nothing
//! else ever removes it: on a device that directory is root-owned. So each
//! install first removes every *regular file* there whose name is exactly
//! of the dispatcher's temp naming (see the crate docs) and whose mtime is
//! more than the stale age in the past. A live writer, on another die
//! sharing the directory, moves its file's mtime forward with every write
//! and finishes within seconds, so it is never that far behind.
//!
//! Nothing else is touched: not the installed `simpler_inner_<fp>.so`
//! files, not a name that merely looks similar, not a symlink (checked with
//! `lstat`, removed with `unlinkat`, neither follows a link) nor a
//! directory. The sweep never fails the install: an unreadable directory or
//! a file that cannot be removed is only logged.

use simpler_abi::names::{
    DEFAULT_TEMP_STALE_SECS, PREINSTALL_PREFIX, PREINSTALL_SUFFIX, PREINSTALL_TEMP_INFIX,
    TEMP_STALE_SECS_ENV_C,
};

use crate::cbuf::CBuf;
use crate::sys::{self, Errno};

/// What a sweep did.
#[derive(Clone, Copy, Default)]
pub struct Swept {
    /// Stale temp files removed.
    pub removed: u32,
    /// Stale temp files that could not be removed.
    pub kept: u32,
    /// The errno of the last failure (listing the directory, or removing a
    /// file), 0 if nothing failed.
    pub errno: Errno,
}

/// Removes the stale temp files of the dispatcher's naming in `dir`.
pub fn sweep<const N: usize>(dir: &CBuf<N>) -> Swept {
    let mut swept = Swept::default();
    let mut listing = match sys::open_dir(dir) {
        Ok(listing) => listing,
        Err(errno) => {
            swept.errno = errno;
            return swept;
        }
    };
    let cutoff = sys::realtime_secs().saturating_sub(stale_secs());
    listing.for_each(|listing, name| {
        if !is_temp_name(name.to_bytes()) {
            return;
        }
        let result = match listing.lstat(name) {
            Ok(stat) if stat.regular && stat.mtime < cutoff => listing.unlink(name),
            Ok(_) => return,
            Err(errno) => Err(errno),
        };
        match result {
            Ok(()) => swept.removed = swept.removed.saturating_add(1),
            // Gone already: another die's dispatcher swept it first.
            Err(libc::ENOENT) => {}
            Err(errno) => {
                swept.kept = swept.kept.saturating_add(1);
                swept.errno = errno;
            }
        }
    });
    swept
}

/// The stale age in seconds: `SIMPLER_AICPU_TEMP_STALE_SECS` when it is a
/// decimal number, else the default.
fn stale_secs() -> i64 {
    let secs = sys::getenv(TEMP_STALE_SECS_ENV_C)
        .and_then(parse_secs)
        .unwrap_or(DEFAULT_TEMP_STALE_SECS);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// A non-empty run of ASCII digits as a number, saturating at `u64::MAX`.
fn parse_secs(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut value = 0u64;
    for &byte in text {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value
            .saturating_mul(10)
            .saturating_add(u64::from(byte - b'0'));
    }
    Some(value)
}

/// Whether `name` is exactly what the dispatcher names a temp file:
/// `.simpler_inner_<16 hex>.so.tmp.<dec>.<dec>.<dec>.<dec>.<16 hex>.<16 hex>`,
/// hex in lower case, decimals without leading zeros.
pub fn is_temp_name(name: &[u8]) -> bool {
    let mut rest = Cursor(name);
    rest.literal(b".")
        && rest.literal(PREINSTALL_PREFIX.as_bytes())
        && rest.hex16()
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
        && rest.hex16()
        && rest.literal(b".")
        && rest.hex16()
        && rest.0.is_empty()
}

/// What is left of a name being matched.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn literal(&mut self, text: &[u8]) -> bool {
        self.take_if(text.len(), |head| head == text)
    }

    /// 16 lower-case hex digits, as `CBuf::push_hex` writes them.
    fn hex16(&mut self) -> bool {
        self.take_if(16, |head| {
            head.iter()
                .all(|&b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    }

    /// A `u64` in decimal, as `CBuf::push_dec` writes it: 1 to 20 digits,
    /// no leading zero unless the number is 0.
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

#[cfg(test)]
mod tests {
    use super::{is_temp_name, parse_secs};

    const GOOD: &str =
        ".simpler_inner_0123456789abcdef.so.tmp.3.41.42.0.17f0c3a2b4d5e6f7.00ff00ff00ff00ff";

    #[test]
    fn matches_exactly_the_dispatchers_temp_names() {
        assert!(is_temp_name(GOOD.as_bytes()));
        assert!(is_temp_name(
            ".simpler_inner_ffffffffffffffff.so.tmp.18446744073709551615.1.1.4294967295.0000000000000000.ffffffffffffffff"
                .as_bytes()
        ));
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

    #[test]
    fn stale_seconds_are_plain_decimals() {
        assert_eq!(parse_secs(b"0"), Some(0));
        assert_eq!(parse_secs(b"600"), Some(600));
        assert_eq!(parse_secs(b"99999999999999999999999"), Some(u64::MAX));
        for bad in [&b""[..], b"-1", b"1s", b" 1", b"0x10"] {
            assert_eq!(parse_secs(bad), None, "{bad:?}");
        }
    }
}
