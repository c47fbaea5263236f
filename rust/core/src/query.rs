//! Query specs and their evaluation (docs/internals.md §1). The Python `Filter.matches` is the
//! reference; this module must agree with it on every input.

use std::borrow::Cow;
use std::cmp::Ordering;

use fancy_regex::Regex;

use crate::error::{Error, Result};
use crate::iso;
use crate::num::{cmp_num, Num};
use crate::row::Row;
use crate::value::{DateTimeValue, Map, Value};

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

impl Op {
    /// The operator for a Python `Operator.value` string.
    pub fn parse(s: &str) -> Result<Op> {
        Ok(match s {
            "=" => Op::Eq,
            "!=" => Op::Neq,
            ">" => Op::Gt,
            ">=" => Op::Gte,
            "<" => Op::Lt,
            "<=" => Op::Lte,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "like" => Op::Like,
            "not_like" => Op::NotLike,
            "regex" => Op::Regex,
            "exists" => Op::Exists,
            "not_exists" => Op::NotExists,
            "between" => Op::Between,
            "not_between" => Op::NotBetween,
            "starts_with" => Op::StartsWith,
            other => return Err(Error::Query(format!("unknown operator {other:?}"))),
        })
    }

    /// The Python `Operator.value` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Neq => "!=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Like => "like",
            Op::NotLike => "not_like",
            Op::Regex => "regex",
            Op::Exists => "exists",
            Op::NotExists => "not_exists",
            Op::Between => "between",
            Op::NotBetween => "not_between",
            Op::StartsWith => "starts_with",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field paths

/// `m.get(key)`, but records have few fields and a linear scan comparing lengths first beats
/// hashing the key (SipHash) by several times; large maps still use the hash index.
#[inline]
pub fn map_get<'a>(m: &'a Map, key: &str) -> Option<&'a Value> {
    if m.len() <= 16 {
        m.iter()
            .find(|(k, _)| k.len() == key.len() && k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        m.get(key)
    }
}

fn walk<'a>(mut cur: &'a Value, segs: std::str::Split<'_, char>) -> Option<&'a Value> {
    for seg in segs {
        cur = match cur {
            Value::Map(m) => map_get(m, seg)?,
            Value::List(items) => {
                if seg.is_empty() || !seg.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                items.get(seg.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn resolve_data<'a>(row: &'a Row, path: &str) -> Option<&'a Value> {
    if let Some(v) = map_get(&row.data, path) {
        return Some(v);
    }
    let (first, rest) = path.split_once('.')?;
    if first == "metadata" && !row.data.contains_key("metadata") {
        let (head, tail) = match rest.split_once('.') {
            Some((h, t)) => (h, Some(t)),
            None => (rest, None),
        };
        let v = map_get(&row.metadata, head)?;
        return match tail {
            Some(t) => walk(v, t.split('.')),
            None => Some(v),
        };
    }
    walk(map_get(&row.data, first)?, rest.split('.'))
}

/// The value at `path` in `row` (docs/internals.md §1): `"id"` is the record id, an exact data
/// field name wins, then a dotted walk through data (or metadata for `metadata.*`). None when
/// missing; a stored None comes back as `Value::Null`.
pub fn resolve<'a>(row: &'a Row, path: &str) -> Option<Cow<'a, Value>> {
    if path == "id" {
        return Some(Cow::Owned(Value::Str(row.id.clone())));
    }
    resolve_data(row, path).map(Cow::Borrowed)
}

// ---------------------------------------------------------------------------------------------
// Equality and order

fn dt_cmp(a: &DateTimeValue, b: &DateTimeValue) -> Option<Ordering> {
    match (a.offset_seconds, b.offset_seconds) {
        (Some(_), Some(_)) => Some(a.utc_naive().cmp(&b.utc_naive())),
        (None, None) => Some(a.naive.cmp(&b.naive)),
        _ => None,
    }
}

/// Python `==` on the value model.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::DateTime(x), Value::DateTime(y)) => dt_cmp(x, y) == Some(Ordering::Equal),
        (Value::Date(x), Value::Date(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| map_get(y, k).is_some_and(|q| py_eq(p, q)))
        }
        (Value::Int(x), Value::Int(y)) => x == y,
        _ => match (Num::of(a), Num::of(b)) {
            (Some(x), Some(y)) => cmp_num(&x, &y) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// Python ordering on the value model; None when incomparable.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_str().cmp(y.as_str())),
        (Value::DateTime(x), Value::DateTime(y)) => dt_cmp(x, y),
        (Value::DateTime(x), Value::Str(s)) => dt_cmp(x, &iso::parse_datetime(s)?),
        (Value::Str(s), Value::DateTime(y)) => dt_cmp(&iso::parse_datetime(s)?, y),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Str(s)) => Some(x.cmp(&iso::parse_date(s)?)),
        (Value::Str(s), Value::Date(y)) => Some(iso::parse_date(s)?.cmp(y)),
        _ => cmp_num(&Num::of(a)?, &Num::of(b)?),
    }
}

fn sort_rank(v: &Value) -> u8 {
    match v {
        Value::Bool(_) | Value::Int(_) => 0,
        Value::Float(f) if f.is_nan() => 1,
        Value::Float(_) => 0,
        Value::Decimal(_) => {
            if Num::of(v).is_some_and(|n| n.is_nan()) {
                1
            } else {
                0
            }
        }
        Value::Str(_) => 2,
        Value::DateTime(_) => 3,
        Value::Date(_) => 4,
        Value::Bytes(_) => 5,
        Value::Null | Value::List(_) | Value::Map(_) => 6,
    }
}

/// The total ascending sort order of §1 for present, non-None values: numbers, NaN, str,
/// datetimes (naive read as UTC), dates, bytes, everything else (all equal).
pub fn sort_cmp(a: &Value, b: &Value) -> Ordering {
    let (ra, rb) = (sort_rank(a), sort_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Value::DateTime(x), Value::DateTime(y)) => x.utc_naive().cmp(&y.utc_naive()),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        _ if ra == 0 || ra == 2 || ra == 4 => compare(a, b).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

/// One sort key: None (missing or stored None) is last whatever the direction.
pub fn sort_key_cmp(a: Option<&Value>, b: Option<&Value>, descending: bool) -> Ordering {
    let a = a.filter(|v| !matches!(v, Value::Null));
    let b = b.filter(|v| !matches!(v, Value::Null));
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let o = sort_cmp(x, y);
            if descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled conditions

/// A Python `re` pattern in the dialect fancy_regex reads. Where the two read the same text
/// differently:
/// - `$` (without MULTILINE) matches at the end and before a newline that ends the string in
///   Python, only at the end in Rust: it becomes `(?=\n?\z)`;
/// - `\Z` is Python's end of string, `\z` in Rust;
/// - inside a class, `[` is a literal in Python and starts a nested class in Rust, and `&&`,
///   `~~`, `--` are literals in Python and set operations in Rust: they are escaped.
fn translate_python_regex(p: &str) -> Cow<'_, str> {
    if !p.contains(['$', '[', '\\']) {
        return Cow::Borrowed(p);
    }
    // Python takes global flags only at the start; MULTILINE gives `$` Rust's (?m) meaning.
    let multiline = p
        .strip_prefix("(?")
        .and_then(|r| r.split_once(')'))
        .is_some_and(|(flags, _)| {
            flags.chars().all(|c| c.is_ascii_alphabetic()) && flags.contains('m')
        });
    let mut out = String::with_capacity(p.len() + 16);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' if in_class => out.push_str("\\["),
            '[' => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A `]` first in a class is a literal in Python.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' | '-' if in_class && chars.peek() == Some(&c) => {
                chars.next();
                out.push('\\');
                out.push(c);
                out.push('\\');
                out.push(c);
            }
            '$' if !in_class && !multiline => out.push_str("(?=\\n?\\z)"),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn like_regex(pattern: &str) -> Result<Regex> {
    let mut p = String::with_capacity(pattern.len() * 2 + 8);
    p.push_str("(?is)^");
    let mut buf = [0u8; 4];
    for c in pattern.chars() {
        match c {
            '%' => p.push_str(".*"),
            '_' => p.push('.'),
            c => p.push_str(&fancy_regex::escape(c.encode_utf8(&mut buf))),
        }
    }
    p.push('$');
    Regex::new(&p).map_err(|e| Error::Query(format!("invalid LIKE pattern {pattern:?}: {e}")))
}

#[derive(Debug)]
enum Arg {
    Plain,
    /// `in` / `not_in`: the members.
    Members(Vec<Value>),
    /// `between` / `not_between`: (lo, hi), None when malformed.
    Bounds(Option<(Value, Value)>),
    /// `like` / `not_like` / `regex`: None when the filter value is not a str.
    Pattern(Option<Regex>),
}

#[derive(Debug)]
struct CFilter {
    field: String,
    op: Op,
    value: Value,
    arg: Arg,
}

#[derive(Debug)]
enum Node {
    Filter(Box<CFilter>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

fn compile(cond: &Cond) -> Result<Node> {
    Ok(match cond {
        Cond::And(items) => Node::And(items.iter().map(compile).collect::<Result<_>>()?),
        Cond::Or(items) => Node::Or(items.iter().map(compile).collect::<Result<_>>()?),
        Cond::Not(inner) => Node::Not(Box::new(compile(inner)?)),
        Cond::Filter { field, op, value } => {
            let arg = match op {
                Op::In | Op::NotIn => Arg::Members(match value {
                    Value::List(items) => items.clone(),
                    other => vec![other.clone()],
                }),
                Op::Between | Op::NotBetween => Arg::Bounds(match value {
                    Value::List(items) if items.len() == 2 => {
                        Some((items[0].clone(), items[1].clone()))
                    }
                    _ => None,
                }),
                Op::Like | Op::NotLike => Arg::Pattern(match value {
                    Value::Str(p) => Some(like_regex(p)?),
                    _ => None,
                }),
                Op::Regex => Arg::Pattern(match value {
                    Value::Str(p) => Some(
                        Regex::new(&translate_python_regex(p))
                            .map_err(|e| Error::Query(format!("invalid regex {p:?}: {e}")))?,
                    ),
                    _ => None,
                }),
                _ => Arg::Plain,
            };
            Node::Filter(Box::new(CFilter {
                field: field.clone(),
                op: *op,
                value: value.clone(),
                arg,
            }))
        }
    })
}

fn regex_hit(re: &Regex, s: &str) -> Result<bool> {
    re.is_match(s)
        .map_err(|e| Error::Query(format!("regex evaluation failed: {e}")))
}

impl CFilter {
    fn eval(&self, row: &Row) -> Result<bool> {
        let resolved = resolve(row, &self.field);
        let v = match resolved.as_deref() {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        };
        let v = match (self.op, v) {
            (Op::Exists, v) => return Ok(v.is_some()),
            (Op::NotExists, v) => return Ok(v.is_none()),
            (_, None) => return Ok(false),
            (_, Some(v)) => v,
        };
        let x = &self.value;
        let ord = |want: fn(Ordering) -> bool| compare(v, x).is_some_and(want);
        Ok(match (self.op, &self.arg) {
            (Op::Eq, _) => py_eq(v, x),
            (Op::Neq, _) => !py_eq(v, x),
            (Op::Gt, _) => ord(Ordering::is_gt),
            (Op::Gte, _) => ord(Ordering::is_ge),
            (Op::Lt, _) => ord(Ordering::is_lt),
            (Op::Lte, _) => ord(Ordering::is_le),
            (Op::In, Arg::Members(m)) => m.iter().any(|e| py_eq(v, e)),
            (Op::NotIn, Arg::Members(m)) => !m.iter().any(|e| py_eq(v, e)),
            (Op::Between, Arg::Bounds(b)) => b.as_ref().is_some_and(|(lo, hi)| between(v, lo, hi)),
            (Op::NotBetween, Arg::Bounds(b)) => {
                b.as_ref().is_none_or(|(lo, hi)| !between(v, lo, hi))
            }
            (Op::Like | Op::Regex, Arg::Pattern(re)) => match (v, re) {
                (Value::Str(s), Some(re)) => regex_hit(re, s)?,
                _ => false,
            },
            (Op::NotLike, Arg::Pattern(re)) => match (v, re) {
                (Value::Str(s), Some(re)) => !regex_hit(re, s)?,
                _ => false,
            },
            (Op::StartsWith, _) => match (v, x) {
                (Value::Str(s), Value::Str(p)) => s.starts_with(p.as_str()),
                _ => false,
            },
            // compile() pairs every operator with its argument kind.
            _ => false,
        })
    }
}

fn between(v: &Value, lo: &Value, hi: &Value) -> bool {
    compare(v, lo).is_some_and(Ordering::is_ge) && compare(v, hi).is_some_and(Ordering::is_le)
}

impl Node {
    fn eval(&self, row: &Row) -> Result<bool> {
        match self {
            Node::Filter(f) => f.eval(row),
            Node::And(items) => {
                for n in items {
                    if !n.eval(row)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Node::Or(items) => {
                for n in items {
                    if n.eval(row)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Node::Not(inner) => Ok(!inner.eval(row)?),
        }
    }
}

/// Evaluates one condition on one row (compiles its patterns each call; prefer
/// `CompiledQuery` for many rows).
pub fn matches(cond: &Cond, row: &Row) -> Result<bool> {
    compile(cond)?.eval(row)
}

/// A query with its patterns compiled once, ready to filter and shape many rows.
#[derive(Debug)]
pub struct CompiledQuery {
    cond: Option<Node>,
    sort: Vec<(String, bool)>,
    offset: usize,
    limit: Option<usize>,
    fields: Option<Vec<String>>,
}

impl CompiledQuery {
    pub fn new(spec: &QuerySpec) -> Result<Self> {
        Ok(CompiledQuery {
            cond: spec.cond.as_ref().map(compile).transpose()?,
            sort: spec.sort.clone(),
            offset: spec.offset.unwrap_or(0),
            limit: spec.limit,
            // An empty projection means every field.
            fields: spec.fields.clone().filter(|f| !f.is_empty()),
        })
    }

    /// Whether `row` satisfies the condition (true without one).
    pub fn matches(&self, row: &Row) -> Result<bool> {
        match &self.cond {
            None => Ok(true),
            Some(n) => n.eval(row),
        }
    }

    /// Whether rows come back with only some of their fields.
    pub fn projects(&self) -> bool {
        self.fields.is_some()
    }

    pub fn has_sort(&self) -> bool {
        !self.sort.is_empty()
    }

    pub fn has_cond(&self) -> bool {
        self.cond.is_some()
    }

    /// When the condition is exactly `id = x` or `id in [...]`, the ids it can match (a
    /// store can look them up instead of scanning). Non-str members can never equal an id.
    pub fn id_candidates(&self) -> Option<Vec<&str>> {
        let Some(Node::Filter(f)) = &self.cond else {
            return None;
        };
        if f.field != "id" {
            return None;
        }
        fn as_str(v: &Value) -> Option<&str> {
            match v {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            }
        }
        match (f.op, &f.arg) {
            (Op::Eq, _) => Some(as_str(&f.value).into_iter().collect()),
            (Op::In, Arg::Members(m)) => Some(m.iter().filter_map(as_str).collect()),
            _ => None,
        }
    }

    /// Number of rows that match, without cloning any.
    pub fn count<'a, I: IntoIterator<Item = &'a Row>>(&self, rows: I) -> Result<usize> {
        let mut n = 0;
        for r in rows {
            if self.matches(r)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// A copy of `row` restricted to the projection.
    pub fn project(&self, row: &Row) -> Row {
        match &self.fields {
            None => row.clone(),
            Some(fields) => Row {
                id: row.id.clone(),
                data: fields
                    .iter()
                    .filter_map(|f| map_get(&row.data, f).map(|v| (f.clone(), v.clone())))
                    .collect(),
                metadata: row.metadata.clone(),
            },
        }
    }

    fn project_owned(&self, mut row: Row) -> Row {
        if let Some(fields) = &self.fields {
            let mut data = Map::with_capacity(fields.len());
            for f in fields {
                if let Some(v) = row.data.swap_remove(f) {
                    data.insert(f.clone(), v);
                }
            }
            row.data = data;
        }
        row
    }

    /// Filter, sort, offset, limit and project, cloning only the rows returned.
    pub fn apply<'a, I: IntoIterator<Item = &'a Row>>(&self, rows: I) -> Result<Vec<Row>> {
        if self.limit == Some(0) {
            return Ok(Vec::new());
        }
        if self.sort.is_empty() {
            let mut out = Vec::new();
            let mut skip = self.offset;
            for r in rows {
                if !self.matches(r)? {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(self.project(r));
                if Some(out.len()) == self.limit {
                    break;
                }
            }
            return Ok(out);
        }
        let mut hits: Vec<&Row> = Vec::new();
        for r in rows {
            if self.matches(r)? {
                hits.push(r);
            }
        }
        let window = self.sorted_window(&hits);
        Ok(window.into_iter().map(|i| self.project(hits[i])).collect())
    }

    /// `apply` for rows the caller already owns (decoded from storage).
    pub fn apply_owned<I: IntoIterator<Item = Row>>(&self, rows: I) -> Result<Vec<Row>> {
        if self.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut hits = Vec::new();
        let mut skip = self.offset;
        for r in rows {
            if !self.matches(&r)? {
                continue;
            }
            if self.sort.is_empty() {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                hits.push(self.project_owned(r));
                if Some(hits.len()) == self.limit {
                    break;
                }
            } else {
                hits.push(r);
            }
        }
        if self.sort.is_empty() {
            return Ok(hits);
        }
        Ok(self.shape(hits))
    }

    /// Sort, offset, limit and project rows that already passed the filter.
    pub fn shape(&self, rows: Vec<Row>) -> Vec<Row> {
        let window = {
            let refs: Vec<&Row> = rows.iter().collect();
            self.sorted_window(&refs)
        };
        let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
        window
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .map(|r| self.project_owned(r))
            .collect()
    }

    /// Sorts by the sort keys only (no offset, limit or projection): used by stores that
    /// page a sorted result themselves.
    pub fn sort_rows(&self, rows: &mut Vec<Row>) {
        if self.sort.is_empty() {
            return;
        }
        let order = {
            let refs: Vec<&Row> = rows.iter().collect();
            let keys = self.sort_keys(&refs);
            let k = self.sort.len();
            let mut order: Vec<usize> = (0..refs.len()).collect();
            order.sort_by(|&a, &b| self.cmp_keys(&keys[a * k..a * k + k], &keys[b * k..b * k + k]));
            order
        };
        let mut slots: Vec<Option<Row>> = std::mem::take(rows).into_iter().map(Some).collect();
        rows.extend(order.into_iter().filter_map(|i| slots[i].take()));
    }

    /// Indices into `rows` (rows that passed the filter) of the sorted window `[offset,
    /// offset + limit)`, in result order: a store can sort rows holding just the sort keys and
    /// then decode only the rows returned.
    pub fn window(&self, rows: &[&Row]) -> Vec<usize> {
        self.sorted_window(rows)
    }

    /// A copy of `row` restricted to the projection, taking ownership.
    pub fn project_row(&self, row: Row) -> Row {
        self.project_owned(row)
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    fn sort_keys<'a>(&self, rows: &[&'a Row]) -> Vec<Option<Cow<'a, Value>>> {
        let mut keys = Vec::with_capacity(rows.len() * self.sort.len());
        for r in rows {
            for (field, _) in &self.sort {
                keys.push(resolve(r, field));
            }
        }
        keys
    }

    fn cmp_keys(&self, a: &[Option<Cow<'_, Value>>], b: &[Option<Cow<'_, Value>>]) -> Ordering {
        for (j, (_, desc)) in self.sort.iter().enumerate() {
            let o = sort_key_cmp(a[j].as_deref(), b[j].as_deref(), *desc);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// Indices into `rows` of the sorted window `[offset, offset + limit)`.
    fn sorted_window(&self, rows: &[&Row]) -> Vec<usize> {
        self.window_by_keys(&self.sort_keys(rows), rows.len())
    }

    /// A row's sort keys, owned, for [`CompiledQuery::window_of`] once the row itself is gone.
    pub fn owned_sort_keys(&self, row: &Row) -> Vec<Option<Value>> {
        self.sort
            .iter()
            .map(|(field, _)| resolve(row, field).map(Cow::into_owned))
            .collect()
    }

    /// The sorted window `[offset, offset + limit)` of rows known by their sort keys
    /// (`owned_sort_keys`) and storage positions: indices into `keys`.
    pub fn window_of(&self, keys: &[(i64, Vec<Option<Value>>)]) -> Vec<usize> {
        // Ties fall in storage order: the window below breaks them by index.
        let mut by_position: Vec<usize> = (0..keys.len()).collect();
        by_position.sort_unstable_by_key(|&i| keys[i].0);
        let flat: Vec<Option<Cow<'_, Value>>> = by_position
            .iter()
            .flat_map(|&i| keys[i].1.iter().map(|k| k.as_ref().map(Cow::Borrowed)))
            .collect();
        self.window_by_keys(&flat, keys.len())
            .into_iter()
            .map(|j| by_position[j])
            .collect()
    }

    /// The sorted window of `n` rows whose keys (`sort.len()` per row) are `keys`.
    fn window_by_keys(&self, keys: &[Option<Cow<'_, Value>>], n: usize) -> Vec<usize> {
        if self.offset >= n || self.limit == Some(0) {
            return Vec::new();
        }
        let end = match self.limit {
            Some(l) => self.offset.saturating_add(l).min(n),
            None => n,
        };
        let k = self.sort.len();
        // The index breaks ties, which makes the order total and equal to a stable sort's.
        let cmp = |a: &usize, b: &usize| {
            self.cmp_keys(&keys[a * k..a * k + k], &keys[b * k..b * k + k])
                .then(a.cmp(b))
        };
        let mut order: Vec<usize> = (0..n).collect();
        if end < n {
            order.select_nth_unstable_by(end, cmp);
            order.truncate(end);
        }
        order.sort_unstable_by(cmp);
        order.drain(..self.offset);
        order
    }
}

/// Filter, sort, offset, limit and project `rows` by `spec`.
pub fn apply<'a, I: IntoIterator<Item = &'a Row>>(spec: &QuerySpec, rows: I) -> Result<Vec<Row>> {
    CompiledQuery::new(spec)?.apply(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }
    fn i(x: i64) -> Value {
        Value::Int(x)
    }
    fn f(x: f64) -> Value {
        Value::Float(x)
    }
    fn l(items: Vec<Value>) -> Value {
        Value::List(items)
    }
    fn dt(text: &str) -> Value {
        Value::DateTime(iso::parse_datetime(text).unwrap())
    }
    fn d(text: &str) -> Value {
        Value::Date(iso::parse_date(text).unwrap())
    }
    fn map(pairs: Vec<(&str, Value)>) -> Map {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
    fn row(id: &str, data: Vec<(&str, Value)>) -> Row {
        Row {
            id: id.into(),
            data: map(data),
            metadata: Map::new(),
        }
    }
    fn filt(field: &str, op: &str, value: Value) -> Cond {
        Cond::Filter {
            field: field.into(),
            op: Op::parse(op).unwrap(),
            value,
        }
    }
    /// Evaluates `op x` on a row whose field `v` holds `val` (or lacks it when None).
    fn ev(val: Option<Value>, op: &str, x: Value) -> bool {
        let r = row("r", val.map(|v| vec![("v", v)]).unwrap_or_default());
        matches(&filt("v", op, x), &r).unwrap()
    }

    #[test]
    fn op_parse_round_trip() {
        for name in [
            "=",
            "!=",
            ">",
            ">=",
            "<",
            "<=",
            "in",
            "not_in",
            "like",
            "not_like",
            "regex",
            "exists",
            "not_exists",
            "between",
            "not_between",
            "starts_with",
        ] {
            assert_eq!(Op::parse(name).unwrap().as_str(), name);
        }
        match Op::parse("==") {
            Err(Error::Query(m)) => assert!(m.contains("==")),
            other => panic!("{other:?}"),
        }
        assert!(Op::parse("EQ").is_err());
        assert!(Op::parse("").is_err());
    }

    #[test]
    fn resolve_paths() {
        let mut r = row(
            "rid",
            vec![
                ("a.b", i(1)),
                (
                    "a",
                    Value::Map(map(vec![("b", i(2)), ("c", l(vec![i(7), i(8)]))])),
                ),
                ("tags", l(vec![s("x"), s("y")])),
                ("n", Value::Null),
            ],
        );
        r.metadata = map(vec![("src", Value::Map(map(vec![("k", s("m"))])))]);
        let get = |r: &Row, p: &str| resolve(r, p).map(|c| c.into_owned());
        assert_eq!(get(&r, "id"), Some(s("rid")));
        assert_eq!(get(&r, "a.b"), Some(i(1)));
        assert_eq!(get(&r, "a.c.1"), Some(i(8)));
        assert_eq!(get(&r, "a.c.2"), None);
        assert_eq!(get(&r, "a.c.-1"), None);
        assert_eq!(get(&r, "a.c.x"), None);
        assert_eq!(get(&r, "tags.0"), Some(s("x")));
        assert_eq!(get(&r, "tags.00"), Some(s("x")));
        assert_eq!(get(&r, "tags.0.z"), None);
        assert_eq!(get(&r, "missing"), None);
        assert_eq!(get(&r, "missing.x"), None);
        assert_eq!(get(&r, "n"), Some(Value::Null));
        assert_eq!(get(&r, "metadata.src.k"), Some(s("m")));
        assert_eq!(
            get(&r, "metadata.src"),
            resolve(&r, "metadata.src").map(|c| c.into_owned())
        );
        assert_eq!(get(&r, "metadata.nope"), None);
        assert_eq!(get(&r, "metadata"), None);
        // A data field called "metadata" shadows the record metadata.
        r.data
            .insert("metadata".into(), Value::Map(map(vec![("src", i(5))])));
        assert_eq!(get(&r, "metadata.src"), Some(i(5)));
    }

    #[test]
    fn equality_rules() {
        assert!(py_eq(&Value::Bool(true), &i(1)));
        assert!(py_eq(&Value::Bool(false), &f(0.0)));
        assert!(py_eq(&i(1), &f(1.0)));
        assert!(py_eq(&Value::Decimal("1.0".into()), &i(1)));
        assert!(!py_eq(&f(f64::NAN), &f(f64::NAN)));
        assert!(!py_eq(&s("1"), &i(1)));
        assert!(!py_eq(&s("a"), &Value::Bytes(b"a".to_vec())));
        assert!(py_eq(
            &Value::Bytes(b"a".to_vec()),
            &Value::Bytes(b"a".to_vec())
        ));
        assert!(py_eq(
            &dt("2024-05-01T10:00:00+00:00"),
            &dt("2024-05-01T12:00:00+02:00")
        ));
        assert!(!py_eq(
            &dt("2024-05-01T10:00:00"),
            &dt("2024-05-01T10:00:00+00:00")
        ));
        assert!(py_eq(&dt("2024-05-01T10:00:00"), &dt("2024-05-01 10:00")));
        assert!(!py_eq(&dt("2024-05-01T00:00:00"), &d("2024-05-01")));
        assert!(!py_eq(
            &dt("2024-05-01T10:00:00"),
            &s("2024-05-01T10:00:00")
        ));
        assert!(py_eq(&l(vec![i(1), s("a")]), &l(vec![f(1.0), s("a")])));
        assert!(!py_eq(&l(vec![i(1)]), &l(vec![i(1), i(2)])));
        let m1 = Value::Map(map(vec![("a", i(1)), ("b", i(2))]));
        let m2 = Value::Map(map(vec![("b", f(2.0)), ("a", Value::Bool(true))]));
        let m3 = Value::Map(map(vec![("a", i(1)), ("c", i(2))]));
        assert!(py_eq(&m1, &m2));
        assert!(!py_eq(&m1, &m3));
        assert!(py_eq(&Value::Null, &Value::Null));
        assert!(!py_eq(&Value::Null, &i(0)));
    }

    #[test]
    fn ordering_rules() {
        use Ordering::*;
        assert_eq!(compare(&i(1), &f(1.5)), Some(Less));
        assert_eq!(compare(&Value::Bool(true), &i(0)), Some(Greater));
        assert_eq!(compare(&f(f64::NAN), &i(0)), None);
        assert_eq!(compare(&s("b"), &s("a")), Some(Greater));
        assert_eq!(compare(&s("Z"), &s("a")), Some(Less));
        assert_eq!(compare(&s("é"), &s("z")), Some(Greater));
        assert_eq!(compare(&s("1"), &i(1)), None);
        assert_eq!(
            compare(&dt("2024-05-01T10:00:00"), &s("2024-05-01")),
            Some(Greater)
        );
        assert_eq!(
            compare(&dt("2024-05-01T10:00:00+00:00"), &s("2024-05-01T10:00:00Z")),
            Some(Equal)
        );
        assert_eq!(
            compare(&dt("2024-05-01T10:00:00"), &s("2024-05-01T10:00:00Z")),
            None
        );
        assert_eq!(compare(&s("garbage"), &dt("2024-05-01T10:00:00")), None);
        assert_eq!(
            compare(&s("2024-05-02"), &dt("2024-05-01T10:00:00")),
            Some(Greater)
        );
        assert_eq!(compare(&d("2024-05-01"), &s("2024-05-02")), Some(Less));
        assert_eq!(compare(&d("2024-05-01"), &s("2024-05-01T00:00")), None);
        assert_eq!(compare(&d("2024-05-01"), &dt("2024-05-01T00:00:00")), None);
        assert_eq!(compare(&l(vec![]), &l(vec![])), None);
        assert_eq!(
            compare(&Value::Bytes(vec![1]), &Value::Bytes(vec![2])),
            None
        );
    }

    #[test]
    fn none_is_false_except_exists() {
        for op in [
            "=",
            "!=",
            ">",
            ">=",
            "<",
            "<=",
            "in",
            "not_in",
            "like",
            "not_like",
            "regex",
            "between",
            "not_between",
            "starts_with",
        ] {
            assert!(!ev(None, op, s("x")), "{op} missing");
            assert!(!ev(Some(Value::Null), op, s("x")), "{op} null");
            assert!(!ev(None, op, Value::Null), "{op} missing vs None");
        }
        assert!(ev(None, "not_exists", Value::Null));
        assert!(!ev(None, "exists", Value::Null));
        assert!(ev(Some(Value::Null), "not_exists", Value::Null));
        assert!(ev(Some(i(0)), "exists", Value::Null));
        assert!(ev(Some(s("")), "exists", Value::Null));
        assert!(!ev(Some(Value::Bool(false)), "not_exists", Value::Null));
    }

    #[test]
    fn eq_neq() {
        assert!(ev(Some(Value::Bool(true)), "=", i(1)));
        assert!(ev(Some(i(1)), "=", f(1.0)));
        assert!(!ev(Some(i(1)), "!=", f(1.0)));
        assert!(ev(Some(f(f64::NAN)), "!=", f(f64::NAN)));
        assert!(!ev(Some(f(f64::NAN)), "=", f(f64::NAN)));
        assert!(ev(Some(s("a")), "!=", i(1)));
        assert!(!ev(Some(s("a")), "=", s("A")));
        assert!(ev(Some(l(vec![i(1)])), "=", l(vec![f(1.0)])));
    }

    #[test]
    fn ordering_ops() {
        assert!(ev(Some(i(5)), ">", i(4)));
        assert!(!ev(Some(i(5)), ">", i(5)));
        assert!(ev(Some(i(5)), ">=", f(5.0)));
        assert!(ev(Some(f(4.5)), "<", i(5)));
        assert!(ev(Some(i(5)), "<=", i(5)));
        assert!(!ev(Some(s("5")), ">", i(4)));
        assert!(!ev(Some(i(5)), "<", s("6")));
        assert!(!ev(Some(f(f64::NAN)), "<", i(5)));
        assert!(!ev(Some(f(f64::NAN)), ">=", i(5)));
        assert!(ev(Some(s("b")), ">", s("a")));
        assert!(ev(
            Some(dt("2024-05-01T10:00:00Z")),
            ">",
            s("2024-05-01T09:00:00+00:00")
        ));
        assert!(!ev(
            Some(dt("2024-05-01T10:00:00")),
            ">",
            s("2024-05-01T09:00:00+00:00")
        ));
        assert!(ev(
            Some(s("2024-05-01T10:00:00")),
            ">",
            dt("2024-05-01T09:00:00")
        ));
        assert!(ev(Some(dt("2024-05-01T10:00:00")), ">=", s("2024-05-01")));
        assert!(ev(Some(d("2024-05-01")), "<", s("2024-06-01")));
        assert!(!ev(Some(l(vec![i(1)])), "<", l(vec![i(2)])));
    }

    #[test]
    fn in_not_in() {
        assert!(ev(Some(i(1)), "in", l(vec![s("a"), f(1.0)])));
        assert!(ev(Some(Value::Bool(true)), "in", l(vec![i(1)])));
        assert!(!ev(Some(i(2)), "in", l(vec![i(1)])));
        assert!(ev(Some(i(2)), "not_in", l(vec![i(1)])));
        assert!(!ev(Some(i(1)), "not_in", l(vec![i(1)])));
        // A scalar means a one-element list.
        assert!(ev(Some(s("a")), "in", s("a")));
        assert!(!ev(Some(s("a")), "in", s("abc")));
        assert!(ev(Some(s("a")), "not_in", s("abc")));
        assert!(!ev(Some(i(1)), "in", l(vec![])));
        assert!(ev(Some(i(1)), "not_in", l(vec![])));
        assert!(!ev(Some(f(f64::NAN)), "in", l(vec![f(f64::NAN)])));
        assert!(ev(Some(l(vec![i(1)])), "in", l(vec![l(vec![i(1)])])));
    }

    #[test]
    fn between_ops() {
        assert!(ev(Some(i(5)), "between", l(vec![i(1), i(5)])));
        assert!(ev(Some(i(1)), "between", l(vec![f(1.0), i(5)])));
        assert!(!ev(Some(i(6)), "between", l(vec![i(1), i(5)])));
        assert!(ev(Some(i(6)), "not_between", l(vec![i(1), i(5)])));
        assert!(!ev(Some(i(3)), "not_between", l(vec![i(1), i(5)])));
        // Malformed: between false, not_between true.
        for bad in [
            i(3),
            l(vec![]),
            l(vec![i(1)]),
            l(vec![i(1), i(2), i(3)]),
            s("1,5"),
        ] {
            assert!(!ev(Some(i(3)), "between", bad.clone()), "{bad:?}");
            assert!(ev(Some(i(3)), "not_between", bad.clone()), "{bad:?}");
        }
        // Incomparable bounds.
        assert!(!ev(Some(i(3)), "between", l(vec![s("a"), i(5)])));
        assert!(ev(Some(i(3)), "not_between", l(vec![s("a"), i(5)])));
        assert!(!ev(Some(f(f64::NAN)), "between", l(vec![i(1), i(5)])));
        assert!(ev(Some(s("b")), "between", l(vec![s("a"), s("c")])));
        assert!(ev(
            Some(dt("2024-05-01T10:00:00")),
            "between",
            l(vec![s("2024-05-01"), s("2024-05-02")])
        ));
        // Inverted bounds match nothing.
        assert!(!ev(Some(i(3)), "between", l(vec![i(5), i(1)])));
    }

    #[test]
    fn like_ops() {
        assert!(ev(Some(s("Hello World")), "like", s("hello%")));
        assert!(ev(Some(s("Hello World")), "like", s("%WORLD")));
        assert!(ev(Some(s("Hello World")), "like", s("%o W%")));
        assert!(!ev(Some(s("Hello World")), "like", s("hello")));
        assert!(ev(Some(s("abc")), "like", s("a_c")));
        assert!(!ev(Some(s("abbc")), "like", s("a_c")));
        assert!(ev(Some(s("aéc")), "like", s("a_c")));
        assert!(ev(Some(s("a.c")), "like", s("a.c")));
        assert!(!ev(Some(s("abc")), "like", s("a.c")));
        assert!(ev(
            Some(s("a+b*(c)[d]$^|?{1}\\")),
            "like",
            s("a+b*(c)[d]$^|?{1}\\")
        ));
        assert!(!ev(Some(s("aab")), "like", s("a+b")));
        assert!(ev(Some(s("line1\nline2")), "like", s("line1%")));
        assert!(ev(Some(s("a\nb")), "like", s("a_b")));
        assert!(ev(Some(s("")), "like", s("%")));
        assert!(!ev(Some(s("")), "like", s("_")));
        assert!(ev(Some(s("ÉCOLE")), "like", s("école")));
        assert!(ev(Some(s("xyz")), "not_like", s("a%")));
        assert!(!ev(Some(s("abc")), "not_like", s("a%")));
        // Non-str on either side: false for both.
        assert!(!ev(Some(i(1)), "like", s("1")));
        assert!(!ev(Some(i(1)), "not_like", s("1")));
        assert!(!ev(Some(s("1")), "like", i(1)));
        assert!(!ev(Some(s("1")), "not_like", i(1)));
    }

    #[test]
    fn regex_ops() {
        assert!(ev(Some(s("abc123")), "regex", s(r"\d+")));
        assert!(ev(Some(s("abc123")), "regex", s("c1")));
        assert!(!ev(Some(s("abc")), "regex", s("^b")));
        assert!(ev(Some(s("abc")), "regex", s(r"c\Z")));
        // Python's `$` also matches before a newline that ends the string; `\Z` does not.
        assert!(ev(Some(s("abc\n")), "regex", s("c$")));
        assert!(ev(Some(s("abc\n")), "regex", s("c$\n")));
        assert!(!ev(Some(s("abc\n\n")), "regex", s("c$")));
        assert!(!ev(Some(s("abc\n")), "regex", s(r"c\Z")));
        assert!(ev(Some(s("a\nb")), "regex", s("(?m)a$")));
        assert!(!ev(Some(s("a\nb")), "regex", s("a$")));
        assert!(ev(Some(s("cost $5")), "regex", s(r"[$]5")));
        // Class syntax Rust reads as nesting or set operations is literal in Python.
        assert!(ev(Some(s("a[b")), "regex", s(r"a[[]b")));
        assert!(ev(Some(s("x&")), "regex", s("x[a&&b]")));
        assert!(ev(Some(s("]")), "regex", s("[]a]")));
        assert!(ev(Some(s("b")), "regex", s("[^]a]")));
        assert!(ev(Some(s("abc")), "regex", s(r"(?P<x>b)")));
        assert!(ev(Some(s("aa")), "regex", s(r"(a)\1")));
        assert!(!ev(Some(s("ABC")), "regex", s("abc")));
        assert!(ev(Some(s("ABC")), "regex", s("(?i)abc")));
        assert!(!ev(Some(i(1)), "regex", s("1")));
        assert!(!ev(Some(s("1")), "regex", i(1)));
        let r = row("r", vec![("v", s("x"))]);
        match matches(&filt("v", "regex", s("(")), &r) {
            Err(Error::Query(_)) => {}
            other => panic!("{other:?}"),
        }
        // Invalid even when no row could reach it.
        assert!(CompiledQuery::new(&QuerySpec {
            cond: Some(filt("v", "regex", s("[a-"))),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn starts_with_op() {
        assert!(ev(Some(s("hello")), "starts_with", s("he")));
        assert!(ev(Some(s("hello")), "starts_with", s("")));
        assert!(!ev(Some(s("hello")), "starts_with", s("He")));
        assert!(!ev(Some(s("hello")), "starts_with", s("%")));
        assert!(!ev(Some(i(12)), "starts_with", s("1")));
        assert!(!ev(Some(s("12")), "starts_with", i(1)));
    }

    #[test]
    fn boolean_logic() {
        let r = row("r", vec![("a", i(1)), ("b", i(2))]);
        assert!(matches(&Cond::And(vec![]), &r).unwrap());
        assert!(!matches(&Cond::Or(vec![]), &r).unwrap());
        assert!(!matches(&Cond::Not(Box::new(Cond::And(vec![]))), &r).unwrap());
        let a1 = filt("a", "=", i(1));
        let b3 = filt("b", "=", i(3));
        assert!(!matches(&Cond::And(vec![a1.clone(), b3.clone()]), &r).unwrap());
        assert!(matches(&Cond::Or(vec![a1.clone(), b3.clone()]), &r).unwrap());
        assert!(matches(&Cond::Not(Box::new(b3.clone())), &r).unwrap());
        // NOT of a None-false operator is true on a missing field.
        assert!(matches(&Cond::Not(Box::new(filt("zz", "!=", i(1)))), &r).unwrap());
        assert!(matches(&filt("id", "=", s("r")), &r).unwrap());
        assert!(matches(&filt("id", "starts_with", s("r")), &r).unwrap());
    }

    fn ids(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn sort_total_order() {
        let vals = vec![
            ("none", None),
            ("null", Some(Value::Null)),
            ("list", Some(l(vec![]))),
            ("bytes", Some(Value::Bytes(vec![1]))),
            ("date", Some(d("2024-01-01"))),
            ("dt_aware", Some(dt("2024-01-01T10:00:00+01:00"))),
            ("dt_naive", Some(dt("2024-01-01T09:30:00"))),
            ("str_b", Some(s("b"))),
            ("str_a", Some(s("a"))),
            ("nan", Some(f(f64::NAN))),
            ("big", Some(Value::Decimal("1e3".into()))),
            ("one", Some(Value::Bool(true))),
            ("half", Some(f(0.5))),
            ("neg", Some(i(-3))),
        ];
        let rows: Vec<Row> = vals
            .into_iter()
            .map(|(id, v)| row(id, v.map(|v| vec![("k", v)]).unwrap_or_default()))
            .collect();
        let asc = apply(
            &QuerySpec {
                sort: vec![("k".into(), false)],
                ..Default::default()
            },
            &rows,
        )
        .unwrap();
        assert_eq!(
            ids(&asc),
            vec![
                "neg", "half", "one", "big", "nan", "str_a", "str_b", "dt_aware", "dt_naive",
                "date", "bytes", "list", "none", "null"
            ]
        );
        let desc = apply(
            &QuerySpec {
                sort: vec![("k".into(), true)],
                ..Default::default()
            },
            &rows,
        )
        .unwrap();
        assert_eq!(
            ids(&desc),
            vec![
                "list", "bytes", "date", "dt_naive", "dt_aware", "str_b", "str_a", "nan", "big",
                "one", "half", "neg", "none", "null"
            ]
        );
    }

    #[test]
    fn sort_stable_multi_key_offset_limit_projection() {
        let rows: Vec<Row> = (0..20)
            .map(|n| {
                row(
                    &format!("r{n:02}"),
                    vec![("g", i(n % 3)), ("n", i(n)), ("x", s("drop"))],
                )
            })
            .collect();
        let spec = |sort: Vec<(&str, bool)>, off, lim| QuerySpec {
            cond: None,
            sort: sort.into_iter().map(|(f, d)| (f.to_string(), d)).collect(),
            offset: off,
            limit: lim,
            fields: None,
        };
        // Stable: ties keep storage order.
        let r = apply(&spec(vec![("g", false)], None, None), &rows).unwrap();
        assert_eq!(
            &ids(&r)[..7],
            &["r00", "r03", "r06", "r09", "r12", "r15", "r18"]
        );
        let r = apply(&spec(vec![("g", true), ("n", true)], None, None), &rows).unwrap();
        assert_eq!(&ids(&r)[..3], &["r17", "r14", "r11"]);
        // Windowed selection agrees with the full sort.
        let full = apply(&spec(vec![("g", false)], None, None), &rows).unwrap();
        for off in [0, 1, 5, 19, 20, 25] {
            for lim in [0, 1, 3, 7, 100] {
                let w = apply(&spec(vec![("g", false)], Some(off), Some(lim)), &rows).unwrap();
                let expect: Vec<&str> = ids(&full).into_iter().skip(off).take(lim).collect();
                assert_eq!(ids(&w), expect, "off {off} lim {lim}");
                let w = apply(&spec(vec![], Some(off), Some(lim)), &rows).unwrap();
                let expect: Vec<&str> = ids(&rows).into_iter().skip(off).take(lim).collect();
                assert_eq!(ids(&w), expect);
                let q =
                    CompiledQuery::new(&spec(vec![("g", false)], Some(off), Some(lim))).unwrap();
                assert_eq!(
                    ids(&q.apply_owned(rows.clone()).unwrap()),
                    ids(&full)
                        .into_iter()
                        .skip(off)
                        .take(lim)
                        .collect::<Vec<_>>()
                );
            }
        }
        // Projection keeps the named fields in the requested order, id and metadata.
        let mut p = spec(vec![], None, Some(1));
        p.fields = Some(vec!["n".into(), "missing".into(), "g".into()]);
        let r = apply(&p, &rows).unwrap();
        assert_eq!(r[0].data.keys().collect::<Vec<_>>(), vec!["n", "g"]);
        let q = CompiledQuery::new(&p).unwrap();
        assert_eq!(q.apply_owned(rows.clone()).unwrap(), r);
        p.fields = Some(vec![]);
        assert_eq!(apply(&p, &rows).unwrap()[0].data.len(), 3);
    }

    #[test]
    fn filter_then_shape_and_id_candidates() {
        let rows: Vec<Row> = (0..10)
            .map(|n| row(&format!("r{n}"), vec![("n", i(n))]))
            .collect();
        let spec = QuerySpec {
            cond: Some(filt("n", ">=", i(5))),
            sort: vec![("n".into(), true)],
            offset: Some(1),
            limit: Some(2),
            fields: None,
        };
        assert_eq!(ids(&apply(&spec, &rows).unwrap()), vec!["r8", "r7"]);
        let q = CompiledQuery::new(&spec).unwrap();
        assert_eq!(q.count(&rows).unwrap(), 5);
        assert_eq!(q.id_candidates(), None);
        let q = CompiledQuery::new(&QuerySpec {
            cond: Some(filt("id", "in", l(vec![s("a"), i(1), s("b")]))),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.id_candidates(), Some(vec!["a", "b"]));
        let q = CompiledQuery::new(&QuerySpec {
            cond: Some(filt("id", "=", i(1))),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.id_candidates(), Some(vec![]));
        let mut rs = rows.clone();
        let q = CompiledQuery::new(&spec).unwrap();
        q.sort_rows(&mut rs);
        assert_eq!(rs[0].id, "r9");
    }
}
