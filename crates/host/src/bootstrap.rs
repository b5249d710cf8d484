//! The bootstrap: one `KERNEL_TYPE_AICPU_KFC` launch that makes CANN's
//! `libaicpu_extend_kernels.so` load our dispatcher, which installs the
//! runtime SO (or any kernel SO of a [`Module`](crate::Module)) as
//! `<preinstall>/simpler_inner_<fp>.so`. Cached process-wide per (CANN
//! instance, device, SO content).

use std::mem::size_of;
use std::sync::LazyLock;
use std::time::Duration;

use simpler_abi::bootstrap::{
    BOOTSTRAP_KERNEL_NAME_OFFSET, BOOTSTRAP_SO_NAME_OFFSET, REPORT_MAGIC,
};
use simpler_abi::names::KERNEL_TYPE_AICPU_KFC;
use simpler_abi::{
    BootstrapArgs, BootstrapReport, DeviceArgs, PreinstallName, ReportStage, ReportStatus,
    ABI_VERSION,
};

use crate::cann::{Device, LaunchDesc, Stream};
use crate::error::{BootstrapError, BootstrapFailure, CannError, Error, FailedStep};
use crate::image::{ContentKey, SoImage};
use crate::single_flight::{CacheStatus, SingleFlight};

/// What the bootstrap's CANN calls name as their context
/// ([`CannError::context`]); its hints are chosen by it.
pub(crate) const CONTEXT: &str = "bootstrap";

/// What a successful bootstrap left on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Installed {
    /// The device path the dispatcher wrote, from its report.
    pub path: String,
    /// FNV-1a 64 of the runtime SO: computed by the host and equal to the
    /// dispatcher's.
    pub fingerprint: u64,
    /// Bytes the bootstrap copied to the device.
    pub bytes_uploaded: u64,
}

/// (CANN instance id, device id, runtime SO content).
///
/// The content is known by its [`ContentKey`] rather than by its
/// fingerprint, so that a new runtime's fingerprint can be computed while
/// the device installs it (the host checks it against the dispatcher's
/// before anything uses the name); one content has one fingerprint, so
/// this caches exactly what a (device, fingerprint) key would.
pub(crate) type CacheKey = (u64, i32, ContentKey);

fn cache() -> &'static SingleFlight<CacheKey, Installed> {
    static CACHE: LazyLock<SingleFlight<CacheKey, Installed>> = LazyLock::new(SingleFlight::new);
    &CACHE
}

/// What one bootstrap sends.
pub(crate) struct Request<'a> {
    pub dispatcher: &'a [u8],
    pub runtime: &'a SoImage,
    pub timeout: Option<Duration>,
}

/// Installs `req.runtime` on `device` unless this process already did,
/// launching on `stream` (`None`: on a stream made for the bootstrap, only
/// if one is needed). Either way the runtime image knows its fingerprint
/// afterwards.
pub(crate) fn install(
    device: &Device,
    stream: Option<&mut Stream>,
    req: &Request<'_>,
) -> Result<(Installed, CacheStatus), Error> {
    let key = cache_key(device, req.runtime);
    let span = tracing::info_span!(
        "bootstrap",
        device = device.id(),
        bytes = req.dispatcher.len() + req.runtime.bytes().len(),
        fingerprint = tracing::field::Empty,
        cache = tracing::field::Empty,
    );
    let _entered = span.enter();
    let result = cache().get_or_compute(&key, || run(device, stream, req));
    if let Ok((installed, status)) = &result {
        req.runtime.learn_fingerprint(installed.fingerprint);
        span.record(
            "fingerprint",
            tracing::field::display(format_args!("{:016x}", installed.fingerprint)),
        );
        span.record("cache", tracing::field::debug(status));
        tracing::info!(path = %installed.path, "runtime SO installed");
    }
    result
}

/// Forgets that `runtime` is installed on `device`, so the next runner
/// bootstraps again (used when the installed SO turns out not to work).
pub(crate) fn forget(device: &Device, runtime: &SoImage) {
    cache().forget(&cache_key(device, runtime));
}

fn cache_key(device: &Device, runtime: &SoImage) -> CacheKey {
    (
        device.cann().instance_id(),
        device.id(),
        runtime.content_key(),
    )
}

/// One bootstrap launch. Unless the image knows its fingerprint, the host
/// computes it between the launch and the sync: the dispatcher hashes the
/// same bytes on the device meanwhile, so the two hashes overlap instead
/// of adding up, and the host's is ready to check against the report.
fn run(
    device: &Device,
    stream: Option<&mut Stream>,
    req: &Request<'_>,
) -> Result<Installed, Error> {
    let on_device = launch(device, stream, req, || {
        req.runtime.fingerprint();
    });
    // Computed already, unless the bootstrap failed before its launch.
    let fingerprint = req.runtime.fingerprint();
    let fail = |failure| {
        Error::from(BootstrapError {
            device: device.id(),
            preinstall_name: PreinstallName::new(fingerprint).to_string(),
            failure,
        })
    };
    let Launched {
        synced,
        report,
        bytes_uploaded,
    } = match on_device {
        Ok(launched) => launched,
        Err(Failed::Bootstrap(failure)) => return Err(fail(failure)),
        Err(Failed::Other(err)) => return Err(err),
    };
    check_report(&report, fingerprint, synced.err())
        .map(|path| Installed {
            path,
            fingerprint,
            bytes_uploaded,
        })
        .map_err(fail)
}

/// What the device side of a bootstrap returned.
struct Launched {
    /// The stream sync's outcome.
    synced: Result<(), CannError>,
    /// The report as read back.
    report: BootstrapReport,
    bytes_uploaded: u64,
}

/// Why the device side of a bootstrap ended early.
enum Failed {
    /// A step of the bootstrap failed.
    Bootstrap(BootstrapFailure),
    /// Not a bootstrap failure (a host-side error): passed on as it is.
    Other(Error),
}

/// Uploads, launches, runs `meanwhile` while the device works, syncs and
/// reads the report back. Every device buffer is an RAII guard, so all of
/// them are freed when this returns, on every path.
fn launch(
    device: &Device,
    stream: Option<&mut Stream>,
    req: &Request<'_>,
    meanwhile: impl FnOnce(),
) -> Result<Launched, Failed> {
    let in_bootstrap = |e: Error| match e {
        Error::Cann(c) => Failed::Bootstrap(BootstrapFailure::Cann(c)),
        other => Failed::Other(other),
    };
    let mut own;
    let stream = match stream {
        Some(stream) => stream,
        None => {
            own =
                Stream::create(device).map_err(|e| Failed::Bootstrap(BootstrapFailure::Cann(e)))?;
            &mut own
        }
    };
    let runtime_bytes = req.runtime.bytes();
    let dispatcher = device.upload(req.dispatcher).map_err(in_bootstrap)?;
    let runtime = device.upload(runtime_bytes).map_err(in_bootstrap)?;
    let report = device
        .alloc_zeroed(size_of::<BootstrapReport>())
        .map_err(in_bootstrap)?;
    let device_args = DeviceArgs {
        aicpu_so_bin: dispatcher.device_addr(),
        aicpu_so_len: req.dispatcher.len() as u64,
        device_id: device.id() as u64,
        inner_so_bin: runtime.device_addr(),
        inner_so_len: runtime_bytes.len() as u64,
        report: report.device_addr(),
        ..DeviceArgs::default()
    };
    let device_args_buf = device
        .upload(std::slice::from_ref(&device_args))
        .map_err(in_bootstrap)?;
    let bytes_uploaded = (req.dispatcher.len() + runtime_bytes.len() + size_of::<DeviceArgs>())
        as u64
        + size_of::<BootstrapReport>() as u64;

    let block = BootstrapArgs::new(device_args_buf.device_addr());
    let desc = LaunchDesc {
        kernel_type: KERNEL_TYPE_AICPU_KFC,
        op_name: simpler_abi::names::KFC_OP_NAME_C,
        block_dim: 1,
        block: bytemuck::bytes_of(&block),
        so_name_offset: BOOTSTRAP_SO_NAME_OFFSET,
        kernel_name_offset: BOOTSTRAP_KERNEL_NAME_OFFSET,
    };
    stream
        .launch_desc(&desc, CONTEXT)
        .map_err(|e| Failed::Bootstrap(BootstrapFailure::Cann(e)))?;
    meanwhile();
    // After a sync timeout (507046) the dispatcher may still be running;
    // the buffers are freed anyway, as the runner is not built and nothing
    // may be left behind. A bootstrap that outlives a generous timeout is a
    // hung device, which needs a reset whatever the host does.
    let synced = stream.sync_for(req.timeout, CONTEXT);

    // The report explains a failed launch better than its CANN code, so it
    // is read back whatever the sync returned.
    let mut raw = <BootstrapReport as bytemuck::Zeroable>::zeroed();
    match report.copy_to_host(std::slice::from_mut(&mut raw)) {
        Ok(()) => Ok(Launched {
            synced,
            report: raw,
            bytes_uploaded,
        }),
        Err(read) => match (synced, read) {
            (Err(e), _) | (Ok(()), Error::Cann(e)) => {
                Err(Failed::Bootstrap(BootstrapFailure::Cann(e)))
            }
            (Ok(()), other) => Err(Failed::Other(other)),
        },
    }
}

/// Turns the dispatcher's report (and the launch's CANN error, if any)
/// into the installed path or the precise failure.
fn check_report(
    report: &BootstrapReport,
    host_fingerprint: u64,
    cann: Option<CannError>,
) -> Result<String, BootstrapFailure> {
    if report.magic != REPORT_MAGIC {
        return Err(BootstrapFailure::NoReport { cann });
    }
    if report.abi_version != ABI_VERSION {
        return Err(BootstrapFailure::DispatcherAbi {
            found: report.abi_version,
            expected: ABI_VERSION,
        });
    }
    let path = report
        .path_str()
        .ok_or_else(|| BootstrapFailure::BadReport("the path is not NUL-terminated UTF-8".into()))?
        .to_owned();
    match ReportStatus::from_raw(report.status) {
        Some(ReportStatus::Ok) => {}
        Some(ReportStatus::Failed) => {
            let stage = ReportStage::from_raw(report.stage).ok_or_else(|| {
                BootstrapFailure::BadReport(format!("unknown stage {}", report.stage))
            })?;
            return Err(BootstrapFailure::Dispatcher(FailedStep {
                stage,
                errno: report.errno,
                path,
                bytes_written: report.bytes_written,
                cann,
            }));
        }
        None => {
            return Err(BootstrapFailure::BadReport(format!(
                "unknown status {}",
                report.status
            )))
        }
    }
    if let Some(e) = cann {
        // The dispatcher says it succeeded, yet the launch failed.
        return Err(BootstrapFailure::Cann(e));
    }
    if report.fingerprint != host_fingerprint {
        return Err(BootstrapFailure::FingerprintMismatch {
            host: host_fingerprint,
            device: report.fingerprint,
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use bytemuck::Zeroable;
    use simpler_abi::bootstrap::REPORT_PATH_LEN;

    use super::*;

    fn report(status: ReportStatus, stage: ReportStage, errno: i32, path: &str) -> BootstrapReport {
        let mut r = BootstrapReport::zeroed();
        r.magic = REPORT_MAGIC;
        r.abi_version = ABI_VERSION;
        r.status = status as u32;
        r.stage = stage as u32;
        r.errno = errno;
        r.fingerprint = 0xabc;
        r.path[..path.len()].copy_from_slice(path.as_bytes());
        r
    }

    #[test]
    fn a_good_report_yields_the_path() {
        let r = report(ReportStatus::Ok, ReportStage::None, 0, "/pre/x.so");
        assert_eq!(check_report(&r, 0xabc, None), Ok("/pre/x.so".into()));
    }

    #[test]
    fn failures_carry_stage_errno_and_path() {
        let r = report(ReportStatus::Failed, ReportStage::Rename, 13, "/pre/x.so");
        let Err(BootstrapFailure::Dispatcher(step)) = check_report(&r, 0xabc, None) else {
            panic!()
        };
        assert_eq!(
            (step.stage, step.errno, step.path.as_str()),
            (ReportStage::Rename, 13, "/pre/x.so")
        );
    }

    #[test]
    fn missing_mismatched_and_garbled_reports_are_errors() {
        assert_eq!(
            check_report(&BootstrapReport::zeroed(), 1, None),
            Err(BootstrapFailure::NoReport { cann: None })
        );
        let r = report(ReportStatus::Ok, ReportStage::None, 0, "/p");
        assert_eq!(
            check_report(&r, 0xdef, None),
            Err(BootstrapFailure::FingerprintMismatch {
                host: 0xdef,
                device: 0xabc
            })
        );
        let mut r = report(ReportStatus::Ok, ReportStage::None, 0, "/p");
        r.abi_version = ABI_VERSION + 1;
        assert!(matches!(
            check_report(&r, 0xabc, None),
            Err(BootstrapFailure::DispatcherAbi { .. })
        ));
        let mut r = report(ReportStatus::Ok, ReportStage::None, 0, "");
        r.path = [b'a'; REPORT_PATH_LEN];
        assert!(matches!(
            check_report(&r, 0xabc, None),
            Err(BootstrapFailure::BadReport(_))
        ));
        let mut r = report(ReportStatus::Failed, ReportStage::Open, 2, "/p");
        r.stage = 99;
        assert!(matches!(
            check_report(&r, 0xabc, None),
            Err(BootstrapFailure::BadReport(_))
        ));
    }

    #[test]
    fn the_launch_block_has_the_documented_offsets() {
        assert_eq!(offset_of!(BootstrapArgs, so_name), 272);
        assert_eq!(offset_of!(BootstrapArgs, kernel_name), 208);
        assert_eq!(size_of::<BootstrapArgs>(), 400);
    }
}
