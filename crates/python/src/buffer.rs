//! `simpler.DeviceBuffer`: device memory owned by a Python object.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyType};
use simpler_host::DeviceBuffer as HostBuffer;

use crate::errors::{argument, IntoPy};

/// A buffer's memory, shared with the batches that name it; `None` once
/// freed.
pub type Shared = Arc<RwLock<Option<HostBuffer>>>;

/// Reads `shared` (waiting for a writer: call with the GIL released).
pub fn read(shared: &Shared) -> RwLockReadGuard<'_, Option<HostBuffer>> {
    shared.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(shared: &Shared) -> RwLockWriteGuard<'_, Option<HostBuffer>> {
    shared.write().unwrap_or_else(PoisonError::into_inner)
}

/// The error of every use of a freed buffer.
pub fn freed() -> simpler_host::Error {
    simpler_host::Error::InvalidArgument(
        "the device buffer was freed (free() or the end of its with block)".into(),
    )
}

/// Device memory. Freed when the object is garbage-collected, by `free()`,
/// or at the end of a `with` block; a batch that names it keeps the memory
/// until the batch has run.
#[pyclass(module = "simpler", frozen)]
pub struct DeviceBuffer {
    pub(crate) shared: Shared,
    len: usize,
    addr: u64,
}

impl DeviceBuffer {
    pub(crate) fn new(buffer: HostBuffer) -> Self {
        DeviceBuffer {
            len: buffer.len(),
            addr: buffer.device_addr(),
            shared: Arc::new(RwLock::new(Some(buffer))),
        }
    }
}

/// The bytes of `data`: `bytes`, `bytearray`, or anything numpy can turn
/// into an array (copied while the GIL is held, so no Python thread can
/// change them while they go to the device).
pub fn host_bytes(data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    let np = data.py().import("numpy")?;
    let array = np.call_method1("ascontiguousarray", (data,))?;
    if array
        .getattr("dtype")?
        .getattr("hasobject")?
        .extract::<bool>()?
    {
        return Err(argument(
            "an array of Python objects has no bytes to upload; use a numeric dtype",
        ));
    }
    let bytes = array
        .call_method1("reshape", (-1,))?
        .call_method1("view", (np.getattr("uint8")?,))?;
    let bytes: PyReadonlyArray1<'_, u8> = bytes.extract()?;
    Ok(bytes.as_slice()?.to_vec())
}

#[pymethods]
impl DeviceBuffer {
    /// Size in bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.len
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// The device address of the first byte.
    #[getter]
    fn device_addr(&self) -> u64 {
        self.addr
    }

    /// Whether the memory was freed.
    #[getter]
    fn freed(&self, py: Python<'_>) -> bool {
        py.detach(|| read(&self.shared).is_none())
    }

    /// The contents as a new 1-D numpy array of `dtype` (default uint8);
    /// the size must be a whole number of elements.
    #[pyo3(signature = (dtype=None))]
    fn to_numpy<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let np = py.import("numpy")?;
        let dtype = match dtype {
            Some(d) => np.call_method1("dtype", (d,))?,
            None => np.call_method1("dtype", ("u1",))?,
        };
        if dtype.getattr("hasobject")?.extract::<bool>()? {
            return Err(argument("device memory cannot hold Python objects"));
        }
        let size: usize = dtype.getattr("itemsize")?.extract()?;
        if size == 0 || !self.len.is_multiple_of(size) {
            return Err(argument(format!(
                "a {}-byte buffer is not a whole number of {size}-byte elements",
                self.len
            )));
        }
        let bytes = self.read_all(py)?;
        PyArray1::from_vec(py, bytes)
            .into_any()
            .call_method1("view", (dtype,))
    }

    /// The contents as `bytes`.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.read_all(py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Copies `data` (bytes, bytearray or an array) into the buffer at byte
    /// `offset`.
    #[pyo3(signature = (data, offset=0))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, offset: usize) -> PyResult<()> {
        let bytes = host_bytes(data)?;
        py.detach(|| match write(&self.shared).as_mut() {
            Some(buffer) => buffer.write_at(offset, &bytes),
            None => Err(freed()),
        })
        .py_err()
    }

    /// Frees the device memory now (a batch naming the buffer that has not
    /// run yet keeps it until it runs). Freeing twice is allowed.
    fn free(&self, py: Python<'_>) {
        let freed = py.detach(|| write(&self.shared).take());
        py.detach(move || drop(freed));
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
        self.free(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.freed(py) { ", freed" } else { "" };
        format!(
            "<simpler.DeviceBuffer {} bytes at {:#x}{state}>",
            self.len, self.addr
        )
    }
}

impl DeviceBuffer {
    fn read_all(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        py.detach(|| match read(&self.shared).as_ref() {
            Some(buffer) => {
                let mut bytes = vec![0u8; self.len];
                buffer.read_at(0, &mut bytes)?;
                Ok(bytes)
            }
            None => Err(freed()),
        })
        .py_err()
    }
}
