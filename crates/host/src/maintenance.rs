//! Seeing and cleaning what simpler left in a device's preinstall
//! directory: the installed runtimes (`simpler_inner_<fp>.so`) and the
//! dispatcher's temp files. The directory is root-owned on a device, so
//! these go through the same no-sudo path as the bootstrap: one
//! `KERNEL_TYPE_AICPU_KFC` launch whose `DeviceArgs` carries a maintenance
//! command instead of a runtime SO (layouts in `docs/abi.md`). Files of any
//! other naming are never touched.
//!
//! Each call opens the device, sends one launch, reads the reply and frees
//! every device buffer before it returns, on every path.
//!
//! ```no_run
//! # fn main() -> Result<(), simpler_host::Error> {
//! use simpler_host::{maintenance, Cann, CannSource, Role, SoImage};
//!
//! let cann = Cann::load(&CannSource::Simulator)?;
//! let dispatcher = SoImage::artifact(Role::Dispatcher, cann.device_machine())?;
//! for file in maintenance::list(&cann, 0, &dispatcher)?.files {
//!     println!("{} {} {}", file.kind.name(), file.name, file.size);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Removing a runtime another process uses is harmless: an AICPU process
//! that loaded it keeps its mapping, and the scheduler never opens a name
//! again once loaded. A process that installed it earlier and builds a new
//! runner after the removal reinstalls it transparently: init fails on the
//! cached install, and [`DeviceRunnerBuilder::build`](crate::DeviceRunnerBuilder::build)
//! then forgets the entry and bootstraps once more.

use std::fmt;
use std::mem::size_of;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use simpler_abi::bootstrap::{
    BOOTSTRAP_KERNEL_NAME_OFFSET, BOOTSTRAP_SO_NAME_OFFSET, REPORT_MAGIC,
};
use simpler_abi::maintenance::{
    Command, EntryAction, MaintenanceArgs, MaintenanceEntry, MaintenanceReply, ReplyStatus,
    MAINTENANCE_VERSION, MAX_REPLY_ENTRIES, REPLY_MAGIC,
};
use simpler_abi::names::{DEFAULT_TEMP_STALE_SECS, KERNEL_TYPE_AICPU_KFC, KFC_OP_NAME_C};
use simpler_abi::{BootstrapArgs, BootstrapReport, DeviceArgs, PreinstallName};

use crate::cann::{Cann, LaunchDesc, Stream};
use crate::elf::Role;
use crate::error::{CannError, Error};
use crate::image::SoImage;

pub use simpler_abi::maintenance::EntryKind as FileKind;

/// Installed runtimes [`Maintenance::gc`] keeps unless told otherwise.
pub const DEFAULT_KEEP: u32 = 8;
/// Age past which [`Maintenance::gc`] removes a temp file unless told
/// otherwise: the age past which every bootstrap sweeps them anyway.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(DEFAULT_TEMP_STALE_SECS);
/// Entries a reply has room for unless told otherwise
/// ([`Maintenance::capacity`]).
pub const DEFAULT_CAPACITY: u32 = 1024;

/// [`Maintenance::list`] on `device` with the defaults.
pub fn list(cann: &Cann, device: i32, dispatcher: &SoImage) -> Result<Listing, Error> {
    Maintenance::new(cann, device, dispatcher.clone()).list()
}

/// [`Maintenance::remove`] on `device` with the defaults.
pub fn remove(
    cann: &Cann,
    device: i32,
    dispatcher: &SoImage,
    fingerprints: &[u64],
) -> Result<Removal, Error> {
    Maintenance::new(cann, device, dispatcher.clone()).remove(fingerprints)
}

/// [`Maintenance::gc`] on `device` with the defaults.
pub fn gc(
    cann: &Cann,
    device: i32,
    dispatcher: &SoImage,
    keep: u32,
    stale_after: Duration,
) -> Result<Removal, Error> {
    Maintenance::new(cann, device, dispatcher.clone()).gc(keep, stale_after)
}

/// Maintenance of one device's preinstall directory, through `dispatcher`.
///
/// The dispatcher that answers is the one the device's AICPU process
/// loaded first (CANN's KFC server keeps it), which is `dispatcher` unless
/// an earlier one was loaded there; one that predates these commands is
/// reported as [`MaintenanceFailure::OutdatedDispatcher`], having touched
/// nothing.
#[derive(Clone, Debug)]
#[must_use = "a maintenance handle does nothing until a command is called"]
pub struct Maintenance {
    cann: Cann,
    device: i32,
    dispatcher: SoImage,
    timeout: Option<Duration>,
    capacity: u32,
}

impl Maintenance {
    /// Commands on `device`, sent with `dispatcher` (an image checked for
    /// [`Role::Dispatcher`]).
    pub fn new(cann: &Cann, device: i32, dispatcher: SoImage) -> Self {
        Self {
            cann: cann.clone(),
            device,
            dispatcher,
            timeout: Some(Duration::from_secs(60)),
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// How long to wait for the launch (default 60 s; `None`: no limit).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Entries the reply has room for (default [`DEFAULT_CAPACITY`], at
    /// most 65 536). A command that finds more does all its work but
    /// reports only this many ([`Listing::truncated`],
    /// [`Removal::truncated`]).
    pub fn capacity(mut self, entries: u32) -> Self {
        self.capacity = entries;
        self
    }

    /// Every file of simpler's naming in the preinstall directory:
    /// installed runtimes newest first, then temp files newest first.
    pub fn list(&self) -> Result<Listing, Error> {
        let answer = self.send(
            Command::List,
            MaintenanceArgs::default(),
            &[],
            self.capacity,
        )?;
        let dir = answer.dir();
        let (total, truncated) = (answer.reply.total, answer.truncated());
        let mut files = answer.into_files();
        sort_newest_first(&mut files);
        Ok(Listing {
            device: self.device,
            dir,
            total,
            truncated,
            files,
        })
    }

    /// Removes the installed runtimes with these fingerprints; one that
    /// has no file is listed in [`Removal::missing`].
    pub fn remove(&self, fingerprints: &[u64]) -> Result<Removal, Error> {
        let mut wanted = fingerprints.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.len() > MAX_REPLY_ENTRIES as usize {
            return Err(Error::InvalidArgument(format!(
                "{} fingerprints in one removal; at most {MAX_REPLY_ENTRIES}",
                wanted.len()
            )));
        }
        // Room for an entry per fingerprint: never truncated, so what has
        // no entry has no file.
        let capacity = self.capacity.max(wanted.len() as u32);
        let answer = self.send(
            Command::Remove,
            MaintenanceArgs::default(),
            &wanted,
            capacity,
        )?;
        let mut removal = answer.removal(self.device);
        removal.missing = wanted
            .into_iter()
            .filter(|fp| {
                !removal
                    .removed
                    .iter()
                    .map(|f| f.fingerprint)
                    .chain(removal.failed.iter().map(|f| f.file.fingerprint))
                    .any(|got| got == Some(*fp))
            })
            .collect();
        Ok(removal)
    }

    /// Keeps the `keep` most recently installed runtimes, removes the
    /// other installed ones and every temp file last written more than
    /// `stale_after` ago (whole seconds, by the device's clock).
    pub fn gc(&self, keep: u32, stale_after: Duration) -> Result<Removal, Error> {
        let args = MaintenanceArgs {
            keep,
            stale_secs: stale_after.as_secs(),
            ..MaintenanceArgs::default()
        };
        Ok(self
            .send(Command::Gc, args, &[], self.capacity)?
            .removal(self.device))
    }

    /// One launch of `command`; its reply, checked.
    fn send(
        &self,
        command: Command,
        mut args: MaintenanceArgs,
        fingerprints: &[u64],
        capacity: u32,
    ) -> Result<Answer, Error> {
        let fail = |failure| MaintenanceError {
            device: self.device,
            command,
            failure,
        };
        if self.device < 0 {
            return Err(Error::InvalidArgument(format!(
                "device id {} is negative",
                self.device
            )));
        }
        if capacity > MAX_REPLY_ENTRIES {
            return Err(Error::InvalidArgument(format!(
                "a reply with room for {capacity} entries; at most {MAX_REPLY_ENTRIES}"
            )));
        }
        if self.dispatcher.role() != Role::Dispatcher {
            return Err(Error::InvalidArgument(format!(
                "{} was checked as a {} SO, not a dispatcher",
                self.dispatcher.label(),
                self.dispatcher.role()
            )));
        }
        self.dispatcher
            .check(Role::Dispatcher, self.dispatcher.machine())?;
        let in_command = |e: Error| match e {
            Error::Cann(c) => Error::from(fail(MaintenanceFailure::Cann(c))),
            other => other,
        };
        let device = self.cann.open_device(self.device).map_err(in_command)?;
        let mut stream =
            Stream::create(&device).map_err(|e| Error::from(fail(MaintenanceFailure::Cann(e))))?;

        let layout = Layout::new(capacity, fingerprints.len(), self.dispatcher.bytes().len());
        // One buffer for everything, freed when this returns.
        let mut buffer = device.alloc(layout.len).map_err(in_command)?;
        let base = buffer.device_addr();
        args.version = MAINTENANCE_VERSION;
        args.capacity = capacity;
        args.reply = base + layout.reply as u64;
        if !fingerprints.is_empty() {
            args.fingerprints = base + layout.fingerprints as u64;
            args.fingerprint_count = fingerprints.len() as u32;
        }
        let device_args = DeviceArgs {
            aicpu_so_bin: base + layout.dispatcher as u64,
            aicpu_so_len: self.dispatcher.bytes().len() as u64,
            device_id: self.device as u64,
            // No runtime SO: a dispatcher that ignores the command refuses
            // the request as an install, touching nothing.
            inner_so_bin: 0,
            inner_so_len: 0,
            report: base + layout.report as u64,
            command: command.word(),
            maintenance: base + layout.args as u64,
            ..DeviceArgs::default()
        };
        let mut image = vec![0u8; layout.len];
        put(&mut image, 0, bytemuck::bytes_of(&device_args));
        put(&mut image, layout.args, bytemuck::bytes_of(&args));
        put(
            &mut image,
            layout.fingerprints,
            bytemuck::cast_slice(fingerprints),
        );
        put(&mut image, layout.dispatcher, self.dispatcher.bytes());
        buffer.copy_from_host(&image).map_err(in_command)?;

        let block = BootstrapArgs::new(base);
        let desc = LaunchDesc {
            kernel_type: KERNEL_TYPE_AICPU_KFC,
            op_name: KFC_OP_NAME_C,
            block_dim: 1,
            block: bytemuck::bytes_of(&block),
            so_name_offset: BOOTSTRAP_SO_NAME_OFFSET,
            kernel_name_offset: BOOTSTRAP_KERNEL_NAME_OFFSET,
        };
        let context = command_context(command);
        stream
            .launch_desc(&desc, context)
            .map_err(|e| Error::from(fail(MaintenanceFailure::Cann(e))))?;
        // After a sync timeout the dispatcher may still be running; the
        // buffer is freed anyway, as in the bootstrap.
        let synced = stream.sync_for(self.timeout, context);
        // Read back even after a failed sync: the report and reply say
        // more than the code.
        let mut back = vec![0u8; layout.len - layout.report];
        match buffer.read_at(layout.report, &mut back) {
            Ok(()) => {}
            Err(read) => {
                let cann = match (synced, read) {
                    (Err(e), _) | (Ok(()), Error::Cann(e)) => e,
                    (Ok(()), other) => return Err(other),
                };
                return Err(fail(MaintenanceFailure::Cann(cann)).into());
            }
        }
        let report: BootstrapReport =
            bytemuck::pod_read_unaligned(&back[..size_of::<BootstrapReport>()]);
        let at = layout.reply - layout.report;
        let reply: MaintenanceReply =
            bytemuck::pod_read_unaligned(&back[at..at + size_of::<MaintenanceReply>()]);
        let entries_at = at + size_of::<MaintenanceReply>();
        let entries = &back[entries_at..entries_at + capacity as usize * ENTRY];
        check_reply(command, &report, &reply, capacity, synced.err())
            .and_then(|()| decode_entries(&reply, entries))
            .map(|entries| Answer { reply, entries })
            .map_err(|failure| fail(failure).into())
    }
}

const ENTRY: usize = size_of::<MaintenanceEntry>();

/// Where each part sits in the one device buffer of a command, 8-aligned.
struct Layout {
    args: usize,
    report: usize,
    reply: usize,
    fingerprints: usize,
    dispatcher: usize,
    len: usize,
}

impl Layout {
    fn new(capacity: u32, fingerprints: usize, dispatcher: usize) -> Self {
        let args = size_of::<DeviceArgs>();
        let report = args + size_of::<MaintenanceArgs>();
        let reply = report + size_of::<BootstrapReport>();
        let fps = reply + size_of::<MaintenanceReply>() + capacity as usize * ENTRY;
        let dispatcher_at = fps + fingerprints * size_of::<u64>();
        Self {
            args,
            report,
            reply,
            fingerprints: fps,
            dispatcher: dispatcher_at,
            len: (dispatcher_at + dispatcher).next_multiple_of(8),
        }
    }
}

fn put(image: &mut [u8], at: usize, bytes: &[u8]) {
    image[at..at + bytes.len()].copy_from_slice(bytes);
}

fn command_context(command: Command) -> &'static str {
    match command {
        Command::List => "maintenance list",
        Command::Remove => "maintenance remove",
        Command::Gc => "maintenance gc",
    }
}

/// A checked reply and its entries.
struct Answer {
    reply: MaintenanceReply,
    entries: Vec<Entry>,
}

/// One decoded entry.
struct Entry {
    file: DeviceFile,
    action: EntryAction,
    errno: i32,
}

impl Answer {
    fn dir(&self) -> String {
        let dir = self.reply.dir_str().unwrap_or_default();
        match dir.trim_end_matches('/') {
            "" if !dir.is_empty() => "/".to_owned(),
            trimmed => trimmed.to_owned(),
        }
    }

    fn truncated(&self) -> bool {
        self.reply.total > self.reply.count
    }

    fn into_files(self) -> Vec<DeviceFile> {
        self.entries.into_iter().map(|e| e.file).collect()
    }

    fn removal(self, device: i32) -> Removal {
        let mut removal = Removal {
            device,
            dir: self.dir(),
            total: self.reply.total,
            truncated: self.truncated(),
            removed: Vec::new(),
            failed: Vec::new(),
            missing: Vec::new(),
        };
        for entry in self.entries {
            match entry.action {
                EntryAction::Removed => removal.removed.push(entry.file),
                EntryAction::Failed => removal.failed.push(NotRemoved {
                    file: entry.file,
                    errno: entry.errno,
                }),
                EntryAction::Listed => {}
            }
        }
        sort_newest_first(&mut removal.removed);
        removal
    }
}

/// Installed first, then temp; newest first within each; then by name.
fn sort_newest_first(files: &mut [DeviceFile]) {
    files.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(b.modified.cmp(&a.modified))
            .then(a.name.cmp(&b.name))
    });
}

/// Turns the reply (and the report, for an old dispatcher) into success or
/// the precise failure.
fn check_reply(
    command: Command,
    report: &BootstrapReport,
    reply: &MaintenanceReply,
    capacity: u32,
    cann: Option<CannError>,
) -> Result<(), MaintenanceFailure> {
    if reply.magic != REPLY_MAGIC {
        if report.magic == REPORT_MAGIC {
            return Err(MaintenanceFailure::OutdatedDispatcher { cann });
        }
        return Err(MaintenanceFailure::NoReply { cann });
    }
    if reply.version != MAINTENANCE_VERSION {
        return Err(MaintenanceFailure::DispatcherVersion {
            found: reply.version,
            expected: MAINTENANCE_VERSION,
        });
    }
    let bad = |what: String| Err(MaintenanceFailure::BadReply(what));
    if reply.command != command as u32 {
        return bad(format!(
            "it answers command {}, not {}",
            reply.command, command as u32
        ));
    }
    match ReplyStatus::from_raw(reply.status) {
        Some(ReplyStatus::Ok) => {}
        Some(ReplyStatus::BadRequest) => {
            return Err(MaintenanceFailure::Refused { errno: reply.errno })
        }
        Some(ReplyStatus::NoDirectory) => {
            return Err(MaintenanceFailure::NoDirectory {
                dir: reply.dir_str().unwrap_or_default().to_owned(),
                errno: reply.errno,
            })
        }
        None => return bad(format!("unknown status {}", reply.status)),
    }
    if let Some(e) = cann {
        // The dispatcher answered, yet the launch failed.
        return Err(MaintenanceFailure::Cann(e));
    }
    if reply.count > capacity || reply.count > reply.total {
        return bad(format!(
            "{} entries of {} in a reply with room for {capacity}",
            reply.count, reply.total
        ));
    }
    Ok(())
}

fn decode_entries(
    reply: &MaintenanceReply,
    bytes: &[u8],
) -> Result<Vec<Entry>, MaintenanceFailure> {
    let bad = |what: String| MaintenanceFailure::BadReply(what);
    bytes
        .chunks_exact(ENTRY)
        .take(reply.count as usize)
        .enumerate()
        .map(|(i, raw)| {
            let e: MaintenanceEntry = bytemuck::pod_read_unaligned(raw);
            let kind = FileKind::from_raw(e.kind)
                .ok_or_else(|| bad(format!("entry {i} has kind {}", e.kind)))?;
            let action = EntryAction::from_raw(e.action)
                .ok_or_else(|| bad(format!("entry {i} has action {}", e.action)))?;
            let name = e
                .name_str()
                .ok_or_else(|| bad(format!("entry {i}'s name is not NUL-terminated UTF-8")))?;
            let fingerprint =
                match kind {
                    FileKind::Installed => Some(PreinstallName::parse(name).ok_or_else(|| {
                        bad(format!("entry {i} is no installed runtime: {name:?}"))
                    })?),
                    FileKind::Temp => None,
                };
            let modified = UNIX_EPOCH
                + Duration::from_secs(e.mtime.max(0) as u64)
                + Duration::from_nanos(u64::from(e.mtime_nsec.min(999_999_999)));
            Ok(Entry {
                file: DeviceFile {
                    kind,
                    name: name.to_owned(),
                    fingerprint,
                    size: e.size,
                    age: Duration::from_secs(reply.now.saturating_sub(e.mtime).max(0) as u64),
                    modified,
                },
                action,
                errno: e.errno,
            })
        })
        .collect()
}

/// A file of simpler's naming in a device's preinstall directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFile {
    /// Installed runtime or temp file.
    pub kind: FileKind,
    /// The file name (no directory).
    pub name: String,
    /// The fingerprint of an installed runtime; `None` for a temp file.
    pub fingerprint: Option<u64>,
    /// Size in bytes.
    pub size: u64,
    /// Time since the last write, by the device's clock, in whole seconds
    /// (0 for a time in the device's future).
    pub age: Duration,
    /// The last write, by the device's clock.
    pub modified: SystemTime,
}

/// What [`Maintenance::list`] found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Listing {
    /// The device.
    pub device: i32,
    /// The preinstall directory on the device.
    pub dir: String,
    /// Installed runtimes newest first, then temp files newest first.
    pub files: Vec<DeviceFile>,
    /// Files the device found; more than `files.len()` when truncated.
    pub total: u32,
    /// The reply had no room for every file ([`Maintenance::capacity`]).
    pub truncated: bool,
}

/// What [`Maintenance::remove`] or [`Maintenance::gc`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Removal {
    /// The device.
    pub device: i32,
    /// The preinstall directory on the device.
    pub dir: String,
    /// Files removed: installed runtimes newest first, then temp files.
    pub removed: Vec<DeviceFile>,
    /// Files that should have gone but could not be removed.
    pub failed: Vec<NotRemoved>,
    /// [`Maintenance::remove`]: fingerprints with no installed runtime.
    pub missing: Vec<u64>,
    /// Files the device removed or failed to remove; more than
    /// `removed.len() + failed.len()` when truncated.
    pub total: u32,
    /// The reply had no room for every file ([`Maintenance::capacity`]);
    /// the device still did all the work.
    pub truncated: bool,
}

impl Removal {
    /// Whether everything asked for is gone: nothing failed or missing.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.missing.is_empty()
    }
}

/// A file the device could not remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotRemoved {
    /// The file.
    pub file: DeviceFile,
    /// The errno of the removal.
    pub errno: i32,
}

impl fmt::Display for NotRemoved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot remove {}: {}",
            self.file.name,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

/// A maintenance command that did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} on device {device} failed: {failure}", command_context(*command))]
pub struct MaintenanceError {
    /// The device.
    pub device: i32,
    /// The command.
    pub command: Command,
    /// What happened.
    pub failure: MaintenanceFailure,
}

impl MaintenanceError {
    /// The CANN error inside, if there is one.
    pub fn cann(&self) -> Option<&CannError> {
        match &self.failure {
            MaintenanceFailure::Cann(e) => Some(e),
            MaintenanceFailure::OutdatedDispatcher { cann }
            | MaintenanceFailure::NoReply { cann } => cann.as_ref(),
            _ => None,
        }
    }
}

impl From<MaintenanceError> for Error {
    fn from(e: MaintenanceError) -> Self {
        Self::Maintenance(Box::new(e))
    }
}

/// Why a maintenance command did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaintenanceFailure {
    /// A CANN call failed and the dispatcher left no reply.
    #[error("{0}")]
    Cann(CannError),
    /// The dispatcher in the device's AICPU process predates maintenance
    /// commands: it read the request as an install and refused it.
    #[error(
        "the dispatcher loaded in this device's AICPU process predates maintenance commands \
         and refused the request as an install, touching nothing{}. CANN's KFC server keeps \
         the first dispatcher its AICPU process loaded; this one is loaded once that process \
         restarts (a device reset; on the simulator, once every process using the device has \
         released it)",
        launch_ended(cann)
    )]
    OutdatedDispatcher {
        /// The CANN error the launch surfaced as, if any.
        cann: Option<CannError>,
    },
    /// Neither a reply nor a report: no dispatcher ran.
    #[error(
        "the dispatcher wrote no reply{}; libaicpu_extend_kernels did not run it",
        cann.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    NoReply {
        /// The CANN error the launch surfaced as, if any.
        cann: Option<CannError>,
    },
    /// The dispatcher speaks another version of the maintenance layouts.
    #[error(
        "the dispatcher answers in maintenance version {found}, this host speaks {expected}; \
         use a dispatcher built with this host"
    )]
    DispatcherVersion {
        /// The dispatcher's.
        found: u32,
        /// The host's.
        expected: u32,
    },
    /// The dispatcher refused the arguments.
    #[error("the dispatcher refused the request: {}", os_error(*errno))]
    Refused {
        /// Why, as an errno (`ENOSYS`: an unknown command).
        errno: i32,
    },
    /// The preinstall directory could not be opened.
    #[error("cannot open the preinstall directory {dir}: {}", os_error(*errno))]
    NoDirectory {
        /// The directory, as the dispatcher named it.
        dir: String,
        /// The errno.
        errno: i32,
    },
    /// The reply holds values no dispatcher writes.
    #[error("the dispatcher's reply is unreadable: {0}")]
    BadReply(String),
}

/// ` (the launch ended with <code> <name>)`, or nothing: the code is all
/// that matters here, the CANN message and hint would mislead.
fn launch_ended(cann: &Option<CannError>) -> String {
    match cann {
        Some(e) => match e.name() {
            Some(name) => format!(" (the launch ended with {} {name})", e.code),
            None => format!(" (the launch ended with {})", e.code),
        },
        None => String::new(),
    }
}

fn os_error(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;

    use super::*;

    fn reply(command: Command, status: ReplyStatus, count: u32, total: u32) -> MaintenanceReply {
        let mut r = MaintenanceReply::zeroed();
        r.magic = REPLY_MAGIC;
        r.version = MAINTENANCE_VERSION;
        r.command = command as u32;
        r.status = status as u32;
        r.count = count;
        r.total = total;
        r.dir[..5].copy_from_slice(b"/pre/");
        r
    }

    /// Linux's `ENOSYS`.
    const ENOSYS: i32 = 38;

    fn sync_error() -> CannError {
        CannError {
            call: "aclrtSynchronizeStreamWithTimeout",
            context: Some("maintenance list"),
            code: 507018,
            message: None,
        }
    }

    #[test]
    fn an_old_dispatcher_is_told_from_no_dispatcher() {
        let none = BootstrapReport::zeroed();
        let mut old = BootstrapReport::zeroed();
        old.magic = REPORT_MAGIC;
        let silent = MaintenanceReply::zeroed();
        let got = check_reply(Command::List, &old, &silent, 4, Some(sync_error()));
        assert_eq!(
            got,
            Err(MaintenanceFailure::OutdatedDispatcher {
                cann: Some(sync_error())
            })
        );
        let text = got.unwrap_err().to_string();
        assert!(text.contains("predates maintenance commands"), "{text}");
        assert!(
            text.contains("(the launch ended with 507018 ACL_ERROR_RT_AICPU_EXCEPTION)"),
            "{text}"
        );
        assert_eq!(
            check_reply(Command::List, &none, &silent, 4, None),
            Err(MaintenanceFailure::NoReply { cann: None })
        );
        // A reply wins over a report.
        let ok = reply(Command::List, ReplyStatus::Ok, 0, 0);
        assert_eq!(check_reply(Command::List, &old, &ok, 4, None), Ok(()));
    }

    #[test]
    fn refusals_and_garbled_replies_are_precise() {
        let report = BootstrapReport::zeroed();
        let mut r = reply(Command::Gc, ReplyStatus::BadRequest, 0, 0);
        r.errno = ENOSYS;
        let err = check_reply(Command::Gc, &report, &r, 4, None).unwrap_err();
        assert_eq!(err, MaintenanceFailure::Refused { errno: ENOSYS });
        let mut r = reply(Command::List, ReplyStatus::NoDirectory, 0, 0);
        r.errno = 2;
        let err = check_reply(Command::List, &report, &r, 4, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot open the preinstall directory /pre/: No such file or directory (os error 2)"
        );
        let mut r = reply(Command::List, ReplyStatus::Ok, 0, 0);
        r.version = MAINTENANCE_VERSION + 1;
        assert!(matches!(
            check_reply(Command::List, &report, &r, 4, None),
            Err(MaintenanceFailure::DispatcherVersion { .. })
        ));
        for (r, capacity) in [
            (reply(Command::Gc, ReplyStatus::Ok, 0, 0), 4),
            (reply(Command::List, ReplyStatus::Ok, 5, 5), 4),
            (reply(Command::List, ReplyStatus::Ok, 3, 2), 4),
        ] {
            assert!(matches!(
                check_reply(Command::List, &report, &r, capacity, None),
                Err(MaintenanceFailure::BadReply(_))
            ));
        }
        let mut r = reply(Command::List, ReplyStatus::Ok, 0, 0);
        r.status = 7;
        assert!(matches!(
            check_reply(Command::List, &report, &r, 4, None),
            Err(MaintenanceFailure::BadReply(_))
        ));
        // Answered, but the launch failed all the same.
        let r = reply(Command::List, ReplyStatus::Ok, 0, 0);
        assert_eq!(
            check_reply(Command::List, &report, &r, 4, Some(sync_error())),
            Err(MaintenanceFailure::Cann(sync_error()))
        );
    }

    #[test]
    fn entries_decode_and_sort_installed_newest_first() {
        let mut r = reply(Command::List, ReplyStatus::Ok, 3, 3);
        r.now = 1000;
        let entry = |kind: FileKind, name: &str, mtime: i64| {
            let mut e = MaintenanceEntry::zeroed();
            e.kind = kind as u32;
            e.size = 42;
            e.mtime = mtime;
            e.name[..name.len()].copy_from_slice(name.as_bytes());
            e
        };
        let old = PreinstallName::new(1).to_string();
        let new = PreinstallName::new(2).to_string();
        let temp = format!(".{new}.tmp.0.1.1.0.0000000000000000.0000000000000000");
        let raw = [
            entry(FileKind::Temp, &temp, 990),
            entry(FileKind::Installed, &old, 100),
            entry(FileKind::Installed, &new, 900),
        ];
        let mut files = Answer {
            entries: decode_entries(&r, bytemuck::cast_slice(&raw)).unwrap(),
            reply: r,
        }
        .into_files();
        sort_newest_first(&mut files);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [new.as_str(), old.as_str(), temp.as_str()]);
        assert_eq!(files[0].fingerprint, Some(2));
        assert_eq!(files[2].fingerprint, None);
        assert_eq!(files[1].age, Duration::from_secs(900));

        let bad = [entry(FileKind::Installed, "libfoo.so", 1)];
        let one = reply(Command::List, ReplyStatus::Ok, 1, 1);
        assert!(matches!(
            decode_entries(&one, bytemuck::cast_slice(&bad)),
            Err(MaintenanceFailure::BadReply(_))
        ));
    }

    #[test]
    fn the_layout_is_aligned_and_disjoint() {
        let l = Layout::new(3, 2, 13);
        assert_eq!(l.args, 160);
        assert_eq!(l.report, 208);
        assert_eq!(l.reply, 504);
        assert_eq!(l.fingerprints, 504 + 296 + 3 * ENTRY);
        assert_eq!(l.dispatcher, l.fingerprints + 16);
        assert_eq!(l.len, (l.dispatcher + 13).next_multiple_of(8));
        for at in [l.args, l.report, l.reply, l.fingerprints, l.dispatcher] {
            assert_eq!(at % 8, 0);
        }
    }
}
