//! SDK errors onto the core's error kinds.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};

use crate::error::Error;

pub(crate) fn connection_err(message: impl std::fmt::Display) -> Error {
    Error::Connection {
        backend: "s3".into(),
        message: message.to_string(),
    }
}

/// The HTTP status the server answered with, if it answered.
pub(crate) fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// 412 (a precondition did not hold) or 409 (a concurrent conditional write won the race).
pub(crate) fn is_precondition<E>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(status(e), Some(412 | 409))
}

pub(crate) fn is_not_found<E>(e: &SdkError<E, HttpResponse>) -> bool {
    status(e) == Some(404)
}

/// The core error for a failed `operation` on `what` (a key or the bucket). Timeouts and
/// failures to reach the server are connection errors, the server's refusals operation errors.
pub(crate) fn s3_err<E>(operation: &str, what: &str, e: SdkError<E, HttpResponse>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) => {
            connection_err(format!("{operation} {what}: timed out ({detail})"))
        }
        SdkError::DispatchFailure(_) => connection_err(format!("{operation} {what}: {detail}")),
        _ => match status(&e) {
            Some(403) => Error::operation(operation, format!("{what}: access denied: {detail}")),
            Some(code) => Error::operation(operation, format!("{what}: HTTP {code}: {detail}")),
            None => Error::operation(operation, format!("{what}: {detail}")),
        },
    }
}
