//! Maintenance commands: listing and cleaning the preinstall directory
//! through the same KFC launch as the bootstrap, so they need no privilege
//! on the device either.
//!
//! The host tags [`DeviceArgs::command`](crate::DeviceArgs::command) with
//! [`COMMAND_TAG`] and a [`Command`], and points
//! [`DeviceArgs::maintenance`](crate::DeviceArgs::maintenance) at a
//! [`MaintenanceArgs`]. The dispatcher answers in the [`MaintenanceReply`]
//! that names, followed by up to `capacity` [`MaintenanceEntry`]s. A
//! command word without the tag (every host before these commands wrote
//! 0) asks for the install, as before.
//!
//! A dispatcher that predates the commands ignores the tag and sees no
//! runtime SO (`inner_so_bin` is 0): it refuses the request as a bootstrap
//! (a `Validate` report, errno 22, when `DeviceArgs::report` names one)
//! without touching a file, and never writes [`REPLY_MAGIC`]. A current
//! dispatcher never writes the bootstrap report for a command, so the host
//! tells the two apart.

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;
use crate::bootstrap::REPORT_PATH_LEN;

/// Upper 32 bits of a maintenance command word (`"SMNT"` little-endian).
pub const COMMAND_TAG: u32 = u32::from_le_bytes(*b"SMNT");
/// Version of [`MaintenanceArgs`], [`MaintenanceReply`] and
/// [`MaintenanceEntry`]: sent by the host, echoed by the dispatcher.
pub const MAINTENANCE_VERSION: u32 = 1;
/// [`MaintenanceReply::magic`] once a dispatcher that knows the commands
/// wrote it (`"SMRP"` little-endian).
pub const REPLY_MAGIC: u32 = u32::from_le_bytes(*b"SMRP");
/// Most entries a reply may have room for, and most fingerprints one
/// [`Command::Remove`] may name.
pub const MAX_REPLY_ENTRIES: u32 = 1 << 16;
/// Capacity of [`MaintenanceEntry::name`], NUL included: the longest temp
/// name ([`crate::fingerprint::TEMP_NAME_MAX_LEN`]) fits.
pub const ENTRY_NAME_LEN: usize = 256;
const _: () = assert!(crate::fingerprint::TEMP_NAME_MAX_LEN < ENTRY_NAME_LEN);
/// [`MaintenanceReply::flags`] bit: the command produced more entries than
/// the reply had room for ([`MaintenanceReply::total`] says how many).
pub const REPLY_TRUNCATED: u32 = 1;

/// A maintenance command, in the low 32 bits of a tagged command word.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// One entry per file of simpler's naming in the preinstall directory.
    List = 1,
    /// Remove the installed runtimes with the fingerprints the arguments
    /// name; one entry per file removed or not removable (a fingerprint
    /// without an entry has no installed file).
    Remove = 2,
    /// Keep the `keep` most recently installed runtimes, remove the other
    /// installed ones and the temp files older than `stale_secs`; one
    /// entry per file removed or not removable.
    Gc = 3,
}

impl Command {
    /// The tagged command word for [`DeviceArgs::command`](crate::DeviceArgs::command).
    pub const fn word(self) -> u64 {
        ((COMMAND_TAG as u64) << 32) | self as u64
    }

    /// Decodes the low half of a tagged word.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::List),
            2 => Some(Self::Remove),
            3 => Some(Self::Gc),
            _ => None,
        }
    }

    /// Lower-case name, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Remove => "remove",
            Self::Gc => "gc",
        }
    }
}

/// The command a [`DeviceArgs::command`](crate::DeviceArgs::command) word
/// carries: `Some(low 32 bits)` when the word has [`COMMAND_TAG`] in its
/// upper half (the number may be one this build does not know), `None`
/// for an install.
pub const fn tagged_command(word: u64) -> Option<u32> {
    if (word >> 32) as u32 == COMMAND_TAG {
        Some(word as u32)
    } else {
        None
    }
}

/// What the host asks for (device memory), at
/// [`DeviceArgs::maintenance`](crate::DeviceArgs::maintenance).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MaintenanceArgs {
    /// [`MAINTENANCE_VERSION`].
    pub version: u32,
    /// [`Command::Gc`]: installed runtimes to keep.
    pub keep: u32,
    /// [`Command::Gc`]: temp files whose mtime is more than this many
    /// seconds before the device's clock are removed.
    pub stale_secs: u64,
    /// [`Command::Remove`]: device address of `fingerprint_count` `u64`s
    /// (any alignment).
    pub fingerprints: u64,
    /// [`Command::Remove`]: how many, at most [`MAX_REPLY_ENTRIES`].
    pub fingerprint_count: u32,
    /// Entries the reply has room for after its header, at most
    /// [`MAX_REPLY_ENTRIES`].
    pub capacity: u32,
    /// Device address of the [`MaintenanceReply`], followed by `capacity`
    /// [`MaintenanceEntry`]s.
    pub reply: u64,
    /// Zero.
    pub reserved: u64,
}

assert_offsets!(MaintenanceArgs, size 48, {
    version: 0, keep: 4, stale_secs: 8, fingerprints: 16,
    fingerprint_count: 24, capacity: 28, reply: 32, reserved: 40,
});

/// How a command went, in [`MaintenanceReply::status`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyStatus {
    /// The command ran; the entries say what happened to each file.
    Ok = 0,
    /// The dispatcher refused the arguments (an unknown command or
    /// version, a bound exceeded, a null address): `errno` says which.
    BadRequest = 1,
    /// The preinstall directory could not be opened (or its path is too
    /// long): `errno`, and `dir`.
    NoDirectory = 2,
}

impl ReplyStatus {
    /// Decodes a raw status word.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Ok),
            1 => Some(Self::BadRequest),
            2 => Some(Self::NoDirectory),
            _ => None,
        }
    }
}

/// The dispatcher's answer (device memory), zero-filled by the host before
/// the launch. The entries follow it at offset 296 (8-aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MaintenanceReply {
    /// [`REPLY_MAGIC`] once written.
    pub magic: u32,
    /// The dispatcher's [`MAINTENANCE_VERSION`].
    pub version: u32,
    /// The command number as received.
    pub command: u32,
    /// A [`ReplyStatus`].
    pub status: u32,
    /// 0, or the errno of a [`ReplyStatus`] other than `Ok`.
    pub errno: i32,
    /// Entries written after the header: `min(total, capacity)`.
    pub count: u32,
    /// Entries the command produced.
    pub total: u32,
    /// [`REPLY_TRUNCATED`] when `total > count`.
    pub flags: u32,
    /// The device's `CLOCK_REALTIME` in seconds when the command started:
    /// entry ages are measured against it.
    pub now: i64,
    /// The preinstall directory, NUL-terminated.
    pub dir: [u8; REPORT_PATH_LEN],
}

assert_offsets!(MaintenanceReply, size 296, {
    magic: 0, version: 4, command: 8, status: 12, errno: 16, count: 20,
    total: 24, flags: 28, now: 32, dir: 40,
});

impl MaintenanceReply {
    /// The directory as text, if it is NUL-terminated UTF-8.
    pub fn dir_str(&self) -> Option<&str> {
        crate::names::field_str(&self.dir)
    }
}

/// Which naming a file has, in [`MaintenanceEntry::kind`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// `simpler_inner_<fp>.so`: an installed runtime.
    Installed = 1,
    /// The dispatcher's temp naming: a write in progress or left behind.
    Temp = 2,
}

impl EntryKind {
    /// Decodes a raw kind word.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Installed),
            2 => Some(Self::Temp),
            _ => None,
        }
    }

    /// `installed` or `temp`, as `simpler device ls` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Installed => "installed",
            Self::Temp => "temp",
        }
    }
}

/// What the command did with a file, in [`MaintenanceEntry::action`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryAction {
    /// Listed ([`Command::List`]).
    Listed = 0,
    /// Removed.
    Removed = 1,
    /// Not removed: `errno` says why.
    Failed = 2,
}

impl EntryAction {
    /// Decodes a raw action word.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Listed),
            1 => Some(Self::Removed),
            2 => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One file of simpler's naming (device memory, after the reply header).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MaintenanceEntry {
    /// An [`EntryKind`].
    pub kind: u32,
    /// An [`EntryAction`].
    pub action: u32,
    /// 0, or for [`EntryAction::Failed`] the errno of the removal.
    pub errno: i32,
    /// Nanoseconds of the last modification.
    pub mtime_nsec: u32,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, `CLOCK_REALTIME` seconds.
    pub mtime: i64,
    /// The file name (no directory), NUL-terminated.
    pub name: [u8; ENTRY_NAME_LEN],
}

assert_offsets!(MaintenanceEntry, size 288, {
    kind: 0, action: 4, errno: 8, mtime_nsec: 12, size: 16, mtime: 24,
    name: 32,
});

impl MaintenanceEntry {
    /// The name as text, if it is NUL-terminated UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        crate::names::field_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_carry_the_tag() {
        for command in [Command::List, Command::Remove, Command::Gc] {
            assert_eq!(tagged_command(command.word()), Some(command as u32));
            assert_eq!(Command::from_raw(command as u32), Some(command));
        }
        // Every earlier host wrote 0; reserved noise without the tag is an
        // install too.
        assert_eq!(tagged_command(0), None);
        assert_eq!(tagged_command(Command::List as u64), None);
        assert_eq!(tagged_command(u64::MAX), None);
        assert_eq!(tagged_command(u64::from(COMMAND_TAG) << 32), Some(0));
        assert_eq!(Command::from_raw(0), None);
        assert_eq!(Command::from_raw(4), None);
    }

    #[test]
    fn magics_spell_their_names() {
        assert_eq!(&COMMAND_TAG.to_le_bytes(), b"SMNT");
        assert_eq!(&REPLY_MAGIC.to_le_bytes(), b"SMRP");
        assert_ne!(REPLY_MAGIC, crate::bootstrap::REPORT_MAGIC);
        assert_eq!(core::mem::size_of::<MaintenanceReply>() % 8, 0);
    }
}
