//! `simpler._native`: the Python classes over `simpler-host`.
//!
//! Every class is `frozen` and keeps its state behind its own lock, so
//! Python threads may share any object. Locks are only ever waited for with
//! the GIL released (inside `Python::detach`), and none is held while
//! taking the GIL back, so a thread waiting on the device never blocks the
//! interpreter and two threads cannot deadlock on the GIL and a lock.
//! Lock order: a runner before the buffers a batch uses; buffer methods take
//! only their own lock.

mod batch;
mod buffer;
mod bundle;
mod cann;
mod errors;
mod module;
mod runner;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// FNV-1a 64 of `data`: the hash the runtime's `fnv1a64` op computes and
/// the runtime SO's fingerprint.
#[pyfunction]
fn fnv1a64(data: &Bound<'_, PyBytes>) -> u64 {
    simpler_host::abi::fingerprint(data.as_bytes())
}

/// The directory inside the package holding the bundled files for
/// `triple` (it may not exist: a build from the source tree has none).
#[pyfunction]
fn bundled_dir(py: Python<'_>, triple: &str) -> PyResult<std::path::PathBuf> {
    Ok(bundle::root(py)?.join(triple))
}

/// The native half of the `simpler` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<cann::Cann>()?;
    m.add_class::<runner::DeviceRunner>()?;
    m.add_class::<buffer::DeviceBuffer>()?;
    m.add_class::<batch::Batch>()?;
    m.add_class::<module::Module>()?;
    m.add_function(wrap_pyfunction!(fnv1a64, m)?)?;
    m.add_function(wrap_pyfunction!(bundled_dir, m)?)?;
    m.add("HOST_TRIPLE", simpler_host::artifacts::host_triple())?;
    Ok(())
}
