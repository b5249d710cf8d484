//! The crate's one error type, the parts of it no other module owns, and
//! its conversions.
//!
//! How every message here is laid out: first the facts, each stated once
//! (an error that includes another's message does not also return it from
//! `source()`, so a printer that walks the chain, like `anyhow`'s `{:#}`,
//! shows it once too), then each hint on a line of its own, `hint: …`.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use simpler_abi::artifacts::ARTIFACTS_DIR_ENV;
use simpler_abi::cann::error as codes;
use simpler_abi::cann::KFC_FUNC_NULLPTR;
use simpler_abi::names::{text, RUNTIME_INIT_SYMBOL};
use simpler_abi::{ReportStage, TaskOp, TaskStatus};
use simpler_cann_sys::sys::symbols;

use crate::elf::PreflightError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `simpler-host`.
///
/// Every variant names what failed and where: the CANN call and its code,
/// the file and the problem, the dispatcher's report. Its message is the
/// whole story: no variant returns a [`source`](std::error::Error::source),
/// since each shows what it wraps in its own message. The type is `Clone`
/// so one failed bootstrap can be handed to every runner that waited on it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The CANN libraries could not be found, opened or resolved.
    Load(LoadError),
    /// A CANN call returned an error.
    Cann(CannError),
    /// A dispatcher or runtime SO failed the checks made before upload.
    Preflight(PreflightError),
    /// The bootstrap launch did not leave the runtime SO in place.
    Bootstrap(Box<BootstrapError>),
    /// A maintenance command on a preinstall directory did not run.
    Maintenance(Box<crate::maintenance::MaintenanceError>),
    /// `simpler_aicpu_init` failed on the device.
    InitRejected {
        /// The device.
        device: i32,
        /// The ABI version the host sent.
        abi_version: u32,
        /// The thread count the host sent.
        thread_count: u32,
        /// The CANN error the failure surfaced as (shown in this error's
        /// message, so not also its `source()`).
        source: CannError,
    },
    /// A batch ran but some of its tasks did not complete with
    /// [`TaskStatus::Ok`].
    TasksFailed {
        /// Tasks in the batch.
        total: usize,
        /// The tasks that failed, in index order.
        failures: Vec<TaskFailure>,
    },
    /// The runtime returned success but did not finish every task.
    IncompleteBatch {
        /// Tasks the runtime counted as finished.
        done: u32,
        /// Tasks in the batch.
        total: u32,
    },
    /// A task was rejected on the host before anything was launched.
    InvalidTask {
        /// Index of the task in its batch.
        index: usize,
        /// Its operation.
        op: TaskOp,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (shown in this error's message, so not also its
        /// `source()`).
        source: Arc<std::io::Error>,
    },
    /// A file could not be written.
    Write {
        /// The file (or the directory it was to be created in).
        path: PathBuf,
        /// The OS error (shown in this error's message, so not also its
        /// `source()`).
        source: Arc<std::io::Error>,
    },
    /// A default artifact was not found in any artifacts directory.
    ArtifactNotFound {
        /// The file name looked for.
        file: &'static str,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// An argument is out of range or inconsistent.
    InvalidArgument(String),
    /// The runner that was bootstrapping this runtime panicked; nothing was
    /// cached, so building again retries.
    BootstrapAbandoned,
    /// A kernel of a [`Module`](crate::Module) failed: its launch was
    /// refused, it returned non-zero (507018 at the sync), or the sync
    /// after it failed otherwise.
    Kernel(Box<KernelError>),
    /// The loaded CANN lacks the calls of a launch path a module asked for.
    LaunchPathUnsupported {
        /// The path asked for.
        path: crate::LaunchPath,
        /// The calls no loaded library exports.
        missing: Vec<&'static str>,
        /// The libraries loaded.
        libraries: Vec<PathBuf>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(e) => e.fmt(f),
            Self::Cann(e) => e.fmt(f),
            Self::Preflight(e) => e.fmt(f),
            Self::Bootstrap(e) => e.fmt(f),
            Self::Maintenance(e) => e.fmt(f),
            Self::InitRejected {
                device,
                abi_version,
                thread_count,
                source,
            } => {
                // The CANN error's context is this init: not said twice.
                write!(
                    f,
                    "{RUNTIME_INIT_SYMBOL} failed on device {device} (host ABI version \
                     {abi_version}, {thread_count} threads): {}",
                    source.facts(false)
                )?;
                write_hints(f, source.hint())
            }
            Self::TasksFailed { total, failures } => write!(
                f,
                "{} of {total} tasks failed: {}",
                failures.len(),
                list_failures(failures)
            ),
            Self::IncompleteBatch { done, total } => write!(
                f,
                "the runtime finished {done} of {total} tasks and reported success"
            ),
            Self::InvalidTask { index, op, reason } => {
                write!(f, "task {index} ({op}) is invalid: {reason}")
            }
            Self::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            Self::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            Self::ArtifactNotFound { file, searched } => {
                write!(f, "{file} not found; looked in: {}", list_paths(searched))?;
                write_hints(f, Some(artifact_hint()))
            }
            Self::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Self::BootstrapAbandoned => f.write_str(
                "the bootstrap this runner waited on was abandoned by a panicking thread",
            ),
            Self::Kernel(e) => e.fmt(f),
            Self::LaunchPathUnsupported {
                path,
                missing,
                libraries,
            } => {
                write!(
                    f,
                    "the {path} launch path needs {}, which {} do not export",
                    missing.join(", "),
                    list_paths(libraries)
                )?;
                write_hints(
                    f,
                    Some("use the type2 launch path, or a CANN whose runtime has the rts calls"),
                )
            }
        }
    }
}

/// No `source()`: every variant shows what it wraps in its own message.
impl std::error::Error for Error {}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        Self::Load(e)
    }
}

impl From<CannError> for Error {
    fn from(e: CannError) -> Self {
        Self::Cann(e)
    }
}

impl From<PreflightError> for Error {
    fn from(e: PreflightError) -> Self {
        Self::Preflight(e)
    }
}

/// Writes each hint on a line of its own.
fn write_hints<'a>(
    f: &mut fmt::Formatter<'_>,
    hints: impl IntoIterator<Item = &'a str>,
) -> fmt::Result {
    for hint in hints {
        write!(f, "\nhint: {hint}")?;
    }
    Ok(())
}

/// One failed task of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFailure {
    /// Index of the task in its batch.
    pub index: usize,
    /// The raw op word of the task.
    pub op: u32,
    /// What the runtime wrote, or `None` for a status word it does not
    /// define.
    pub status: Option<TaskStatus>,
    /// The raw status word.
    pub raw_status: u32,
}

fn list_failures(failures: &[TaskFailure]) -> String {
    const SHOWN: usize = 8;
    let mut text = failures
        .iter()
        .take(SHOWN)
        .map(|f| {
            let op = TaskOp::from_raw(f.op)
                .map(|op| op.to_string())
                .unwrap_or_else(|| format!("op {:#x}", f.op));
            let status = f
                .status
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| format!("status {}", f.raw_status));
            format!("#{} {op} → {status}", f.index)
        })
        .collect::<Vec<_>>()
        .join(", ");
    if failures.len() > SHOWN {
        text.push_str(&format!(", and {} more", failures.len() - SHOWN));
    }
    text
}

/// What to do when an artifact is not found.
pub(crate) fn artifact_hint() -> &'static str {
    static HINT: LazyLock<String> =
        LazyLock::new(|| format!("run `cargo xtask build` or set {ARTIFACTS_DIR_ENV}"));
    &HINT
}

fn list_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(nowhere)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A CANN call that returned a non-zero `aclError`.
///
/// Its message: the call, its context, the code and its name, then CANN's
/// own message without what that line said already (CANN's messages may
/// name the call and the code again), at most 8 lines of it; then the
/// hint, if the code has a usual cause, on its own line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannError {
    /// The C function that failed.
    pub call: &'static str,
    /// What it was doing, e.g. the kernel launched or synchronised on.
    pub context: Option<&'static str>,
    /// The `aclError` it returned.
    pub code: i32,
    /// `aclGetRecentErrMsg()` right after the failure, if any.
    pub message: Option<String>,
}

/// Lines of CANN's message a [`CannError`] shows; the rest is counted.
const MESSAGE_LINES: usize = 8;
/// Characters of one line of CANN's message a [`CannError`] shows.
const LINE_CHARS: usize = 160;

/// The calls some hints are chosen by.
const LAUNCH_CALL: &str = text(symbols::LAUNCH);
const SYNC_CALL: &str = text(symbols::SYNC_STREAM);

/// A usual cause of a CANN error and what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hint {
    /// 507018 in general.
    AicpuException,
    /// 507018 from `simpler_aicpu_init`.
    InitRejected,
    /// The bootstrap's 507018 on a stack older than the KFC path.
    KfcStackTooOld,
    /// The bootstrap launch refused as not supported.
    KfcFirmware,
    /// 207000 in general.
    NotSupported,
    /// 507899.
    Poisoned,
    /// 207001.
    OutOfMemory,
    /// 507017, and 507000 at a sync.
    OpTimeout,
    /// 507046.
    SyncTimeout,
    /// 107022.
    TaskAborted,
}

impl Hint {
    fn text(self) -> &'static str {
        match self {
            Self::AicpuException => {
                static HINT: LazyLock<String> = LazyLock::new(|| {
                    format!(
                        "an AICPU task failed: the kernel returned non-zero, crashed, or its SO \
                         could not be loaded; the device log says which (simulator: \
                         ${}/device<N>/log)",
                        simpler_abi::sim::env::ROOT
                    )
                });
                &HINT
            }
            Self::InitRejected => {
                "unless the CANN message names another cause (a crashed AICPU process, say), \
                 the runtime SO returned non-zero, which it does for an ABI version other than \
                 the one it was built with: build the runtime SO and this host from the same \
                 simpler-abi"
            }
            Self::KfcStackTooOld => {
                "libaicpu_extend_kernels found no function to call in the dispatcher: the KFC \
                 path simpler bootstraps through needs CANN >= 8.5.0 and driver >= 25.2.0 \
                 (`simpler doctor` shows the versions installed)"
            }
            Self::KfcFirmware => {
                "the board's task-scheduler firmware lacks the AICPU KFC feature the bootstrap \
                 launches through: install a driver and firmware that have it (the KFC path \
                 needs driver >= 25.2.0)"
            }
            Self::NotSupported => "the driver or firmware of this board does not support the call",
            Self::Poisoned => {
                "the device is poisoned by an earlier fault; drop every runner and buffer on \
                 it so it is reset, then build a new runner"
            }
            Self::OutOfMemory => {
                "the device is out of memory: free buffers or ask for less; but after an \
                 earlier AICPU exception in this process this code is usually not an \
                 out-of-memory: the device log says what it is (CANN: \
                 ASCEND_SLOG_PRINT_TO_STDOUT=1 ASCEND_GLOBAL_LOG_LEVEL=1)"
            }
            Self::OpTimeout => {
                "an AICPU task may have run past its op timeout (CANN raises an op timeout \
                 below about 4.29 s to that floor)"
            }
            Self::SyncTimeout => {
                "the host stopped waiting before the device finished; raise the runner's \
                 timeout if the work is expected to take this long"
            }
            Self::TaskAborted => "an earlier task on this device failed and this one was aborted",
        }
    }
}

impl CannError {
    /// CANN's name for the code, if it is one the project knows.
    pub fn name(&self) -> Option<&'static str> {
        codes::name(self.code)
    }

    /// What to do about the error, for the codes with a usual cause; chosen
    /// by the code and, where the code is a generic one, by the call, what
    /// it was doing and CANN's message.
    pub fn hint(&self) -> Option<&'static str> {
        self.usual_cause().map(Hint::text)
    }

    fn usual_cause(&self) -> Option<Hint> {
        let bootstrap = self.context == Some(crate::bootstrap::CONTEXT);
        let says = |part: &str| self.message.as_deref().is_some_and(|m| m.contains(part));
        Some(match self.code {
            codes::ACL_ERROR_RT_AICPU_EXCEPTION if says(KFC_FUNC_NULLPTR) => Hint::KfcStackTooOld,
            codes::ACL_ERROR_RT_AICPU_EXCEPTION if self.context == Some(RUNTIME_INIT_SYMBOL) => {
                Hint::InitRejected
            }
            codes::ACL_ERROR_RT_AICPU_EXCEPTION => Hint::AicpuException,
            codes::ACL_ERROR_RT_FEATURE_NOT_SUPPORT if bootstrap && self.call == LAUNCH_CALL => {
                Hint::KfcFirmware
            }
            codes::ACL_ERROR_RT_FEATURE_NOT_SUPPORT => Hint::NotSupported,
            codes::ACL_ERROR_RT_DRV_INTERNAL_ERROR => Hint::Poisoned,
            codes::ACL_ERROR_RT_MEMORY_ALLOCATION => Hint::OutOfMemory,
            codes::ACL_ERROR_RT_AICPU_TIMEOUT => Hint::OpTimeout,
            // Generic; an op timeout on some chips, which surfaces at a sync.
            codes::ACL_ERROR_RT_INTERNAL_ERROR if self.call == SYNC_CALL => Hint::OpTimeout,
            codes::ACL_ERROR_RT_STREAM_SYNC_TIMEOUT => Hint::SyncTimeout,
            codes::ACL_ERROR_RT_DEVICE_TASK_ABORT => Hint::TaskAborted,
            _ => return None,
        })
    }

    /// The message without the hint; without the context when the error
    /// it is part of says it already.
    pub(crate) fn facts(&self, with_context: bool) -> CannFacts<'_> {
        CannFacts {
            err: self,
            with_context,
        }
    }

    /// One line of CANN's message without what the error's first line says
    /// already: a leading `<call>: ` and a trailing ` (<NAME> <code>)`.
    fn own_part<'a>(&self, line: &'a str) -> &'a str {
        let mut line = line.trim();
        if let Some(rest) = line
            .strip_prefix(self.call)
            .and_then(|r| r.strip_prefix(": "))
        {
            line = rest;
        }
        let code = self.code.to_string();
        let suffixes = [
            self.name().map(|name| format!(" ({name} {code})")),
            Some(format!(" ({code})")),
        ];
        for suffix in suffixes.iter().flatten() {
            if let Some(rest) = line.strip_suffix(suffix.as_str()) {
                line = rest;
                break;
            }
        }
        line.trim_end()
    }
}

/// [`CannError::facts`].
pub(crate) struct CannFacts<'a> {
    err: &'a CannError,
    with_context: bool,
}

impl fmt::Display for CannFacts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = self.err;
        f.write_str(err.call)?;
        if let (true, Some(context)) = (self.with_context, err.context) {
            write!(f, " ({context})")?;
        }
        write!(f, " failed with {}", err.code)?;
        if let Some(name) = err.name() {
            write!(f, " {name}")?;
        }
        let lines: Vec<&str> = err
            .message
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(|line| err.own_part(line))
            .filter(|line| !line.is_empty())
            .collect();
        for (i, line) in lines.iter().take(MESSAGE_LINES).enumerate() {
            let line = shorten(line, LINE_CHARS);
            if i == 0 {
                write!(f, ": {line}")?;
            } else {
                write!(f, "\n  {line}")?;
            }
        }
        if lines.len() > MESSAGE_LINES {
            write!(
                f,
                "\n  (and {} more lines from CANN)",
                lines.len() - MESSAGE_LINES
            )?;
        }
        Ok(())
    }
}

/// `line` cut to `max` characters, marked with `…` if cut.
fn shorten(line: &str, max: usize) -> Cow<'_, str> {
    match line.char_indices().nth(max) {
        None => Cow::Borrowed(line),
        Some((at, _)) => Cow::Owned(format!("{}…", &line[..at])),
    }
}

impl fmt::Display for CannError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.facts(true).fmt(f)?;
        write_hints(f, self.hint())
    }
}

impl std::error::Error for CannError {}

/// The CANN libraries could not be found, opened or resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// `dlopen` refused a library.
    #[error("cannot load CANN library {}: {reason}", library.display())]
    Open {
        /// The library.
        library: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// No listed library exports a required symbol.
    #[error("symbol {symbol} not found in {}", list_paths(libraries))]
    MissingSymbol {
        /// The C symbol.
        symbol: &'static str,
        /// The libraries searched.
        libraries: Vec<PathBuf>,
    },
    /// A library was not found where it was looked for.
    #[error("{file} not found; looked in: {}{}", list_paths(searched),
        hint.map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    NotFound {
        /// The file name.
        file: &'static str,
        /// Where it was looked for, in order.
        searched: Vec<PathBuf>,
        /// What to do about it.
        hint: Option<&'static str>,
    },
    /// An empty explicit library list.
    #[error("no CANN library given")]
    NoLibraries,
    /// Neither toolkit variable is set.
    #[error(
        "no CANN toolkit: ASCEND_HOME_PATH and ASCEND_TOOLKIT_HOME are unset\nhint: source the \
         toolkit's set_env.sh, or name the libraries explicitly"
    )]
    NoToolkit,
}

/// The bootstrap launch did not leave the runtime SO in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapError {
    /// The device.
    pub device: i32,
    /// `simpler_inner_<fp>.so` being installed.
    pub preinstall_name: String,
    /// What happened.
    pub failure: BootstrapFailure,
}

impl BootstrapError {
    /// The dispatcher's report of a failed step, if it wrote one.
    pub fn report(&self) -> Option<&FailedStep> {
        match &self.failure {
            BootstrapFailure::Dispatcher(step) => Some(step),
            _ => None,
        }
    }
}

impl fmt::Display for BootstrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bootstrap of {} on device {} failed: ",
            self.preinstall_name, self.device
        )?;
        self.failure.fmt(f)
    }
}

impl std::error::Error for BootstrapError {}

/// How a bootstrap failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapFailure {
    /// A CANN call failed and the dispatcher left no report.
    Cann(CannError),
    /// The KFC launch completed but the dispatcher never wrote its report.
    NoReport {
        /// The CANN error the launch surfaced as, if any.
        cann: Option<CannError>,
    },
    /// The dispatcher reported a failed step.
    Dispatcher(FailedStep),
    /// The dispatcher computed another fingerprint than the host.
    FingerprintMismatch {
        /// The host's fingerprint.
        host: u64,
        /// The device's.
        device: u64,
    },
    /// The dispatcher speaks another ABI version.
    DispatcherAbi {
        /// The dispatcher's.
        found: u32,
        /// The host's.
        expected: u32,
    },
    /// The report holds values no dispatcher writes.
    BadReport(String),
}

/// Why `libaicpu_extend_kernels` may not have run the dispatcher.
const NO_REPORT_HINT: &str = "libaicpu_extend_kernels did not run the dispatcher: it refuses an \
     SO without the three contract symbols, keeps the first dispatcher it loaded in a device \
     process, and on CANN < 8.5.0 or driver < 25.2.0 finds no function to call (its device log \
     then says \"func is nullptr\")";

impl fmt::Display for BootstrapFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The bootstrap is what the whole message is about: the CANN
            // error's context is not said again.
            Self::Cann(e) => {
                e.facts(false).fmt(f)?;
                write_hints(f, e.hint())
            }
            Self::NoReport { cann } => {
                f.write_str("the dispatcher did not write its report")?;
                if let Some(e) = cann {
                    write!(f, ": {}", e.facts(false))?;
                }
                // A cause CANN's error pins down beats the general one.
                let hint = match cann.as_ref().and_then(CannError::usual_cause) {
                    None | Some(Hint::AicpuException) => NO_REPORT_HINT,
                    Some(cause) => cause.text(),
                };
                write_hints(f, Some(hint))
            }
            Self::Dispatcher(step) => step.fmt(f),
            Self::FingerprintMismatch { host, device } => write!(
                f,
                "the device computed fingerprint {device:016x} for the runtime SO, the host \
                 {host:016x}; the bytes were damaged in transit"
            ),
            Self::DispatcherAbi { found, expected } => write!(
                f,
                "the dispatcher SO has ABI version {found}, this host {expected}; rebuild them \
                 together"
            ),
            Self::BadReport(what) => write!(f, "the dispatcher's report is unreadable: {what}"),
        }
    }
}

impl std::error::Error for BootstrapFailure {}

/// A failed dispatcher step, from its `BootstrapReport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// The step that failed.
    pub stage: ReportStage,
    /// The OS `errno` of the failing call (0 if none).
    pub errno: i32,
    /// The path it was working on.
    pub path: String,
    /// Bytes written before the failure.
    pub bytes_written: u64,
    /// The CANN error the launch surfaced as, if any (the report says
    /// more, so the message leaves it out).
    pub cann: Option<CannError>,
}

impl fmt::Display for FailedStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the dispatcher failed at stage `{}` on {}",
            self.stage.name(),
            if self.path.is_empty() {
                "(no path)"
            } else {
                &self.path
            }
        )?;
        if self.errno != 0 {
            write!(f, ": {}", std::io::Error::from_raw_os_error(self.errno))?;
        }
        if self.stage == ReportStage::Open || self.stage == ReportStage::Rename {
            write_hints(
                f,
                Some("the preinstall directory must exist and be writable by the AICPU process"),
            )?;
        }
        Ok(())
    }
}

/// A kernel launched through a [`Stream`](crate::Stream), as errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchedKernel {
    /// The kernel's symbol.
    pub kernel: String,
    /// Where its SO came from (path or label).
    pub so: String,
    /// The name the SO is installed under on the device.
    pub preinstall_name: String,
    /// Launches of it since the last sync.
    pub launches: u64,
}

impl fmt::Display for LaunchedKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} ({})",
            self.kernel, self.so, self.preinstall_name
        )?;
        if self.launches > 1 {
            write!(f, ", {} launches", self.launches)?;
        }
        Ok(())
    }
}

/// What [`KernelError`] failed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelStep {
    /// The launch call itself was refused.
    Launch,
    /// The sync after the launches failed.
    Sync,
}

/// A kernel failed: its launch, or the sync after it.
///
/// A kernel that returns non-zero surfaces at the sync as CANN's
/// `ACL_ERROR_RT_AICPU_EXCEPTION` (507018); which of the kernels launched
/// since the last sync failed, CANN does not say, so every one is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The device.
    pub device: i32,
    /// The launch or the sync.
    pub step: KernelStep,
    /// The kernels launched since the last sync (for a refused launch, the
    /// one refused), in launch order.
    pub kernels: Vec<LaunchedKernel>,
    /// The CANN error (shown in this error's message, so not also its
    /// `source()`).
    pub source: CannError,
}

impl KernelError {
    /// Whether a kernel returned non-zero (or crashed): CANN's 507018.
    pub fn kernel_failed(&self) -> bool {
        self.source.code == codes::ACL_ERROR_RT_AICPU_EXCEPTION
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = self
            .kernels
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let device = self.device;
        match (self.step, self.kernels.len()) {
            (KernelStep::Launch, _) => write!(f, "launching kernel {list} on device {device}")?,
            (KernelStep::Sync, 0) => write!(f, "the stream sync on device {device}")?,
            (KernelStep::Sync, 1) if self.kernel_failed() => {
                write!(f, "kernel {list} on device {device}")?
            }
            (KernelStep::Sync, _) if self.kernel_failed() => {
                write!(f, "one of the kernels {list} on device {device}")?
            }
            (KernelStep::Sync, _) => write!(f, "the sync after kernel {list} on device {device}")?,
        }
        write!(f, " failed: {}", self.source.facts(false))?;
        write_hints(f, self.source.hint())
    }
}

impl std::error::Error for KernelError {}

impl From<BootstrapError> for Error {
    fn from(e: BootstrapError) -> Self {
        Self::Bootstrap(Box::new(e))
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Write {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// The CANN error inside this error, if there is one.
    pub fn cann(&self) -> Option<&CannError> {
        match self {
            Self::Cann(e) | Self::InitRejected { source: e, .. } => Some(e),
            Self::Bootstrap(e) => match &e.failure {
                BootstrapFailure::Cann(e) => Some(e),
                BootstrapFailure::NoReport { cann } => cann.as_ref(),
                BootstrapFailure::Dispatcher(step) => step.cann.as_ref(),
                _ => None,
            },
            Self::Maintenance(e) => e.cann(),
            Self::Kernel(e) => Some(&e.source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cann(code: i32) -> CannError {
        CannError {
            call: "aclrtSynchronizeStreamWithTimeout",
            context: Some("simpler_aicpu_exec"),
            code,
            message: Some("task failed".into()),
        }
    }

    #[test]
    fn cann_errors_carry_name_and_hint() {
        let text = cann(507018).to_string();
        assert!(text.starts_with(
            "aclrtSynchronizeStreamWithTimeout (simpler_aicpu_exec) failed with 507018 \
             ACL_ERROR_RT_AICPU_EXCEPTION: task failed\nhint: an AICPU task failed"
        ));
        assert!(cann(507899).to_string().contains("poisoned"));
        assert!(cann(207001).to_string().contains("out of memory"));
        let unknown = cann(42).to_string();
        assert!(
            unknown.ends_with("failed with 42: task failed"),
            "{unknown}"
        );
    }

    #[test]
    fn dispatcher_failure_names_stage_errno_and_path() {
        let err = Error::from(BootstrapError {
            device: 1,
            preinstall_name: "simpler_inner_0123456789abcdef.so".into(),
            failure: BootstrapFailure::Dispatcher(FailedStep {
                stage: ReportStage::Open,
                errno: 2,
                path: "/pre/simpler_inner_0123456789abcdef.so".into(),
                bytes_written: 0,
                cann: Some(cann(507018)),
            }),
        });
        let text = err.to_string();
        for part in [
            "bootstrap of simpler_inner_0123456789abcdef.so on device 1 failed",
            "stage `open`",
            "/pre/simpler_inner_0123456789abcdef.so",
            "No such file or directory (os error 2)",
        ] {
            assert!(text.contains(part), "{part:?} missing from {text:?}");
        }
        assert_eq!(err.cann().map(|e| e.code), Some(507018));
    }

    #[test]
    fn task_failures_are_listed_and_capped() {
        let failures: Vec<_> = (0..10)
            .map(|index| TaskFailure {
                index,
                op: simpler_abi::OpCode::AddF32 as u32,
                status: Some(TaskStatus::Misaligned),
                raw_status: TaskStatus::Misaligned as u32,
            })
            .collect();
        let text = Error::TasksFailed {
            total: 12,
            failures,
        }
        .to_string();
        assert!(
            text.starts_with("10 of 12 tasks failed: #0 AddF32 → Misaligned"),
            "{text}"
        );
        assert!(text.ends_with("and 2 more"), "{text}");
    }

    /// What `anyhow`'s `{:#}` prints: the message, then each `source()`.
    fn chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut next = err.source();
        while let Some(source) = next {
            text.push_str(&format!(": {source}"));
            next = source.source();
        }
        text
    }

    /// Asserts that `needle` occurs exactly once in `text`.
    fn once(text: &str, needle: &str) {
        assert_eq!(text.matches(needle).count(), 1, "{needle:?} in {text:?}");
    }

    /// A failed call as the simulator reports it: CANN's message names the
    /// call and the code again.
    fn restating(call: &'static str, context: &'static str, code: i32, what: &str) -> CannError {
        let name = codes::name(code).unwrap();
        CannError {
            call,
            context: Some(context),
            code,
            message: Some(format!("{call}: {what} ({name} {code})")),
        }
    }

    const SYNC: &str = "aclrtSynchronizeStreamWithTimeout";

    #[test]
    fn io_errors_state_the_os_error_once() {
        let err = Error::io("/nonexistent/lib.so", std::io::Error::from_raw_os_error(2));
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(
            chain(&err),
            "cannot read /nonexistent/lib.so: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn a_cann_error_names_call_and_code_once_and_its_hint_on_a_line_of_its_own() {
        let err = Error::from(restating(
            SYNC,
            "simpler_aicpu_exec",
            507018,
            "task 3 failed",
        ));
        let text = chain(&err);
        let (first, hint) = text.split_once('\n').expect("a hint line");
        assert_eq!(
            first,
            "aclrtSynchronizeStreamWithTimeout (simpler_aicpu_exec) failed with 507018 \
             ACL_ERROR_RT_AICPU_EXCEPTION: task 3 failed"
        );
        assert!(hint.starts_with("hint: an AICPU task failed"), "{hint}");
        for fact in [
            SYNC,
            "simpler_aicpu_exec",
            "507018",
            "ACL_ERROR_RT_AICPU_EXCEPTION",
        ] {
            once(&text, fact);
        }
        // A message with neither is shown whole; no message, no colon.
        let plain = CannError {
            message: Some("stream 3 is busy".into()),
            ..cann(42)
        };
        assert_eq!(
            plain.to_string(),
            "aclrtSynchronizeStreamWithTimeout (simpler_aicpu_exec) failed with 42: stream 3 is busy"
        );
        let bare = CannError {
            message: None,
            ..cann(42)
        };
        assert_eq!(
            bare.to_string(),
            "aclrtSynchronizeStreamWithTimeout (simpler_aicpu_exec) failed with 42"
        );
    }

    #[test]
    fn an_init_rejection_says_each_fact_once() {
        let err = Error::InitRejected {
            device: 0,
            abi_version: 2,
            thread_count: 4,
            source: restating(SYNC, RUNTIME_INIT_SYMBOL, 507018, "the kernel returned 1"),
        };
        assert!(std::error::Error::source(&err).is_none());
        let text = chain(&err);
        assert_eq!(
            text,
            format!(
                "simpler_aicpu_init failed on device 0 (host ABI version 2, 4 threads): \
                 aclrtSynchronizeStreamWithTimeout failed with 507018 \
                 ACL_ERROR_RT_AICPU_EXCEPTION: the kernel returned 1\nhint: {}",
                Hint::InitRejected.text()
            )
        );
        for fact in [
            SYNC,
            RUNTIME_INIT_SYMBOL,
            "507018",
            "ACL_ERROR_RT_AICPU_EXCEPTION",
        ] {
            once(&text, fact);
        }
        assert!(text.contains("ABI version other than the one it was built with"));
    }

    #[test]
    fn a_bootstrap_failure_does_not_repeat_its_context() {
        let err = Error::from(BootstrapError {
            device: 1,
            preinstall_name: "simpler_inner_0123456789abcdef.so".into(),
            failure: BootstrapFailure::Cann(restating(
                "aclrtMalloc",
                crate::bootstrap::CONTEXT,
                207001,
                "no memory",
            )),
        });
        let text = chain(&err);
        let (first, hint) = text.split_once('\n').expect("a hint line");
        assert_eq!(
            first,
            "bootstrap of simpler_inner_0123456789abcdef.so on device 1 failed: aclrtMalloc \
             failed with 207001 ACL_ERROR_RT_MEMORY_ALLOCATION: no memory"
        );
        assert_eq!(hint, format!("hint: {}", Hint::OutOfMemory.text()));
        once(&text, "aclrtMalloc");
        once(&text, "207001");
    }

    #[test]
    fn long_cann_messages_are_cut_to_fit_a_screen() {
        let long = (1..=20)
            .map(|i| format!("line {i} {}", "x".repeat(if i == 1 { 1000 } else { 10 })))
            .collect::<Vec<_>>()
            .join("\n");
        let err = CannError {
            message: Some(long),
            ..cann(507018)
        };
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        // The call and the first line of CANN's, 7 more, the count, the hint:
        // a screen of 80 columns and 24 lines holds it.
        assert!(text.chars().count() < 80 * 24, "{text}");
        assert_eq!(lines.len(), 10, "{text}");
        assert!(
            lines[0].ends_with('…') && lines[0].chars().count() < 300,
            "{}",
            lines[0]
        );
        assert_eq!(lines[7], "  line 8 xxxxxxxxxx");
        assert_eq!(lines[8], "  (and 12 more lines from CANN)");
        assert!(lines[9].starts_with("hint: "));
    }

    #[test]
    fn hints_are_chosen_by_code_call_context_and_message() {
        let boot = crate::bootstrap::CONTEXT;
        let hint = |e: &CannError| e.usual_cause();
        // The KFC path on a stack that is too old.
        let too_old = restating(
            SYNC,
            boot,
            507018,
            "Get KFC DynTileFwkKernelServerInit api success, but func is nullptr",
        );
        assert_eq!(hint(&too_old), Some(Hint::KfcStackTooOld));
        assert!(too_old
            .to_string()
            .contains("needs CANN >= 8.5.0 and driver >= 25.2.0"));
        assert_eq!(
            hint(&restating(SYNC, boot, 507018, "a kernel crashed")),
            Some(Hint::AicpuException)
        );
        // The bootstrap launch on firmware without KFC, and 207000 elsewhere.
        let no_kfc = restating(
            LAUNCH_CALL,
            boot,
            207000,
            "Current ts version does not support aicpu kfc kernel launch",
        );
        assert_eq!(hint(&no_kfc), Some(Hint::KfcFirmware));
        assert!(no_kfc
            .to_string()
            .contains("task-scheduler firmware lacks the AICPU KFC feature"));
        assert_eq!(
            hint(&restating(LAUNCH_CALL, "simpler_aicpu_exec", 207000, "no")),
            Some(Hint::NotSupported)
        );
        assert_eq!(
            hint(&restating(SYNC, boot, 207000, "no")),
            Some(Hint::NotSupported)
        );
        // Init's 507018 is the runtime's verdict; exec's a task's.
        assert_eq!(
            hint(&restating(SYNC, RUNTIME_INIT_SYMBOL, 507018, "x")),
            Some(Hint::InitRejected)
        );
        assert_eq!(hint(&cann(507018)), Some(Hint::AicpuException));
        // 207001 names the log switches for the case it is not memory.
        let oom = cann(207001).to_string();
        assert!(
            oom.contains("usually not an out-of-memory")
                && oom.contains("ASCEND_SLOG_PRINT_TO_STDOUT=1 ASCEND_GLOBAL_LOG_LEVEL=1"),
            "{oom}"
        );
        // Op timeouts, with CANN's floor; 507000 only where a timeout shows.
        assert!(cann(507017).to_string().contains("below about 4.29 s"));
        assert_eq!(hint(&cann(507000)), Some(Hint::OpTimeout));
        assert_eq!(
            hint(&restating(LAUNCH_CALL, "simpler_aicpu_exec", 507000, "x")),
            None
        );
        assert_eq!(hint(&cann(507046)), Some(Hint::SyncTimeout));
        assert_eq!(hint(&cann(507899)), Some(Hint::Poisoned));
        assert_eq!(hint(&cann(107022)), Some(Hint::TaskAborted));
        assert_eq!(hint(&cann(107000)), None);
    }

    #[test]
    fn a_missing_report_takes_the_cause_cann_pins_down() {
        let failed = |cann| {
            Error::from(BootstrapError {
                device: 0,
                preinstall_name: "simpler_inner_0123456789abcdef.so".into(),
                failure: BootstrapFailure::NoReport { cann },
            })
            .to_string()
        };
        let too_old = restating(
            SYNC,
            crate::bootstrap::CONTEXT,
            507018,
            "Get KFC DynTileFwkKernelServerInit api success, but func is nullptr",
        );
        let text = failed(Some(too_old));
        assert_eq!(
            text,
            format!(
                "bootstrap of simpler_inner_0123456789abcdef.so on device 0 failed: the \
                 dispatcher did not write its report: aclrtSynchronizeStreamWithTimeout failed \
                 with 507018 ACL_ERROR_RT_AICPU_EXCEPTION: Get KFC DynTileFwkKernelServerInit \
                 api success, but func is nullptr\nhint: {}",
                Hint::KfcStackTooOld.text()
            )
        );
        let generic = restating(SYNC, crate::bootstrap::CONTEXT, 507018, "crashed");
        assert!(failed(Some(generic)).ends_with(&format!("\nhint: {NO_REPORT_HINT}")));
        assert_eq!(
            failed(None),
            format!(
                "bootstrap of simpler_inner_0123456789abcdef.so on device 0 failed: the \
                 dispatcher did not write its report\nhint: {NO_REPORT_HINT}"
            )
        );
    }
}
