//! HTTP outcomes onto the core's error kinds.

use crate::error::Error;

pub(crate) fn connection_err(message: impl std::fmt::Display) -> Error {
    Error::Connection {
        backend: "elasticsearch".into(),
        message: message.to_string(),
    }
}

/// The error for a request the server refused: `operation` on `what`, with the status and the
/// server's own reason (its `error.type` and `error.reason` when the body says them).
pub(crate) fn http_err(operation: &str, what: &str, status: u16, body: &[u8]) -> Error {
    let reason = reason_of(body);
    match status {
        401 | 403 => Error::Connection {
            backend: "elasticsearch".into(),
            message: format!("{operation} {what}: HTTP {status} (not authorised): {reason}"),
        },
        _ => Error::operation(operation, format!("{what}: HTTP {status}: {reason}")),
    }
}

/// `type: reason` of an error body, else the body's first 300 characters.
pub(crate) fn reason_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(e) = j.get("error") {
            return error_text(e);
        }
    }
    text.chars().take(300).collect()
}

/// `type: reason` of an error object (a bulk item's or a response's).
pub(crate) fn error_text(e: &serde_json::Value) -> String {
    match e {
        serde_json::Value::Object(o) => {
            let ty = o.get("type").and_then(|v| v.as_str()).unwrap_or("error");
            let reason = o.get("reason").and_then(|v| v.as_str()).unwrap_or("");
            let cause = o
                .get("caused_by")
                .map(|c| format!(" (caused by {})", error_text(c)))
                .unwrap_or_default();
            format!("{ty}: {reason}{cause}")
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
