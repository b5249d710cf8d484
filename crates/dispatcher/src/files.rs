//! The files of simpler's two namings in the preinstall directory: an
//! installed `simpler_inner_<fp>.so` and the dispatcher's temp files,
//! both matched exactly (`simpler-abi` holds the one matcher of each).
//! Nothing else in the directory is ever looked at further.

use core::ffi::CStr;

use simpler_abi::bootstrap::REPORT_PATH_LEN;
use simpler_abi::fingerprint::is_temp_name;
use simpler_abi::maintenance::EntryKind;
use simpler_abi::PreinstallName;

use crate::cbuf::CBuf;
use crate::sys::{self, Dir, EntryStat, Errno};

/// A regular file of one of simpler's namings.
pub struct File<'a> {
    pub kind: EntryKind,
    /// The fingerprint of an installed runtime; 0 for a temp file.
    pub fingerprint: u64,
    pub name: &'a CStr,
    pub stat: EntryStat,
}

impl File<'_> {
    /// Newest sorts last; the fingerprint breaks ties between mtimes.
    pub fn key(&self) -> (i64, i64, u64) {
        (self.stat.mtime, self.stat.mtime_nsec, self.fingerprint)
    }
}

/// Calls `each` for every regular file (by `lstat`: never a symlink or a
/// directory) of simpler's namings in `dir`; an entry gone between the
/// listing and its `lstat` is skipped. Through `dyn`, so that one copy of
/// the loop serves every caller of a size-bounded SO.
pub fn each_file(
    dir: &CBuf<REPORT_PATH_LEN>,
    each: &mut dyn FnMut(&Dir, &File<'_>),
) -> Result<(), Errno> {
    let mut listing = sys::open_dir(dir)?;
    listing.for_each(|listing, name| {
        let bytes = name.to_bytes();
        let (kind, fingerprint) = match PreinstallName::parse_bytes(bytes) {
            Some(fp) => (EntryKind::Installed, fp),
            None if is_temp_name(bytes) => (EntryKind::Temp, 0),
            None => return,
        };
        match listing.lstat(name) {
            Ok(stat) if stat.regular => each(
                listing,
                &File {
                    kind,
                    fingerprint,
                    name,
                    stat,
                },
            ),
            _ => {}
        }
    });
    Ok(())
}
