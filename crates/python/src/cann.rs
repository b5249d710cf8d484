//! `simpler.Cann`: a loaded CANN API (real or simulated).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use simpler_host::artifacts::{files, host_triple};
use simpler_host::CannSource;

use crate::bundle;
use crate::errors::IntoPy;

/// A loaded CANN API, shared by every runner built on it.
///
/// Loading the same libraries again returns the same instance; the
/// libraries stay loaded until the process exits. Safe to share between
/// threads.
#[pyclass(module = "simpler", frozen)]
pub struct Cann {
    pub(crate) inner: simpler_host::Cann,
}

impl Cann {
    fn load(py: Python<'_>, source: CannSource) -> PyResult<Self> {
        let inner = py.detach(|| simpler_host::Cann::load(&source)).py_err()?;
        Ok(Cann { inner })
    }
}

#[pymethods]
impl Cann {
    /// The CANN simulator: the package's bundled copy, unless
    /// `$SIMPLER_ARTIFACTS_DIR` names a directory to take it from.
    #[staticmethod]
    fn simulator(py: Python<'_>) -> PyResult<Self> {
        let source = match bundle::file(py, host_triple(), files::SIM_LIB, false)? {
            Some(lib) => CannSource::Libraries(vec![lib]),
            None => CannSource::Simulator,
        };
        Self::load(py, source)
    }

    /// Real CANN: `libascendcl.so` and `libruntime.so` from
    /// `$ASCEND_HOME_PATH/lib64`, else `$ASCEND_TOOLKIT_HOME/lib64`.
    #[staticmethod]
    fn toolkit(py: Python<'_>) -> PyResult<Self> {
        Self::load(py, CannSource::Toolkit)
    }

    /// These libraries, in order; each CANN symbol comes from the first
    /// that exports it.
    #[staticmethod]
    fn libraries(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Self> {
        Self::load(py, CannSource::Libraries(paths))
    }

    /// The library files loaded, as paths.
    #[getter]
    fn library_paths(&self) -> Vec<PathBuf> {
        self.inner.libraries().to_vec()
    }

    /// Whether this is the simulator.
    #[getter]
    fn is_simulator(&self) -> bool {
        self.inner.is_simulator()
    }

    /// The machine the device's AICPU runs, e.g. `"aarch64"`.
    #[getter]
    fn device_machine(&self) -> String {
        self.inner.device_machine().to_string()
    }

    /// `aclrtGetDeviceCount`.
    fn device_count(&self, py: Python<'_>) -> PyResult<u32> {
        py.detach(|| self.inner.device_count()).py_err()
    }

    /// The simulator's accounting for `device` as a dict (live and peak
    /// device bytes, live allocations, launches, ...); None on real CANN.
    fn sim_stats<'py>(&self, py: Python<'py>, device: i32) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(s) = py.detach(|| self.inner.sim_stats(device)).py_err()? else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("device_machine", s.device_machine)?;
        d.set_item("live_bytes", s.live_bytes)?;
        d.set_item("peak_bytes", s.peak_bytes)?;
        d.set_item("live_allocations", s.live_allocations)?;
        d.set_item("launches_aicpu", s.launches_aicpu)?;
        d.set_item("launches_kfc", s.launches_kfc)?;
        d.set_item("launches_other", s.launches_other)?;
        d.set_item("kfc_calls", s.kfc_calls)?;
        d.set_item("dispatcher_saves", s.dispatcher_saves)?;
        d.set_item("dlopens", s.dlopens)?;
        d.set_item("device_restarts", s.device_restarts)?;
        d.set_item("binaries_live", s.binaries_live)?;
        d.set_item("functions_live", s.functions_live)?;
        d.set_item("binary_loads", s.binary_loads)?;
        d.set_item("launches_cpu_kernel", s.launches_cpu_kernel)?;
        Ok(Some(d))
    }

    fn __repr__(&self) -> String {
        let libs: Vec<String> = self
            .inner
            .libraries()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "<simpler.Cann {} [{}]>",
            if self.inner.is_simulator() {
                "simulator"
            } else {
                "CANN"
            },
            libs.join(", ")
        )
    }
}
