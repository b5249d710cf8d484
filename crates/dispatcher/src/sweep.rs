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

use simpler_abi::bootstrap::REPORT_PATH_LEN;
use simpler_abi::maintenance::EntryKind;
use simpler_abi::names::{DEFAULT_TEMP_STALE_SECS, TEMP_STALE_SECS_ENV_C};

use crate::cbuf::CBuf;
use crate::files;
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
pub fn sweep(dir: &CBuf<REPORT_PATH_LEN>) -> Swept {
    let mut swept = Swept::default();
    let cutoff = sys::realtime_secs().saturating_sub(stale_secs());
    let listed = files::each_file(dir, &mut |listing, file| {
        if file.kind != EntryKind::Temp || file.stat.mtime >= cutoff {
            return;
        }
        match listing.unlink(file.name) {
            Ok(()) => swept.removed = swept.removed.saturating_add(1),
            // Gone already: another die's dispatcher swept it first.
            Err(libc::ENOENT) => {}
            Err(errno) => {
                swept.kept = swept.kept.saturating_add(1);
                swept.errno = errno;
            }
        }
    });
    if let Err(errno) = listed {
        swept.errno = errno;
    }
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

#[cfg(test)]
mod tests {
    use super::parse_secs;

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
