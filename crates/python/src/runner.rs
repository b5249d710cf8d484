//! `simpler.DeviceRunner`: one device, one stream, the runtime SO installed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use simpler_host::artifacts::files;
use simpler_host::{Machine, RunnerInfo};

use crate::batch::Batch;
use crate::buffer::{host_bytes, DeviceBuffer};
use crate::bundle;
use crate::cann::Cann;
use crate::errors::{argument, IntoPy};
use crate::module::cache_name;
use crate::module::parse_launch_path;

/// A runner's state, shared with its batches; `None` once closed.
pub type SharedRunner = Arc<Mutex<Option<simpler_host::DeviceRunner>>>;

/// Locks `runner` (waiting for another thread's launch: call with the GIL
/// released).
pub fn lock(runner: &SharedRunner) -> MutexGuard<'_, Option<simpler_host::DeviceRunner>> {
    runner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error of every use of a closed runner.
pub fn closed() -> simpler_host::Error {
    simpler_host::Error::InvalidArgument(
        "the device runner was closed (close() or the end of its with block)".into(),
    )
}

/// A device with simpler's runtime SO installed and initialised.
///
/// Building one bootstraps the runtime SO the first time this process uses
/// it on the device; later runners reuse that. One runner runs one batch at
/// a time: threads sharing a runner take turns (its lock is waited for with
/// the GIL released); for batches in parallel, give each thread its own
/// runner on the same `Cann`. Closed by `close()`, at the end of a `with`
/// block, or when garbage-collected.
#[pyclass(module = "simpler", frozen)]
pub struct DeviceRunner {
    pub(crate) shared: SharedRunner,
    info: RunnerInfo,
    preflight: Duration,
}

/// Milliseconds as a timeout; `None` waits without a limit.
fn timeout(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

#[pymethods]
impl DeviceRunner {
    /// Builds a runner on `device` running each batch on `threads` AICPU
    /// threads. `dispatcher` and `runtime` are SO paths (default: the
    /// package's bundled SOs for the device's machine, or the artifacts
    /// directories named by `$SIMPLER_DEVICE_ARTIFACTS_DIR` /
    /// `$SIMPLER_ARTIFACTS_DIR`). `launch_path` is how init and exec are
    /// launched: `"type2"` or `"binary"`. Timeouts are in milliseconds;
    /// None waits without a limit.
    #[new]
    #[pyo3(signature = (
        cann, device=0, threads=1, *, dispatcher=None, runtime=None, launch_path="type2",
        launch_timeout_ms=Some(60_000), bootstrap_timeout_ms=Some(60_000), device_machine=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        cann: &Cann,
        device: i32,
        threads: u32,
        dispatcher: Option<PathBuf>,
        runtime: Option<PathBuf>,
        launch_path: &str,
        launch_timeout_ms: Option<u64>,
        bootstrap_timeout_ms: Option<u64>,
        device_machine: Option<&str>,
    ) -> PyResult<Self> {
        let machine = match device_machine {
            Some(name) => Machine::from_name(name).ok_or_else(|| {
                argument(format!("unknown machine {name:?}; use aarch64 or x86_64"))
            })?,
            None => cann.inner.device_machine(),
        };
        let mut builder = simpler_host::DeviceRunner::builder(&cann.inner)
            .device(device)
            .threads(threads)
            .launch_path(parse_launch_path(launch_path)?)
            .device_machine(machine)
            .launch_timeout(timeout(launch_timeout_ms))
            .bootstrap_timeout(timeout(bootstrap_timeout_ms));
        let triple = machine.triple();
        let bundled = |file: &str| -> PyResult<Option<PathBuf>> {
            match triple {
                Some(triple) => bundle::file(py, triple, file, true),
                None => Ok(None),
            }
        };
        match dispatcher {
            Some(path) => builder = builder.dispatcher_path(path),
            None => {
                if let Some(path) = bundled(files::DISPATCHER)? {
                    builder = builder.dispatcher_path(path);
                }
            }
        }
        match runtime {
            Some(path) => builder = builder.runtime_path(path),
            None => {
                if let Some(path) = bundled(files::RUNTIME)? {
                    builder = builder.runtime_path(path);
                }
            }
        }
        // Read, checked and fingerprinted first, so the report can show
        // that apart from the bootstrap (as `simpler run` does).
        let (built, preflight) = py
            .detach(|| {
                let started = Instant::now();
                let builder = builder.prepare()?;
                let preflight = started.elapsed();
                builder.build().map(|runner| (runner, preflight))
            })
            .py_err()?;
        Ok(DeviceRunner {
            info: built.info().clone(),
            shared: Arc::new(Mutex::new(Some(built))),
            preflight,
        })
    }

    /// Allocates `nbytes` of device memory (uninitialised).
    fn alloc(&self, py: Python<'_>, nbytes: usize) -> PyResult<DeviceBuffer> {
        py.detach(|| match lock(&self.shared).as_ref() {
            Some(runner) => runner.alloc(nbytes),
            None => Err(closed()),
        })
        .py_err()
        .map(DeviceBuffer::new)
    }

    /// A device buffer holding a copy of `data`: a numpy array (its bytes,
    /// C order), `bytes` or `bytearray`.
    fn upload(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<DeviceBuffer> {
        let bytes = host_bytes(data)?;
        py.detach(|| match lock(&self.shared).as_ref() {
            Some(runner) => runner.upload(&bytes),
            None => Err(closed()),
        })
        .py_err()
        .map(DeviceBuffer::new)
    }

    /// A new, empty batch of built-in operations on this runner.
    fn batch(&self) -> Batch {
        Batch::new(self.shared.clone())
    }

    /// What building the runner did: device, machine, threads, SO paths and
    /// sizes, fingerprint, preinstall name, where it was installed, whether
    /// this runner bootstrapped (`cache`: "miss", "hit", "joined"), bytes
    /// uploaded, the launch path, and the preflight, bootstrap and init
    /// times in seconds.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let i = &self.info;
        let d = PyDict::new(py);
        d.set_item("device", i.device)?;
        d.set_item("device_machine", i.device_machine.to_string())?;
        d.set_item("threads", i.threads)?;
        d.set_item("dispatcher", &i.dispatcher)?;
        d.set_item("runtime", &i.runtime)?;
        d.set_item("dispatcher_len", i.dispatcher_len)?;
        d.set_item("runtime_len", i.runtime_len)?;
        d.set_item("fingerprint", i.fingerprint)?;
        d.set_item("preinstall_name", i.preinstall_name.to_string())?;
        d.set_item("installed_path", &i.installed_path)?;
        d.set_item("cache", cache_name(i.cache))?;
        d.set_item("bytes_uploaded", i.bytes_uploaded)?;
        d.set_item("launch_path", i.launch_path.to_string())?;
        d.set_item("preflight_time", self.preflight.as_secs_f64())?;
        d.set_item("bootstrap_time", i.bootstrap_time.as_secs_f64())?;
        d.set_item("init_time", i.init_time.as_secs_f64())?;
        Ok(d)
    }

    /// Whether the runner was closed.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.shared).is_none())
    }

    /// Destroys the stream and frees the runner's own device memory
    /// (buffers it made stay valid until they are freed). Waits for a batch
    /// running on another thread. Closing twice is allowed.
    fn close(&self, py: Python<'_>) {
        py.detach(|| drop(lock(&self.shared).take()));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "<simpler.DeviceRunner device {} ({}), {} threads, {}>",
            self.info.device,
            self.info.device_machine,
            self.info.threads,
            self.info.preinstall_name
        )
    }
}
