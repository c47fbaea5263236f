//! Driver errors onto the core's error kinds.

use tokio_postgres::error::SqlState;

use crate::error::Error;

pub(crate) fn connection_err(message: impl std::fmt::Display) -> Error {
    Error::Connection {
        backend: "postgres".into(),
        message: message.to_string(),
    }
}

/// Whether the error means the connection (not the statement) failed: such a call may be
/// retried on a fresh connection when nothing was written.
pub(crate) fn is_connection_failure(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        // No server error: the failure happened on the wire (I/O, TLS, protocol).
        None => {
            let text = e.to_string();
            text.contains("error connecting")
                || text.contains("connection")
                || text.contains("I/O")
                || text.contains("TLS")
        }
    }
}

/// The core error for a failed `operation`.
pub(crate) fn pg_err(operation: &str, e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::QUERY_CANCELED {
            return Error::operation(
                operation,
                format!(
                    "canceled by the server (statement timeout?): {}",
                    db.message()
                ),
            );
        }
    }
    if is_connection_failure(&e) {
        let detail = match std::error::Error::source(&e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        };
        return connection_err(detail);
    }
    match e.as_db_error() {
        Some(db) => {
            let mut msg = db.message().to_string();
            if let Some(d) = db.detail() {
                msg.push_str(" (");
                msg.push_str(d);
                msg.push(')');
            }
            Error::operation(operation, msg)
        }
        None => Error::operation(operation, e),
    }
}

/// The id named by a unique violation on the primary key: `Key (id)=(x) already exists.`
pub(crate) fn duplicate_id(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    if *db.code() != SqlState::UNIQUE_VIOLATION {
        return None;
    }
    let detail = db.detail()?;
    let rest = detail.strip_prefix("Key (id)=(")?;
    let id = rest.strip_suffix(") already exists.")?;
    Some(id.to_string())
}

pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}
