//! The value model shared by every backend (see docs/internals.md §1).

use indexmap::IndexMap;

/// An ordered str-keyed mapping, as Python dicts are.
pub type Map = IndexMap<String, Value>;

/// A datetime as Python has it: wall-clock fields plus an optional UTC offset (naive when None).
#[derive(Debug, Clone, PartialEq)]
pub struct DateTimeValue {
    pub naive: chrono::NaiveDateTime,
    pub offset_seconds: Option<i32>,
}

/// One stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    DateTime(DateTimeValue),
    Date(chrono::NaiveDate),
    /// The decimal's canonical text (`str(Decimal)` in Python), kept exact.
    Decimal(String),
    List(Vec<Value>),
    Map(Map),
}

/// How deeply values may nest: a record's field value is at depth 0 and each list item or map
/// value one deeper than its container; a value deeper than this is refused when written and
/// reported when read, on every backend. Two limits (one for writing, the JSON reader's own
/// for reading) let a record be stored that no read could decode; there is one.
pub const MAX_DEPTH: usize = 256;

/// The message for a value nested past [`MAX_DEPTH`].
pub fn too_deep_message() -> String {
    format!("value nested more than {MAX_DEPTH} levels deep")
}

/// Whether `v`, found at `depth`, or anything inside it lies deeper than [`MAX_DEPTH`].
pub fn exceeds_depth(v: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return true;
    }
    match v {
        Value::List(items) => items.iter().any(|i| exceeds_depth(i, depth + 1)),
        Value::Map(m) => m.values().any(|i| exceeds_depth(i, depth + 1)),
        _ => false,
    }
}
