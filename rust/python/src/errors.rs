//! Mapping of core errors, panics and fork misuse onto `dataknobs_data.exceptions`.
//!
//! Errors are carried as [`BridgeError`] (no Python objects, no GIL needed) until the moment they
//! cross into Python, so the async path can build them where pyo3-async-runtimes already holds
//! the GIL instead of grabbing it on a tokio worker.

use std::any::Any;

use dataknobs_core::Error;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;

const EXCEPTIONS_MODULE: &str = "dataknobs_data.exceptions";

/// A failure on its way to Python.
#[derive(Debug)]
pub enum BridgeError {
    Core(Error),
    /// A Rust panic, caught before it could cross into Python.
    Panic(String),
    /// Already a Python exception (conversion failures and the like).
    Py(PyErr),
}

pub type BridgeResult<T> = std::result::Result<T, BridgeError>;

impl From<Error> for BridgeError {
    fn from(e: Error) -> Self {
        BridgeError::Core(e)
    }
}

impl From<PyErr> for BridgeError {
    fn from(e: PyErr) -> Self {
        BridgeError::Py(e)
    }
}

impl BridgeError {
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        BridgeError::Panic(panic_message(payload.as_ref()).to_string())
    }

    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            BridgeError::Core(e) => core_to_py(py, e),
            BridgeError::Panic(msg) => database_error(
                py,
                format!("internal error in dataknobs_data native code: {msg}"),
            ),
            BridgeError::Py(e) => e,
        }
    }
}

impl From<BridgeError> for PyErr {
    fn from(e: BridgeError) -> Self {
        Python::attach(|py| e.into_pyerr(py))
    }
}

pub use dataknobs_core::error::panic_message;

/// An instance of `dataknobs_data.exceptions.<class>(*args)`. The module is imported lazily
/// (and found in `sys.modules` after the first time) because it is pure Python that imports
/// this extension, not the other way round.
pub fn exception<'py, A>(py: Python<'py>, class: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let built = py
        .import(EXCEPTIONS_MODULE)
        .and_then(|m| m.getattr(class))
        .and_then(|cls| cls.call1(args));
    match built {
        Ok(instance) => PyErr::from_value(instance),
        Err(import_failure) => {
            // Without the exceptions module there is no right class to raise; keep the
            // original intent visible and chain the reason.
            let err = PyRuntimeError::new_err(format!(
                "{class} (could not build it from {EXCEPTIONS_MODULE})"
            ));
            err.set_cause(py, Some(import_failure));
            err
        }
    }
}

pub fn database_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    exception(py, "DatabaseError", (message.into(),))
}

pub fn serialization_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    exception(py, "SerializationError", ("native", message.into()))
}

pub fn query_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    exception(py, "QueryError", (message.into(),))
}

pub fn core_to_py(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::Duplicate(id) => exception(py, "DuplicateRecordError", (id,)),
        Error::Serialization { format, message } => {
            exception(py, "SerializationError", (format, message))
        }
        Error::DataFormat { format, message } => {
            exception(py, "DataFormatError", (format, message))
        }
        Error::Query(message) => exception(py, "QueryError", (message,)),
        Error::Config { parameter, message } => {
            exception(py, "ConfigurationError", (parameter, message))
        }
        Error::Operation { operation, message } => {
            exception(py, "DatabaseOperationError", (operation, message))
        }
        Error::Partial {
            operation,
            message,
            written,
            not_written,
        } => {
            let err = exception(py, "DatabaseOperationError", (operation, message));
            // What the batch did before it failed, for the caller to reconcile.
            let value = err.value(py);
            let _ = value.setattr("written", written);
            let _ = value.setattr("not_written", not_written);
            err
        }
        Error::Connection { backend, message } => {
            exception(py, "DatabaseConnectionError", (backend, message))
        }
        e @ Error::Timeout(_) => PyTimeoutError::new_err(e.to_string()),
        e @ Error::Closed(_) => database_error(py, e.to_string()),
        Error::Other(message) => database_error(py, message),
    }
}
