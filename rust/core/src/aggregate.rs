//! Aggregations (docs/aggregations.md): `GROUP BY` fields and metrics (count, sum, avg, min,
//! max, cardinality) computed by streaming matching rows through one accumulator per group, so
//! memory holds the groups (and a cardinality's distinct values), never the rows. Every backend
//! that does not push an aggregation down to its engine runs this; one that does must give the
//! same rows.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::num::{parse_decimal, DecimalText};
use crate::query::{resolve, sort_cmp, CompiledQuery, QuerySpec};
use crate::row::{Reads, Row};
use crate::value::Value;

/// What a metric computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Cardinality,
}

impl AggOp {
    pub const NAMES: &'static str = "count, sum, avg, min, max, cardinality";

    pub fn parse(s: &str) -> Option<AggOp> {
        Some(match s {
            "count" => AggOp::Count,
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "cardinality" => AggOp::Cardinality,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AggOp::Count => "count",
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Cardinality => "cardinality",
        }
    }
}

/// One named metric: `op` over `field` (None only for `count`, which then counts rows).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub op: AggOp,
    pub field: Option<String>,
}

/// A metric as the caller names it: (name, op, field or None), checked by [`AggSpec::new`].
pub type MetricParts = (String, String, Option<String>);

/// The group fields and the metrics of one aggregation, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    group_by: Vec<String>,
    metrics: Vec<Metric>,
}

impl AggSpec {
    /// Checks the parts: every metric but `count` needs a field, and a result row's keys (the
    /// group fields, then the metric names) must be distinct, or one would hide another.
    pub fn new(group_by: Vec<String>, metrics: Vec<MetricParts>) -> Result<Self> {
        let mut names: Vec<&str> = Vec::new();
        for g in &group_by {
            if names.contains(&g.as_str()) {
                return Err(Error::Query(format!("group_by names field {g:?} twice")));
            }
            names.push(g);
        }
        let mut out = Vec::with_capacity(metrics.len());
        for (name, op, field) in &metrics {
            let Some(parsed) = AggOp::parse(op) else {
                return Err(Error::Query(format!(
                    "metric {name:?}: unknown aggregation op {op:?} (expected one of {})",
                    AggOp::NAMES
                )));
            };
            if field.is_none() && parsed != AggOp::Count {
                return Err(Error::Query(format!(
                    "metric {name:?}: {op} needs a field name (only count takes None)"
                )));
            }
            if names.contains(&name.as_str()) {
                return Err(Error::Query(format!(
                    "metric name {name:?} is also a group field or another metric's name"
                )));
            }
            names.push(name);
            out.push(Metric {
                name: name.clone(),
                op: parsed,
                field: field.clone(),
            });
        }
        Ok(AggSpec {
            group_by,
            metrics: out,
        })
    }

    pub fn group_by(&self) -> &[String] {
        &self.group_by
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The keys of a result row, in order: the group fields, then the metric names.
    pub fn columns(&self) -> Vec<&str> {
        self.group_by
            .iter()
            .map(String::as_str)
            .chain(self.metrics.iter().map(|m| m.name.as_str()))
            .collect()
    }

    /// `spec`'s condition with the paths this aggregation reads as its sort keys, so that
    /// `Reads::new(&it, true, true)` decodes exactly what both the filter and the accumulators
    /// need from a stored row (its sort plays no other part).
    pub fn reading(&self, spec: &QuerySpec) -> QuerySpec {
        let sort = self
            .group_by
            .iter()
            .chain(self.metrics.iter().filter_map(|m| m.field.as_ref()))
            .map(|f| (f.clone(), false))
            .collect();
        QuerySpec {
            cond: spec.cond.clone(),
            sort,
            ..QuerySpec::default()
        }
    }
}

/// A metric's value in a result row. Sums of ints are exact (an i128 holds the sum of 2^64
/// i64s), so they may exceed the value model's 64 bits.
#[derive(Debug, Clone, PartialEq)]
pub enum AggValue {
    Null,
    Int(i128),
    Float(f64),
    Value(Value),
}

/// One result row: the group key values (None for a missing field), then the metric values,
/// in the order of [`AggSpec::columns`].
#[derive(Debug, Clone, PartialEq)]
pub struct AggRow {
    pub keys: Vec<Value>,
    pub metrics: Vec<AggValue>,
}

// ---------------------------------------------------------------------------------------------
// The canonical order: group identity, result order, min/max and cardinality

fn kind(v: &Value) -> u8 {
    match v {
        Value::Bool(_) => 0,
        Value::Int(_) => 1,
        Value::Float(_) => 2,
        Value::Decimal(_) => 3,
        Value::Str(_) => 4,
        Value::DateTime(_) => 5,
        Value::Date(_) => 6,
        Value::Bytes(_) => 7,
        Value::List(_) => 8,
        Value::Map(_) => 9,
        Value::Null => 10,
    }
}

/// A total order over values that is the sort order of `sort_by` (internals §1: numbers, NaN,
/// str, datetimes, dates, bytes, the rest; None last) with its ties broken, so that two values
/// are equal only when they are the same value: `True`, `1` and `1.0` sort together but are
/// three values (kind order bool, int, float, Decimal), an aware datetime's offset and a
/// Decimal's text count, and lists and dicts compare item by item (dicts by sorted key).
pub fn canonical_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => return Ordering::Equal,
        (Value::Null, _) => return Ordering::Greater,
        (_, Value::Null) => return Ordering::Less,
        _ => {}
    }
    sort_cmp(a, b)
        .then_with(|| kind(a).cmp(&kind(b)))
        .then_with(|| match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
            (Value::Decimal(x), Value::Decimal(y)) => x.cmp(y),
            (Value::DateTime(x), Value::DateTime(y)) => x
                .offset_seconds
                .cmp(&y.offset_seconds)
                .then_with(|| x.naive.cmp(&y.naive)),
            (Value::List(x), Value::List(y)) => {
                for (p, q) in x.iter().zip(y) {
                    let o = canonical_cmp(p, q);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                x.len().cmp(&y.len())
            }
            (Value::Map(x), Value::Map(y)) => {
                let mut xs: Vec<_> = x.iter().collect();
                let mut ys: Vec<_> = y.iter().collect();
                xs.sort_by(|p, q| p.0.cmp(q.0));
                ys.sort_by(|p, q| p.0.cmp(q.0));
                for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
                    let o = kx.cmp(ky).then_with(|| canonical_cmp(vx, vy));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                xs.len().cmp(&ys.len())
            }
            _ => Ordering::Equal,
        })
}

/// A value ordered by [`canonical_cmp`], for the group map and distinct sets.
#[derive(Debug, Clone)]
struct Canon(Value);

impl PartialEq for Canon {
    fn eq(&self, other: &Self) -> bool {
        canonical_cmp(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for Canon {}
impl PartialOrd for Canon {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Canon {
    fn cmp(&self, other: &Self) -> Ordering {
        canonical_cmp(&self.0, &other.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Exact float sums

/// Python's `math.fsum`: the correctly rounded sum whatever the order of the terms (Shewchuk's
/// partials, CPython's final rounding), so every backend, scanning in its own order, gets the
/// same float. A NaN term, or infinities of both signs, give NaN.
#[derive(Debug, Clone, Default)]
pub struct FSum {
    partials: Vec<f64>,
    special: f64,
    has_special: bool,
    pos_inf: bool,
    neg_inf: bool,
    nan: bool,
}

impl FSum {
    pub fn add(&mut self, mut x: f64) {
        if !x.is_finite() {
            self.has_special = true;
            if x.is_nan() {
                self.nan = true;
            } else if x > 0.0 {
                self.pos_inf = true;
            } else {
                self.neg_inf = true;
            }
            self.special = x;
            return;
        }
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        self.partials.push(x);
    }

    pub fn value(&self) -> f64 {
        if self.has_special {
            if self.nan || (self.pos_inf && self.neg_inf) {
                return f64::NAN;
            }
            return self.special;
        }
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Round half-even as the exact sum would: the partials below `lo` decide a tie.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
        hi
    }
}

// ---------------------------------------------------------------------------------------------
// Accumulators

/// The numbers of a sum or an average: ints exactly, and every term as a float for when a
/// float (or Decimal) turns up, which makes the result a float.
#[derive(Debug, Clone, Default)]
struct SumAcc {
    ints: i128,
    floats: FSum,
    any_float: bool,
    n: u64,
}

impl SumAcc {
    /// Numbers only: bool, str, datetime and the rest are not summed.
    fn add(&mut self, v: &Value) {
        let f = match v {
            Value::Int(i) => {
                self.ints += i128::from(*i);
                *i as f64
            }
            Value::Float(f) => {
                self.any_float = true;
                *f
            }
            Value::Decimal(s) => {
                self.any_float = true;
                decimal_to_f64(s)
            }
            _ => return,
        };
        self.floats.add(f);
        self.n += 1;
    }

    fn sum(&self) -> AggValue {
        match (self.n, self.any_float) {
            (0, _) => AggValue::Null,
            (_, false) => AggValue::Int(self.ints),
            (_, true) => AggValue::Float(self.floats.value()),
        }
    }

    fn avg(&self) -> AggValue {
        // float(sum) / count, each step correctly rounded.
        match self.sum() {
            AggValue::Int(s) => AggValue::Float(s as f64 / self.n as f64),
            AggValue::Float(s) => AggValue::Float(s / self.n as f64),
            other => other,
        }
    }
}

/// `float(Decimal(s))`: the correctly rounded float of the decimal's text.
fn decimal_to_f64(s: &str) -> f64 {
    match parse_decimal(s) {
        Some(DecimalText::Infinite { neg: true }) => f64::NEG_INFINITY,
        Some(DecimalText::Infinite { neg: false }) => f64::INFINITY,
        Some(DecimalText::Finite(_)) => s.trim().parse().unwrap_or(f64::NAN),
        Some(DecimalText::NaN) | None => f64::NAN,
    }
}

#[derive(Debug, Clone)]
enum Acc {
    Rows(u64),
    Present(u64),
    Sum(SumAcc),
    Avg(SumAcc),
    Min(Option<Value>),
    Max(Option<Value>),
    Distinct(std::collections::BTreeSet<Canon>),
}

impl Acc {
    fn new(m: &Metric) -> Acc {
        match (m.op, &m.field) {
            (AggOp::Count, None) => Acc::Rows(0),
            (AggOp::Count, Some(_)) => Acc::Present(0),
            (AggOp::Sum, _) => Acc::Sum(SumAcc::default()),
            (AggOp::Avg, _) => Acc::Avg(SumAcc::default()),
            (AggOp::Min, _) => Acc::Min(None),
            (AggOp::Max, _) => Acc::Max(None),
            (AggOp::Cardinality, _) => Acc::Distinct(Default::default()),
        }
    }

    /// `v`: the metric field's value in the row (None when missing or None).
    fn add(&mut self, v: Option<&Value>) {
        if let Acc::Rows(n) = self {
            *n += 1;
            return;
        }
        let Some(v) = v else { return };
        match self {
            Acc::Rows(_) => {}
            Acc::Present(n) => *n += 1,
            Acc::Sum(s) | Acc::Avg(s) => s.add(v),
            Acc::Min(m) => {
                if m.as_ref()
                    .is_none_or(|cur| canonical_cmp(v, cur) == Ordering::Less)
                {
                    *m = Some(v.clone());
                }
            }
            Acc::Max(m) => {
                if m.as_ref()
                    .is_none_or(|cur| canonical_cmp(v, cur) == Ordering::Greater)
                {
                    *m = Some(v.clone());
                }
            }
            Acc::Distinct(set) => {
                set.insert(Canon(v.clone()));
            }
        }
    }

    fn finish(self) -> AggValue {
        match self {
            Acc::Rows(n) | Acc::Present(n) => AggValue::Int(i128::from(n)),
            Acc::Sum(s) => s.sum(),
            Acc::Avg(s) => s.avg(),
            Acc::Min(v) | Acc::Max(v) => v.map_or(AggValue::Null, AggValue::Value),
            Acc::Distinct(set) => AggValue::Int(set.len() as i128),
        }
    }
}

/// A field's value as an aggregation reads it: missing and None are both None.
fn present<'a>(row: &'a Row, path: &str) -> Option<std::borrow::Cow<'a, Value>> {
    resolve(row, path).filter(|v| !matches!(**v, Value::Null))
}

/// The groups met so far, in result order, each with one accumulator per metric.
pub struct Aggregator {
    spec: Arc<AggSpec>,
    groups: BTreeMap<Vec<Canon>, Vec<Acc>>,
}

impl Aggregator {
    pub fn new(spec: Arc<AggSpec>) -> Aggregator {
        Aggregator {
            spec,
            groups: BTreeMap::new(),
        }
    }

    /// Adds one matching row to its group.
    pub fn push(&mut self, row: &Row) {
        let key: Vec<Canon> = self
            .spec
            .group_by
            .iter()
            .map(|g| Canon(present(row, g).map_or(Value::Null, |v| v.into_owned())))
            .collect();
        let spec = &self.spec;
        let accs = self
            .groups
            .entry(key)
            .or_insert_with(|| spec.metrics.iter().map(Acc::new).collect());
        for (acc, m) in accs.iter_mut().zip(&spec.metrics) {
            match &m.field {
                Some(f) => acc.add(present(row, f).as_deref()),
                None => acc.add(None),
            }
        }
    }

    /// The result rows in group order. Without group fields there is exactly one row, even
    /// when no row matched (count 0, the other metrics None).
    pub fn finish(mut self) -> Vec<AggRow> {
        if self.spec.group_by.is_empty() && self.groups.is_empty() {
            let accs = self.spec.metrics.iter().map(Acc::new).collect();
            self.groups.insert(Vec::new(), accs);
        }
        self.groups
            .into_iter()
            .map(|(key, accs)| AggRow {
                keys: key.into_iter().map(|c| c.0).collect(),
                metrics: accs.into_iter().map(Acc::finish).collect(),
            })
            .collect()
    }
}

/// Result rows from counts an engine computed per group key (`GROUP BY` over the keys'
/// stored text): keys the core holds to be one value (a dict's keys in another order, say) are
/// merged, adding their counts, and the groups come in the core's order. Only for
/// aggregations whose every metric is a count; `counts` hold one per metric.
pub fn from_group_counts(agg: &AggSpec, groups: Vec<(Vec<Value>, Vec<u64>)>) -> Vec<AggRow> {
    let mut merged: BTreeMap<Vec<Canon>, Vec<u64>> = BTreeMap::new();
    for (key, counts) in groups {
        let slot = merged
            .entry(key.into_iter().map(Canon).collect())
            .or_insert_with(|| vec![0; counts.len()]);
        for (total, n) in slot.iter_mut().zip(counts) {
            *total += n;
        }
    }
    if agg.group_by.is_empty() && merged.is_empty() {
        merged.insert(Vec::new(), vec![0; agg.metrics.len()]);
    }
    merged
        .into_iter()
        .map(|(key, counts)| AggRow {
            keys: key.into_iter().map(|c| c.0).collect(),
            metrics: counts
                .into_iter()
                .map(|n| AggValue::Int(i128::from(n)))
                .collect(),
        })
        .collect()
}

/// The aggregation of the rows of `rows` that match `spec`'s condition (its sort, offset,
/// limit and projection play no part).
pub fn over_rows<'a, I: IntoIterator<Item = &'a Row>>(
    spec: &QuerySpec,
    agg: &Arc<AggSpec>,
    rows: I,
) -> Result<Vec<AggRow>> {
    let q = condition_of(spec)?;
    let mut acc = Aggregator::new(Arc::clone(agg));
    for row in rows {
        if q.matches(row)? {
            acc.push(row);
        }
    }
    Ok(acc.finish())
}

/// The compiled condition alone: an aggregation ignores sort, offset, limit and projection.
pub fn condition_of(spec: &QuerySpec) -> Result<CompiledQuery> {
    CompiledQuery::new(&condition_spec(spec))
}

/// `spec` without its sort, offset, limit and projection.
pub fn condition_spec(spec: &QuerySpec) -> QuerySpec {
    QuerySpec {
        cond: spec.cond.clone(),
        ..QuerySpec::default()
    }
}

/// An aggregation over rows fed one at a time, whole or as stored tagged JSON text (DuckDB's
/// record batches), the text decoded only as far as the condition and the aggregation read.
pub struct TextAggregator {
    q: CompiledQuery,
    plan: Reads,
    source: Arc<str>,
    acc: Aggregator,
}

impl TextAggregator {
    pub fn new(spec: &QuerySpec, agg: Arc<AggSpec>, source: impl Into<Arc<str>>) -> Result<Self> {
        Ok(TextAggregator {
            q: condition_of(spec)?,
            plan: Reads::new(&agg.reading(spec), true, true),
            source: source.into(),
            acc: Aggregator::new(agg),
        })
    }

    pub fn push(&mut self, id: &str, data: &str, meta: &str) -> Result<()> {
        let part = self.plan.partial(id, data, meta, &*self.source)?;
        if self.q.matches(&part)? {
            self.acc.push(&part);
        }
        Ok(())
    }

    /// Adds a decoded row, if it matches.
    pub fn push_row(&mut self, row: &Row) -> Result<()> {
        if self.q.matches(row)? {
            self.acc.push(row);
        }
        Ok(())
    }

    /// Whether a stored row's metadata must be read (a path walks `metadata.*`).
    pub fn reads_metadata(&self) -> bool {
        self.plan.metadata
    }

    pub fn finish(self) -> Vec<AggRow> {
        self.acc.finish()
    }
}

#[cfg(test)]
mod tests;
