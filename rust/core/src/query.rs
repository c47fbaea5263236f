//! Query specs and their evaluation (docs/internals.md §1). The Python `Filter.matches` is the
//! reference; this module must agree with it on every input.

use crate::value::Value;

/// The 16 filter operators, by their Python `Operator.value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Like,
    NotLike,
    Regex,
    Exists,
    NotExists,
    Between,
    NotBetween,
    StartsWith,
}

/// A boolean condition tree.
#[derive(Debug, Clone)]
pub enum Cond {
    Filter { field: String, op: Op, value: Value },
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

/// A whole query: condition, sort keys (field, descending), offset, limit and projection.
#[derive(Debug, Clone, Default)]
pub struct QuerySpec {
    pub cond: Option<Cond>,
    pub sort: Vec<(String, bool)>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
    pub fields: Option<Vec<String>>,
}
