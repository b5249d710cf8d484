//! The maintenance commands on the preinstall directory: list, remove and
//! gc of the files of simpler's two namings (an installed
//! `simpler_inner_<fp>.so`, the dispatcher's temp files), nothing else.
//!
//! Only regular files count (by `lstat`: a symlink or directory with one of
//! the names is neither listed nor removed), and removal is `unlinkat` in
//! the directory. Removing a file an AICPU process has loaded is harmless:
//! the scheduler keeps its mapping and never opens the name again.
//!
//! Gc keeps the `keep` installed runtimes with the newest mtime (the time
//! of their install's last write), ties broken by fingerprint so that the
//! order is total. Without allocation, it counts for each installed runtime
//! the newer ones in a second listing: quadratic in the number of files of
//! simpler's naming, which a gc keeps small.
//!
//! The reply is written once, at the end, so a host that reads it sees a
//! command that ran to completion.

use simpler_abi::bootstrap::REPORT_PATH_LEN;
use simpler_abi::maintenance::{
    Command, EntryAction, EntryKind, MaintenanceEntry, MaintenanceReply, ReplyStatus,
    ENTRY_NAME_LEN, MAINTENANCE_VERSION, MAX_REPLY_ENTRIES, REPLY_MAGIC, REPLY_TRUNCATED,
};

use crate::cbuf::CBuf;
use crate::ffi::Maintain;
use crate::files::{each_file, File};
use crate::install::preinstall_dir;
use crate::sys::{self, Dir, Errno};

/// Runs the command `m` asks for, writes its reply and returns it.
pub fn run(m: &Maintain<'_>) -> MaintenanceReply {
    let now = sys::realtime_secs();
    let mut dir = CBuf::<REPORT_PATH_LEN>::new();
    let mut out = Out { m, total: 0 };
    let (status, errno) = match execute(m, &mut out, &mut dir, now) {
        Ok(()) => (ReplyStatus::Ok, 0),
        Err(failed) => failed,
    };
    let count = out.total.min(m.args.capacity);
    let reply = MaintenanceReply {
        magic: REPLY_MAGIC,
        version: MAINTENANCE_VERSION,
        command: m.command,
        status: status as u32,
        errno,
        count,
        total: out.total,
        flags: if count < out.total {
            REPLY_TRUNCATED
        } else {
            0
        },
        now,
        dir: dir.to_field(),
    };
    m.write_reply(&reply);
    reply
}

type Failed = (ReplyStatus, Errno);

fn execute(
    m: &Maintain<'_>,
    out: &mut Out<'_>,
    dir: &mut CBuf<REPORT_PATH_LEN>,
    now: i64,
) -> Result<(), Failed> {
    let args = &m.args;
    let bad = |errno| (ReplyStatus::BadRequest, errno);
    if args.version != MAINTENANCE_VERSION {
        return Err(bad(libc::EPROTO));
    }
    let command = Command::from_raw(m.command).ok_or(bad(libc::ENOSYS))?;
    if args.capacity > MAX_REPLY_ENTRIES || args.fingerprint_count > MAX_REPLY_ENTRIES {
        return Err(bad(libc::EINVAL));
    }
    preinstall_dir(dir).map_err(|_| (ReplyStatus::NoDirectory, libc::ENAMETOOLONG))?;
    let listed = match command {
        Command::List => each_file(dir, &mut |_, file| out.push(file, EntryAction::Listed, 0)),
        Command::Remove => remove(m, out, dir),
        Command::Gc => gc(m, out, dir, now),
    };
    listed.map_err(|errno| (ReplyStatus::NoDirectory, errno))
}

/// Where entries go: the reply, as far as it has room; `total` counts all.
struct Out<'a> {
    m: &'a Maintain<'a>,
    total: u32,
}

impl Out<'_> {
    fn push(&mut self, file: &File<'_>, action: EntryAction, errno: Errno) {
        let mut name = CBuf::<ENTRY_NAME_LEN>::new();
        // Every name of either naming fits (checked in `simpler-abi`).
        let _ = name.push(file.name.to_bytes());
        let entry = MaintenanceEntry {
            kind: file.kind as u32,
            action: action as u32,
            errno,
            mtime_nsec: file.stat.mtime_nsec as u32,
            size: file.stat.size,
            mtime: file.stat.mtime,
            name: name.to_field(),
        };
        self.m.write_entry(self.total, &entry);
        self.total = self.total.saturating_add(1);
    }

    /// Unlinks `file` and records it, unless it is gone already (another
    /// die's dispatcher removed it first).
    fn remove(&mut self, listing: &Dir, file: &File<'_>) {
        match listing.unlink(file.name) {
            Ok(()) => self.push(file, EntryAction::Removed, 0),
            Err(libc::ENOENT) => {}
            Err(errno) => self.push(file, EntryAction::Failed, errno),
        }
    }
}

/// Removes the installed runtimes whose fingerprints the arguments name:
/// one entry per file removed or not removable. A fingerprint without an
/// entry had no file; the host, which sent the list, reports those.
fn remove(m: &Maintain<'_>, out: &mut Out<'_>, dir: &CBuf<REPORT_PATH_LEN>) -> Result<(), Errno> {
    let count = m.args.fingerprint_count;
    each_file(dir, &mut |listing, file| {
        if file.kind == EntryKind::Installed
            && (0..count).any(|i| m.fingerprint(i) == Some(file.fingerprint))
        {
            out.remove(listing, file);
        }
    })
}

/// Keeps the `keep` newest installed runtimes and the temp files not
/// older than `stale_secs`; removes the other files of both namings.
///
/// An installed runtime goes when at least `keep` installed runtimes are
/// newer ([`File::key`]), counted in a second listing. Removing in any
/// order gives the same result: only files with `keep` newer ones go, so
/// each of the `keep` newest stays to be counted.
fn gc(
    m: &Maintain<'_>,
    out: &mut Out<'_>,
    dir: &CBuf<REPORT_PATH_LEN>,
    now: i64,
) -> Result<(), Errno> {
    let stale = i64::try_from(m.args.stale_secs).unwrap_or(i64::MAX);
    let cutoff = now.saturating_sub(stale);
    let keep = m.args.keep;
    each_file(dir, &mut |listing, file| {
        let doomed = match file.kind {
            EntryKind::Installed => {
                let key = file.key();
                let mut newer = 0u32;
                // Unreadable now, although listed a moment ago: keep it.
                let counted = each_file(dir, &mut |_, other| {
                    if other.kind == EntryKind::Installed && other.key() > key {
                        newer = newer.saturating_add(1);
                    }
                });
                counted.is_ok() && newer >= keep
            }
            EntryKind::Temp => file.stat.mtime < cutoff,
        };
        if doomed {
            out.remove(listing, file);
        }
    })
}
