//! How a write batch that fans out per record reports what happened: every record's outcome,
//! settled into the flags of a batch whose every record ran, or one error that says which ids
//! were and were not written (S3 and the search backend share these rules).

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::row::Row;

/// How one record of a write batch ended: Ok(true) written, Ok(false) not written for a reason
/// that is not a failure (absent, or taken for a create), Err failed.
pub(crate) type Outcome = Result<bool>;

/// For each row, whether it is the last with its id (the one a batch writes).
pub(crate) fn last_of_each(rows: &[Row]) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut out: Vec<bool> = rows
        .iter()
        .rev()
        .map(|r| seen.insert(r.id.as_str()))
        .collect();
    out.reverse();
    out
}

/// The flags of a write batch whose every record ran, or the error that says what happened:
/// `Duplicate` when nothing was written and a create found its key taken (`dup_is_failure`),
/// else `Partial` listing the ids written and not.
pub(crate) fn settle(
    operation: &str,
    ids: &[String],
    outcomes: Vec<Outcome>,
    dup_is_failure: bool,
) -> Result<Vec<bool>> {
    let failed = |o: &Outcome| o.is_err() || (dup_is_failure && matches!(o, Ok(false)));
    if !outcomes.iter().any(failed) {
        return Ok(outcomes.into_iter().map(|o| o.unwrap_or(false)).collect());
    }
    let mut written = Vec::new();
    let mut not_written = Vec::new();
    let mut cause: Option<String> = None;
    let mut taken: Option<&str> = None;
    for (id, o) in ids.iter().zip(&outcomes) {
        match o {
            Ok(true) => written.push(id.clone()),
            Ok(false) if !dup_is_failure => {}
            Ok(false) => {
                taken.get_or_insert(id);
                not_written.push(id.clone());
            }
            Err(e) => {
                cause.get_or_insert_with(|| crate::error::detail(e));
                not_written.push(id.clone());
            }
        }
    }
    if written.is_empty() && cause.is_none() {
        if let Some(id) = taken {
            return Err(Error::Duplicate(id.to_string()));
        }
    }
    let cause = match (cause, taken) {
        (Some(c), _) => c,
        (None, Some(id)) => format!("Record with ID '{id}' already exists (created meanwhile)"),
        (None, None) => "failed".to_string(),
    };
    Err(partial(operation, cause, written, not_written))
}

pub(crate) fn partial(
    operation: &str,
    cause: String,
    written: Vec<String>,
    not_written: Vec<String>,
) -> Error {
    Error::Partial {
        operation: operation.to_string(),
        message: format!(
            "{cause}; {} of {} records written (see .written and .not_written)",
            written.len(),
            written.len() + not_written.len()
        ),
        written,
        not_written,
    }
}
