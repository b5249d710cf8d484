//! `simpler.Module`: any AICPU SO installed through the dispatcher, its
//! declared kernels launched by name.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use simpler_host::artifacts::files;
use simpler_host::{CacheStatus, LaunchPath, Machine, ModuleInfo, Stream};

use crate::buffer::{host_bytes, DeviceBuffer};
use crate::bundle;
use crate::cann::Cann;
use crate::errors::{argument, IntoPy};

/// The module and the stream its launches go to; `None` once closed.
type Shared = Arc<Mutex<Option<(simpler_host::Module, Stream)>>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Option<(simpler_host::Module, Stream)>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn closed() -> simpler_host::Error {
    simpler_host::Error::InvalidArgument(
        "the module was closed (close() or the end of its with block)".into(),
    )
}

/// `"type2"` or `"binary"`; anything else is an `ArgumentError` naming
/// both.
pub fn parse_launch_path(name: &str) -> PyResult<LaunchPath> {
    name.parse().map_err(|_| {
        argument(format!(
            "unknown launch path {name:?}; use {}",
            LaunchPath::ALL
                .iter()
                .map(|p| format!("{:?}", p.to_string()))
                .collect::<Vec<_>>()
                .join(" or ")
        ))
    })
}

/// How a bootstrap or registration cache answered, as `info()` dicts say.
pub(crate) fn cache_name(cache: CacheStatus) -> &'static str {
    match cache {
        CacheStatus::Miss => "miss",
        CacheStatus::Hit => "hit",
        CacheStatus::Joined => "joined",
    }
}

/// An AICPU shared object installed on a device, with the kernels declared
/// for it: functions `uint32_t name(void *param)` it defines and exports.
///
/// Building one checks the SO and every kernel before anything reaches the
/// device, then installs the SO (once per process, device and content) and,
/// on the `"binary"` launch path, registers the kernels. Launches go to the
/// module's own stream and take turns (its lock is waited for with the GIL
/// released). Closed by `close()`, at the end of a `with` block, or when
/// garbage-collected; the SO file stays installed on the device
/// (content-addressed; `simpler device gc` cleans up).
#[pyclass(module = "simpler", frozen)]
pub struct Module {
    shared: Shared,
    info: ModuleInfo,
}

#[pymethods]
impl Module {
    /// Installs the SO at `so` on `device` with `kernels` declared.
    /// `launch_path` is `"type2"` (every CANN) or `"binary"` (a CANN
    /// exporting the `rts*` calls). `dispatcher` defaults to the bundled
    /// one for the device's machine.
    #[new]
    #[pyo3(signature = (
        cann, so, kernels, *, device=0, launch_path="type2", dispatcher=None,
        bootstrap_timeout_ms=Some(60_000), device_machine=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        cann: &Cann,
        so: PathBuf,
        kernels: Vec<String>,
        device: i32,
        launch_path: &str,
        dispatcher: Option<PathBuf>,
        bootstrap_timeout_ms: Option<u64>,
        device_machine: Option<&str>,
    ) -> PyResult<Self> {
        let path = parse_launch_path(launch_path)?;
        if kernels.is_empty() {
            return Err(argument("declare at least one kernel"));
        }
        let machine = match device_machine {
            Some(name) => Machine::from_name(name).ok_or_else(|| {
                argument(format!("unknown machine {name:?}; use aarch64 or x86_64"))
            })?,
            None => cann.inner.device_machine(),
        };
        let mut builder = simpler_host::Module::builder(&cann.inner)
            .device(device)
            .so_path(so)
            .kernels(kernels)
            .launch_path(path)
            .device_machine(machine)
            .bootstrap_timeout(bootstrap_timeout_ms.map(Duration::from_millis));
        let bundled = match (dispatcher, machine.triple()) {
            (Some(path), _) => Some(path),
            (None, Some(triple)) => bundle::file(py, triple, files::DISPATCHER, true)?,
            (None, None) => None,
        };
        if let Some(path) = bundled {
            builder = builder.dispatcher_path(path);
        }
        let (module, stream) = py
            .detach(|| {
                let module = builder.build()?;
                let stream = Stream::new(module.device())?;
                Ok::<_, simpler_host::Error>((module, stream))
            })
            .py_err()?;
        Ok(Module {
            info: module.info().clone(),
            shared: Arc::new(Mutex::new(Some((module, stream)))),
        })
    }

    /// Launches `kernel` on `threads` AICPU threads with `payload` (bytes,
    /// bytearray or an array; the kernel's `param` points at a copy) and
    /// waits at most `timeout_ms` (None: no limit). A kernel returning
    /// non-zero raises `KernelError` (CANN's 507018).
    #[pyo3(signature = (kernel, payload=None, *, threads=1, timeout_ms=Some(60_000)))]
    fn launch(
        &self,
        py: Python<'_>,
        kernel: &str,
        payload: Option<&Bound<'_, PyAny>>,
        threads: u32,
        timeout_ms: Option<u64>,
    ) -> PyResult<()> {
        let bytes = match payload {
            Some(data) => host_bytes(data)?,
            None => Vec::new(),
        };
        let timeout = timeout_ms.map(Duration::from_millis);
        py.detach(|| match lock(&self.shared).as_mut() {
            Some((module, stream)) => module.kernel(kernel)?.run(stream, threads, &bytes, timeout),
            None => Err(closed()),
        })
        .py_err()
    }

    /// Allocates `nbytes` of device memory on the module's device, for
    /// the kernels' data.
    fn alloc(&self, py: Python<'_>, nbytes: usize) -> PyResult<DeviceBuffer> {
        py.detach(|| match lock(&self.shared).as_ref() {
            Some((module, _)) => module.device().alloc(nbytes),
            None => Err(closed()),
        })
        .py_err()
        .map(DeviceBuffer::new)
    }

    /// A buffer on the module's device holding a copy of `data`.
    fn upload(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<DeviceBuffer> {
        let bytes = host_bytes(data)?;
        py.detach(|| match lock(&self.shared).as_ref() {
            Some((module, _)) => module.device().upload(&bytes),
            None => Err(closed()),
        })
        .py_err()
        .map(DeviceBuffer::new)
    }

    /// The declared kernels, in declaration order.
    #[getter]
    fn kernels(&self) -> Vec<String> {
        self.info.kernels.clone()
    }

    /// What building the module did: device, machine, SO and dispatcher
    /// paths and sizes, fingerprint, preinstall name, where it was
    /// installed, `cache` and `registration` ("miss", "hit", "joined";
    /// registration None on the type-2 path), bytes uploaded, launch path,
    /// and the bootstrap and registration times in seconds.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let i = &self.info;
        let d = PyDict::new(py);
        d.set_item("device", i.device)?;
        d.set_item("device_machine", i.device_machine.to_string())?;
        d.set_item("so", &i.so)?;
        d.set_item("dispatcher", &i.dispatcher)?;
        d.set_item("so_len", i.so_len)?;
        d.set_item("dispatcher_len", i.dispatcher_len)?;
        d.set_item("fingerprint", i.fingerprint)?;
        d.set_item("preinstall_name", i.preinstall_name.to_string())?;
        d.set_item("installed_path", &i.installed_path)?;
        d.set_item("cache", cache_name(i.cache))?;
        d.set_item("bytes_uploaded", i.bytes_uploaded)?;
        d.set_item("launch_path", i.launch_path.to_string())?;
        d.set_item("kernels", i.kernels.clone())?;
        d.set_item("registration", i.registration.map(cache_name))?;
        d.set_item("bootstrap_time", i.bootstrap_time.as_secs_f64())?;
        d.set_item("registration_time", i.registration_time.as_secs_f64())?;
        Ok(d)
    }

    /// Whether the module was closed.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.shared).is_none())
    }

    /// Destroys the stream and releases the kernels' registration (shared
    /// with equal modules still open). Waits for a launch on another
    /// thread. Closing twice is allowed.
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
            "<simpler.Module {} on device {} ({}), kernels {:?}>",
            self.info.so, self.info.device, self.info.launch_path, self.info.kernels
        )
    }
}
