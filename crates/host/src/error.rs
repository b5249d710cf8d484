//! The crate's one error type, the parts of it no other module owns, and
//! its conversions.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use simpler_abi::artifacts::ARTIFACTS_DIR_ENV;
use simpler_abi::cann::error as codes;
use simpler_abi::{OpCode, ReportStage, TaskStatus};

use crate::elf::PreflightError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `simpler-host`.
///
/// Every variant names what failed and where: the CANN call and its code,
/// the file and the problem, the dispatcher's report. The type is `Clone`
/// so one failed bootstrap can be handed to every runner that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CANN libraries could not be found, opened or resolved.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A CANN call returned an error.
    #[error(transparent)]
    Cann(#[from] CannError),
    /// A dispatcher or runtime SO failed the checks made before upload.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The bootstrap launch did not leave the runtime SO in place.
    #[error(transparent)]
    Bootstrap(Box<BootstrapError>),
    /// A maintenance command on a preinstall directory did not run.
    #[error(transparent)]
    Maintenance(Box<crate::maintenance::MaintenanceError>),
    /// `simpler_aicpu_init` failed on the device.
    #[error(
        "{init} failed on device {device} (host ABI version {abi_version}, {thread_count} \
         threads): {source}. Unless the CANN message names another cause (a crashed AICPU \
         process, say), the runtime SO returned non-zero, which it does for an ABI version \
         other than the one it was built with: check that the runtime SO and this host were \
         built from the same simpler-abi",
        init = simpler_abi::names::RUNTIME_INIT_SYMBOL
    )]
    InitRejected {
        /// The device.
        device: i32,
        /// The ABI version the host sent.
        abi_version: u32,
        /// The thread count the host sent.
        thread_count: u32,
        /// The CANN error the failure surfaced as.
        source: CannError,
    },
    /// A batch ran but some of its tasks did not complete with
    /// [`TaskStatus::Ok`].
    #[error("{} of {total} tasks failed: {}", failures.len(), list_failures(failures))]
    TasksFailed {
        /// Tasks in the batch.
        total: usize,
        /// The tasks that failed, in index order.
        failures: Vec<TaskFailure>,
    },
    /// The runtime returned success but did not finish every task.
    #[error("the runtime finished {done} of {total} tasks and reported success")]
    IncompleteBatch {
        /// Tasks the runtime counted as finished.
        done: u32,
        /// Tasks in the batch.
        total: u32,
    },
    /// A task was rejected on the host before anything was launched.
    #[error("task {index} ({op:?}) is invalid: {reason}")]
    InvalidTask {
        /// Index of the task in its batch.
        index: usize,
        /// Its operation.
        op: OpCode,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: Arc<std::io::Error>,
    },
    /// A default artifact was not found in any artifacts directory.
    #[error(
        "{file} not found; looked in: {}; {}",
        list_paths(searched),
        artifact_hint()
    )]
    ArtifactNotFound {
        /// The file name looked for.
        file: &'static str,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// An argument is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The runner that was bootstrapping this runtime panicked; nothing was
    /// cached, so building again retries.
    #[error("the bootstrap this runner waited on was abandoned by a panicking thread")]
    BootstrapAbandoned,
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
            let op = OpCode::from_raw(f.op)
                .map(|op| format!("{op:?}"))
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

impl CannError {
    /// CANN's name for the code, if it is one the project knows.
    pub fn name(&self) -> Option<&'static str> {
        codes::name(self.code)
    }

    /// What to do about the code, for the ones with a usual cause.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.code {
            codes::ACL_ERROR_RT_AICPU_EXCEPTION => {
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
            codes::ACL_ERROR_RT_DRV_INTERNAL_ERROR => {
                "the device is poisoned by an earlier fault; drop every runner and buffer on \
                 it so it is reset, then build a new runner"
            }
            codes::ACL_ERROR_RT_MEMORY_ALLOCATION => {
                "the device is out of memory; free buffers or ask for less"
            }
            codes::ACL_ERROR_RT_AICPU_TIMEOUT | codes::ACL_ERROR_RT_INTERNAL_ERROR => {
                "an AICPU task may have run past its op timeout"
            }
            codes::ACL_ERROR_RT_STREAM_SYNC_TIMEOUT => {
                "the host stopped waiting before the device finished; raise the runner's \
                 timeout if the work is expected to take this long"
            }
            codes::ACL_ERROR_RT_DEVICE_TASK_ABORT => {
                "an earlier task on this device failed and this one was aborted"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for CannError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.call)?;
        if let Some(context) = self.context {
            write!(f, " ({context})")?;
        }
        write!(f, " failed with {}", self.code)?;
        if let Some(name) = self.name() {
            write!(f, " {name}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(hint) = self.hint() {
            write!(f, " — {hint}")?;
        }
        Ok(())
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
        hint.map(|h| format!(" ({h})")).unwrap_or_default())]
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
        "no CANN toolkit: ASCEND_HOME_PATH and ASCEND_TOOLKIT_HOME are unset (source the \
         toolkit's set_env.sh, or name the libraries explicitly)"
    )]
    NoToolkit,
}

/// The bootstrap launch did not leave the runtime SO in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bootstrap of {preinstall_name} on device {device} failed: {failure}")]
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

/// How a bootstrap failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapFailure {
    /// A CANN call failed and the dispatcher left no report.
    #[error("{0}")]
    Cann(CannError),
    /// The KFC launch completed but the dispatcher never wrote its report.
    #[error(
        "the dispatcher did not write its report{}; libaicpu_extend_kernels did not run our \
         dispatcher (it refuses an SO without the three contract symbols, and keeps the first \
         dispatcher it loaded in a device process)",
        cann.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    NoReport {
        /// The CANN error the launch surfaced as, if any.
        cann: Option<CannError>,
    },
    /// The dispatcher reported a failed step.
    #[error("{0}")]
    Dispatcher(FailedStep),
    /// The dispatcher computed another fingerprint than the host.
    #[error(
        "the device computed fingerprint {device:016x} for the runtime SO, the host {host:016x}; \
         the bytes were damaged in transit"
    )]
    FingerprintMismatch {
        /// The host's fingerprint.
        host: u64,
        /// The device's.
        device: u64,
    },
    /// The dispatcher speaks another ABI version.
    #[error(
        "the dispatcher SO has ABI version {found}, this host {expected}; rebuild them together"
    )]
    DispatcherAbi {
        /// The dispatcher's.
        found: u32,
        /// The host's.
        expected: u32,
    },
    /// The report holds values no dispatcher writes.
    #[error("the dispatcher's report is unreadable: {0}")]
    BadReport(String),
}

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
    /// The CANN error the launch surfaced as, if any.
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
            write!(
                f,
                "; the preinstall directory must exist and be writable by the AICPU process"
            )?;
        }
        Ok(())
    }
}

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
             ACL_ERROR_RT_AICPU_EXCEPTION: task failed — an AICPU task failed"
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
                op: OpCode::AddF32 as u32,
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
}
