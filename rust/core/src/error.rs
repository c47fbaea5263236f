//! Core errors. Each variant maps to one class of `dataknobs_data.exceptions` in the bridge.

/// A failure the Python layer reports as a typed exception.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// DuplicateRecordError(id)
    #[error("Record with ID '{0}' already exists")]
    Duplicate(String),
    /// SerializationError(format, message)
    #[error("Serialization error ({format}): {message}")]
    Serialization { format: String, message: String },
    /// DataFormatError(format, message)
    #[error("Data format error ({format}): {message}")]
    DataFormat { format: String, message: String },
    /// QueryError(message)
    #[error("Query error: {0}")]
    Query(String),
    /// ConfigurationError(parameter, message)
    #[error("Configuration error for '{parameter}': {message}")]
    Config { parameter: String, message: String },
    /// DatabaseOperationError(operation, message)
    #[error("Database operation '{operation}' failed: {message}")]
    Operation { operation: String, message: String },
    /// DatabaseOperationError(operation, message) with the ids a batch wrote and did not
    /// write before it failed (attributes `written` and `not_written`).
    #[error("Database operation '{operation}' failed: {message}")]
    Partial {
        operation: String,
        message: String,
        written: Vec<String>,
        not_written: Vec<String>,
    },
    /// DatabaseConnectionError(backend, message)
    #[error("Failed to connect to {backend} backend: {message}")]
    Connection { backend: String, message: String },
    /// DatabaseError: the store was closed.
    #[error("{0} is closed")]
    Closed(String),
    /// TimeoutError (Python builtin): a page or call took longer than allowed.
    #[error("timed out after {0:.3}s")]
    Timeout(f64),
    /// DatabaseError(message) for anything else.
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn operation(operation: &str, message: impl std::fmt::Display) -> Self {
        Error::Operation {
            operation: operation.to_string(),
            message: message.to_string(),
        }
    }

    pub fn serialization(format: &str, message: impl std::fmt::Display) -> Self {
        Error::Serialization {
            format: format.to_string(),
            message: message.to_string(),
        }
    }

    pub fn data_format(format: &str, message: impl std::fmt::Display) -> Self {
        Error::DataFormat {
            format: format.to_string(),
            message: message.to_string(),
        }
    }
}

/// An error's message without its kind prefix, for wrapping it in a message of its own.
pub(crate) fn detail(e: &Error) -> String {
    match e {
        Error::DataFormat { message, .. } | Error::Serialization { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The text of a caught panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "panic with a non-string payload"
    }
}
