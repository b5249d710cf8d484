//! The package's exceptions and the one conversion from `simpler_host::Error`.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{create_exception, PyErr};
use simpler_host::abi::OpCode;
use simpler_host::{Error, KernelStep, TaskFailure};

create_exception!(
    simpler,
    SimplerError,
    PyException,
    "Base class of every error simpler raises."
);
create_exception!(
    simpler,
    CannError,
    SimplerError,
    "A CANN call failed: `.code` (the aclError), `.name` and `.hint` (None when unknown), `.call` (the C function)."
);
create_exception!(
    simpler,
    KernelError,
    CannError,
    "A module's kernel failed, at its launch or at the sync after it: the CannError attributes, `.step` (\"launch\" or \"sync\"), `.kernels` (the names launched since the last sync)."
);
create_exception!(
    simpler,
    PreflightError,
    SimplerError,
    "A dispatcher, runtime or kernel SO failed the checks made before upload: `.file`, `.role`, `.problem`."
);
create_exception!(
    simpler,
    TaskError,
    SimplerError,
    "A batch ran but tasks failed: `.total` tasks, `.failures` a list of dicts (index, op, status, raw_status)."
);
create_exception!(
    simpler,
    ArgumentError,
    SimplerError,
    "An argument or a task was rejected on the host before anything reached the device."
);

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SimplerError", py.get_type::<SimplerError>())?;
    m.add("CannError", py.get_type::<CannError>())?;
    m.add("KernelError", py.get_type::<KernelError>())?;
    m.add("PreflightError", py.get_type::<PreflightError>())?;
    m.add("TaskError", py.get_type::<TaskError>())?;
    m.add("ArgumentError", py.get_type::<ArgumentError>())?;
    Ok(())
}

/// An [`ArgumentError`] with `message`.
pub fn argument(message: impl Into<String>) -> PyErr {
    ArgumentError::new_err(message.into())
}

/// The Python exception for `err`: the most specific class, its message
/// the host error's whole text, the facts as attributes.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| match build(py, &err) {
        Ok(e) => e,
        Err(e) => e,
    })
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let message = err.to_string();
    let exc = match err {
        Error::TasksFailed { total, failures } => {
            let exc = TaskError::new_err(message);
            let value = exc.value(py);
            value.setattr("total", total)?;
            value.setattr("failures", failure_dicts(py, failures)?)?;
            exc
        }
        Error::IncompleteBatch { done, total } => {
            let exc = TaskError::new_err(message);
            let value = exc.value(py);
            value.setattr("total", total)?;
            value.setattr("done", done)?;
            value.setattr("failures", Vec::<Py<PyAny>>::new())?;
            exc
        }
        Error::Preflight(p) => {
            let exc = PreflightError::new_err(message);
            let value = exc.value(py);
            value.setattr("file", &p.file)?;
            value.setattr("role", p.role.to_string())?;
            value.setattr("problem", p.problem.to_string())?;
            exc
        }
        Error::InvalidArgument(_) | Error::InvalidTask { .. } => ArgumentError::new_err(message),
        Error::Kernel(k) => {
            let exc = KernelError::new_err(message);
            let value = exc.value(py);
            set_cann(value, &k.source)?;
            value.setattr(
                "step",
                match k.step {
                    KernelStep::Launch => "launch",
                    KernelStep::Sync => "sync",
                },
            )?;
            let kernels: Vec<&str> = k.kernels.iter().map(|l| l.kernel.as_str()).collect();
            value.setattr("kernels", kernels)?;
            exc
        }
        other => match other.cann() {
            Some(cann) => {
                let exc = CannError::new_err(message);
                set_cann(exc.value(py), cann)?;
                exc
            }
            None => SimplerError::new_err(message),
        },
    };
    Ok(exc)
}

/// The attributes every `CannError` carries.
fn set_cann(
    value: &Bound<'_, pyo3::exceptions::PyBaseException>,
    cann: &simpler_host::CannError,
) -> PyResult<()> {
    value.setattr("code", cann.code)?;
    value.setattr("name", cann.name())?;
    value.setattr("hint", cann.hint())?;
    value.setattr("call", cann.call)?;
    Ok(())
}

fn failure_dicts<'py>(
    py: Python<'py>,
    failures: &[TaskFailure],
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    failures
        .iter()
        .map(|f| {
            let d = PyDict::new(py);
            d.set_item("index", f.index)?;
            d.set_item("op", op_name(f.op))?;
            d.set_item("status", f.status.map(|s| format!("{s:?}")))?;
            d.set_item("raw_status", f.raw_status)?;
            Ok(d)
        })
        .collect()
}

/// The op's name, or its number for a word the runtime does not define.
fn op_name(raw: u32) -> String {
    OpCode::from_raw(raw)
        .map(|op| format!("{op:?}"))
        .unwrap_or_else(|| format!("{raw:#x}"))
}

/// `Result<T, simpler_host::Error>` into a `PyResult`.
pub trait IntoPy<T> {
    /// Converts the error with [`to_py`].
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
