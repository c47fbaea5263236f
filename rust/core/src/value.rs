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
