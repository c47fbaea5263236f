//! Query translation: a condition becomes a query DSL clause that *narrows* what is fetched,
//! and the core's evaluator (`CompiledQuery`) decides every fetched document, as the SQL
//! backends do. A clause selects a superset of the matches by construction, and is `exact`
//! when it provably selects exactly the matches (then `count` may use `_count`).
//!
//! The index does not hold `data` for querying (it is stored, not indexed: the engine's dynamic
//! mapping would refuse a record whose field is a number where another record's is an object,
//! and would coerce, truncate and drop values). Instead each document carries `dk_terms`, one
//! keyword field of terms this module writes from the record and queries the same way, so the
//! index holds exactly what the translation assumes, whatever the records look like:
//!
//! | term | for |
//! |---|---|
//! | `e␀path` | a non-None value at `path` |
//! | `s␀path␀text` | a str (when the term fits Lucene's limit) |
//! | `L␀path` | a str too long for a term |
//! | `n␀path␀hex` | a number (bool, int, float, Decimal; NaN has none) as 16 hex digits whose byte order is numeric order |
//! | `D␀path` | a datetime or a date (comparable with ISO strings) |
//! | `*` | a record with too many paths: matched by every narrowed clause |
//!
//! Paths are what the evaluator resolves: every data key, dotted walks through dicts (a key
//! `"a.b"` and the walk `a` → `b` share the path `a.b`, so either is found), and the record
//! metadata under `metadata.`. List items are not indexed (a list equals no scalar and is
//! ordered with none), nor list positions (`tags.0` is not narrowed). NUL cannot occur in a
//! stored str, so `␀` (U+0000) separates unambiguously.

use serde_json::{json, Value as J};

use crate::codec;
use crate::query::{Cond, Op};
use crate::row::Row;
use crate::value::{Map, Value};

/// The keyword field holding the terms.
pub const TERMS_FIELD: &str = "dk_terms";
/// Longest term written, in bytes (Lucene refuses terms over 32,766).
const MAX_TERM_BYTES: usize = 8000;
/// Most terms one record gets; past this it gets `*` alone.
const MAX_TERMS: usize = 4096;
const EVERYTHING: &str = "*";

// --- the terms of a record ------------------------------------------------------------------

fn term(kind: char, path: &str) -> String {
    let mut t = String::with_capacity(path.len() + 2);
    t.push(kind);
    t.push('\0');
    t.push_str(path);
    t
}

fn with_value(kind: char, path: &str, value: &str) -> String {
    let mut t = term(kind, path);
    t.push('\0');
    t.push_str(value);
    t
}

/// A number's sortable text: the IEEE bits with the sign flipped (and every bit of a negative
/// number flipped), so byte order is numeric order; -0.0 is 0.0.
pub fn sortable(f: f64) -> String {
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    format!("{key:016x}")
}

/// The number a value compares as (None for non-numbers and NaN). Every conversion here
/// rounds monotonically, so an inclusive range over converted bounds holds every match.
fn number(v: &Value) -> Option<f64> {
    let f = match v {
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Decimal(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (!f.is_nan()).then_some(f)
}

fn value_terms(path: &str, v: &Value, out: &mut Vec<String>) {
    if matches!(v, Value::Null) {
        return;
    }
    out.push(term('e', path));
    match v {
        Value::Str(s) => {
            if path.len() + s.len() + 3 <= MAX_TERM_BYTES {
                out.push(with_value('s', path, s));
            } else {
                out.push(term('L', path));
            }
        }
        Value::DateTime(_) | Value::Date(_) => out.push(term('D', path)),
        Value::Map(m) => map_terms(path, m, out),
        other => {
            if let Some(f) = number(other) {
                out.push(with_value('n', path, &sortable(f)));
            }
        }
    }
}

fn map_terms(prefix: &str, m: &Map, out: &mut Vec<String>) {
    for (k, v) in m {
        if out.len() > MAX_TERMS {
            return;
        }
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        value_terms(&path, v, out);
    }
}

/// The terms of `row` (data paths, and metadata under `metadata.`).
pub fn terms(row: &Row) -> Vec<String> {
    let mut out = Vec::new();
    map_terms("", &row.data, &mut out);
    map_terms("metadata", &row.metadata, &mut out);
    if out.len() > MAX_TERMS || out.iter().any(|t| t.len() > MAX_TERM_BYTES) {
        return vec![EVERYTHING.to_string()];
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Appends `,"dk_terms":[...]` for `row` to a `_source` being written.
pub fn push_terms(out: &mut String, row: &Row) {
    out.push_str(",\"");
    out.push_str(TERMS_FIELD);
    out.push_str("\":[");
    for (i, t) in terms(row).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        codec::push_json_str(out, t);
    }
    out.push(']');
}

// --- the clause of a condition --------------------------------------------------------------

/// A translated condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Narrowed {
    /// None: every document (match_all).
    pub query: Option<J>,
    /// The clause selects exactly the matching documents.
    pub exact: bool,
    /// When `exact` is false: a clause that selects exactly the matching documents among
    /// those carrying terms (every document but the `*` ones, which the evaluator decides),
    /// so `count` can use `_count` for them. None: the evaluator decides everything fetched.
    pub on_terms: Option<J>,
}

impl Narrowed {
    fn all(exact: bool) -> Narrowed {
        Narrowed {
            query: None,
            exact,
            on_terms: None,
        }
    }
    fn none() -> Narrowed {
        Narrowed {
            query: Some(json!({"match_none": {}})),
            exact: true,
            on_terms: None,
        }
    }
    fn exact(q: J) -> Narrowed {
        Narrowed {
            query: Some(q),
            exact: true,
            on_terms: None,
        }
    }
    fn superset(q: J) -> Narrowed {
        Narrowed {
            query: Some(q),
            exact: false,
            on_terms: None,
        }
    }
    /// Exact on the documents that carry terms (see `on_terms`).
    fn on_terms(q: J) -> Narrowed {
        Narrowed {
            query: Some(q.clone()),
            exact: false,
            on_terms: Some(q),
        }
    }
    /// Exact on term-carrying documents: exact, or exact but for the `*` ones.
    fn exact_on_terms(&self) -> bool {
        self.exact || self.on_terms.is_some()
    }
    /// The clause exact on term-carrying documents, for a part of a conjunction or
    /// disjunction that is `exact_on_terms` (None for a part that is exactly everything).
    fn term_clause(&self) -> Option<J> {
        if self.exact {
            self.query.clone()
        } else {
            self.on_terms.clone()
        }
    }

    /// The clause as a query.
    pub fn to_query(&self) -> J {
        self.query
            .clone()
            .unwrap_or_else(|| json!({"match_all": {}}))
    }
}

/// Translates `cond` (None: everything). `terms` says whether the index's documents carry
/// `dk_terms` (an index 0.11.0 made does not: only filters on `id` narrow there).
pub fn narrow(cond: Option<&Cond>, terms: bool) -> Narrowed {
    let Some(c) = cond else {
        return Narrowed::all(true);
    };
    let n = node(c, terms);
    match n.query {
        // A record with too many paths carries `*` and is fetched by every inexact clause.
        Some(q) if !n.exact => Narrowed {
            query: Some(any_of(vec![q, json!({"term": {TERMS_FIELD: EVERYTHING}})])),
            exact: false,
            on_terms: n.on_terms,
        },
        _ => n,
    }
}

/// Every clause (None: no clause, everything).
fn all_of(clauses: Vec<J>) -> Option<J> {
    match clauses.len() {
        0 => None,
        1 => clauses.into_iter().next(),
        _ => Some(json!({"bool": {"filter": clauses}})),
    }
}

fn any_of(clauses: Vec<J>) -> J {
    if clauses.len() == 1 {
        return clauses.into_iter().next().unwrap_or(J::Null);
    }
    json!({"bool": {"should": clauses, "minimum_should_match": 1}})
}

fn node(c: &Cond, terms: bool) -> Narrowed {
    match c {
        Cond::Filter { field, op, value } if field == "id" => id_filter(*op, value),
        Cond::Filter { .. } if !terms => Narrowed::all(false),
        Cond::Filter { field, op, value } => filter(field, *op, value),
        Cond::And(items) => {
            let parts: Vec<Narrowed> = items.iter().map(|i| node(i, terms)).collect();
            let exact = parts.iter().all(|p| p.exact);
            let on_terms = if !exact && parts.iter().all(Narrowed::exact_on_terms) {
                Some(all_of(
                    parts.iter().filter_map(Narrowed::term_clause).collect(),
                ))
            } else {
                None
            };
            let clauses: Vec<J> = parts.into_iter().filter_map(|p| p.query).collect();
            Narrowed {
                query: all_of(clauses),
                exact,
                // An empty conjunction of term clauses is everything.
                on_terms: on_terms.map(|q| q.unwrap_or_else(|| json!({"match_all": {}}))),
            }
        }
        Cond::Or(items) => {
            if items.is_empty() {
                return Narrowed::none();
            }
            let parts: Vec<Narrowed> = items.iter().map(|i| node(i, terms)).collect();
            if parts.iter().any(|p| p.query.is_none()) {
                // A branch that may match anything: so may the whole (exactly everything when
                // that branch is exactly everything).
                return Narrowed::all(parts.iter().any(|p| p.query.is_none() && p.exact));
            }
            let exact = parts.iter().all(|p| p.exact);
            let on_terms = (!exact && parts.iter().all(Narrowed::exact_on_terms))
                .then(|| any_of(parts.iter().filter_map(Narrowed::term_clause).collect()));
            Narrowed {
                query: Some(any_of(parts.into_iter().filter_map(|p| p.query).collect())),
                exact,
                on_terms,
            }
        }
        Cond::Not(inner) => {
            let n = node(inner, terms);
            if let (false, Some(q)) = (n.exact, &n.on_terms) {
                // Exact on term-carrying documents stays so; `narrow` adds the `*` ones.
                return Narrowed::on_terms(json!({"bool": {"must_not": [q]}}));
            }
            if !n.exact {
                // The complement of a superset is no superset.
                return Narrowed::all(false);
            }
            match n.query {
                None => Narrowed::none(),
                Some(q) => Narrowed::exact(json!({"bool": {"must_not": [q]}})),
            }
        }
    }
}

fn str_of(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Filters on the record id: `_id` and the `id` keyword hold every id exactly, and the id is
/// always a str (keyword order is UTF-8 byte order, which is code point order).
fn id_filter(op: Op, value: &Value) -> Narrowed {
    let members = || -> Vec<&str> {
        match value {
            Value::List(items) => items.iter().filter_map(str_of).collect(),
            other => str_of(other).into_iter().collect(),
        }
    };
    let range = |key: &str, s: &str| Narrowed::exact(json!({"range": {"id": {key: s}}}));
    match (op, value) {
        (Op::Exists, _) => Narrowed::all(true),
        (Op::NotExists, _) => Narrowed::none(),
        (Op::Eq | Op::In, _) => match members() {
            ids if ids.is_empty() => Narrowed::none(),
            ids => Narrowed::exact(json!({"ids": {"values": ids}})),
        },
        (Op::Neq | Op::NotIn, _) => match members() {
            ids if ids.is_empty() => Narrowed::all(true),
            ids => Narrowed::exact(json!({"bool": {"must_not": [{"ids": {"values": ids}}]}})),
        },
        (Op::StartsWith, Value::Str(p)) => Narrowed::exact(json!({"prefix": {"id": p}})),
        (Op::Like | Op::Regex, Value::Str(_)) => Narrowed::all(false),
        (Op::StartsWith | Op::Like | Op::NotLike | Op::Regex, _) => Narrowed::none(),
        (Op::Gt, Value::Str(s)) => range("gt", s),
        (Op::Gte, Value::Str(s)) => range("gte", s),
        (Op::Lt, Value::Str(s)) => range("lt", s),
        (Op::Lte, Value::Str(s)) => range("lte", s),
        _ => Narrowed::all(false),
    }
}

/// Whether a LIKE pattern may match differently under Unicode case folding (the evaluator's)
/// than under Lucene's ASCII folding: `K` folds to the Kelvin sign, `s` to `ſ`, `i` to dotted
/// capitals, and non-ASCII letters have folds of their own. Such a pattern is not narrowed.
fn folds_beyond_ascii(s: &str) -> bool {
    s.chars()
        .any(|c| !c.is_ascii() || matches!(c.to_ascii_lowercase(), 'i' | 'k' | 's'))
}

/// LIKE as a Lucene wildcard: `%` any run, `_` one code point, `*`, `?` and `\` escaped.
pub fn like_wildcard(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' | '?' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn has(t: String) -> J {
    json!({"term": {TERMS_FIELD: t}})
}

/// Terms of `kind` at `path` from `lo` to `hi` (inclusive; None: open).
fn between_terms(kind: char, path: &str, lo: Option<String>, hi: Option<String>) -> J {
    let open_lo = with_value(kind, path, "");
    // Just past every `kind␀path␀...` term.
    let mut open_hi = term(kind, path);
    open_hi.push('\u{1}');
    let lo = lo.map_or(open_lo, |v| with_value(kind, path, &v));
    let mut r = serde_json::Map::new();
    r.insert("gte".into(), J::String(lo));
    match hi {
        Some(v) => r.insert("lte".into(), J::String(with_value(kind, path, &v))),
        None => r.insert("lt".into(), J::String(open_hi)),
    };
    json!({"range": {TERMS_FIELD: r}})
}

/// The clause for `path = x` for one scalar `x` (None: not narrowed).
fn equal(path: &str, x: &Value) -> Option<J> {
    match x {
        Value::Str(s) if path.len() + s.len() + 3 <= MAX_TERM_BYTES => {
            Some(has(with_value('s', path, s)))
        }
        Value::Str(_) => Some(has(term('L', path))),
        other => number(other).map(|f| {
            let k = sortable(f);
            between_terms('n', path, Some(k.clone()), Some(k))
        }),
    }
}

/// Ordered comparison with `lo`..`hi` (either may be open): numbers against numbers; strings
/// against strings, and against datetimes and dates (which compare with ISO text), and the
/// strings too long for a term; datetimes against datetimes and any string.
fn ordered(path: &str, lo: Option<&Value>, hi: Option<&Value>) -> Option<J> {
    let kind_of = |v: &Value| match v {
        Value::Str(_) => Some('s'),
        Value::DateTime(_) | Value::Date(_) => Some('D'),
        v => number(v).map(|_| 'n'),
    };
    let kinds: Vec<char> = [lo, hi]
        .into_iter()
        .flatten()
        .map(kind_of)
        .collect::<Option<_>>()?;
    let kind = *kinds.first()?;
    if kinds.iter().any(|k| *k != kind) {
        return None;
    }
    match kind {
        'n' => Some(between_terms(
            'n',
            path,
            lo.and_then(number).map(sortable),
            hi.and_then(number).map(sortable),
        )),
        's' => {
            let text = |v: Option<&Value>| v.and_then(str_of).map(str::to_string);
            Some(any_of(vec![
                between_terms('s', path, text(lo), text(hi)),
                has(term('L', path)),
                has(term('D', path)),
            ]))
        }
        _ => Some(any_of(vec![
            has(term('D', path)),
            between_terms('s', path, None, None),
            has(term('L', path)),
        ])),
    }
}

fn filter(field: &str, op: Op, value: &Value) -> Narrowed {
    // List positions are not indexed.
    if field
        .split('.')
        .any(|seg| seg.is_empty() || seg.bytes().all(|b| b.is_ascii_digit()))
    {
        return Narrowed::all(false);
    }
    let path = field;
    // A path without a dot names one data key (docs/internals.md §1), whose value alone gives
    // its terms: a term is then present exactly when that value is (`e`) or is that str (`s`),
    // as `Filter.matches` decides `exists`, and `=` / `in` against strs (a str equals only an
    // equal str). Dotted paths can also be walks, and numbers round into their terms.
    let short_str =
        |v: &Value| matches!(v, Value::Str(s) if path.len() + s.len() + 3 <= MAX_TERM_BYTES);
    let exact = !path.contains('.')
        && match (op, value) {
            (Op::Exists, _) => true,
            (Op::Eq, x) => short_str(x),
            (Op::In, Value::List(items)) => items
                .iter()
                .all(|v| matches!(v, Value::Null) || short_str(v)),
            _ => false,
        };
    let q = match (op, value) {
        (Op::Exists, _) => Some(has(term('e', path))),
        (Op::Eq, x) => equal(path, x),
        (Op::In, Value::List(items)) => {
            // A None member equals no stored value.
            let wanted: Vec<&Value> = items.iter().filter(|v| !matches!(v, Value::Null)).collect();
            wanted
                .iter()
                .map(|v| equal(path, v))
                .collect::<Option<Vec<J>>>()
                .map(|clauses| {
                    if clauses.is_empty() {
                        json!({"match_none": {}})
                    } else {
                        any_of(clauses)
                    }
                })
        }
        (Op::In, x) => equal(path, x),
        (Op::Gt | Op::Gte, x) => ordered(path, Some(x), None),
        (Op::Lt | Op::Lte, x) => ordered(path, None, Some(x)),
        (Op::Between, Value::List(b)) if b.len() == 2 => ordered(path, Some(&b[0]), Some(&b[1])),
        (Op::StartsWith, Value::Str(p)) => Some(any_of(vec![
            json!({"prefix": {TERMS_FIELD: with_value('s', path, p)}}),
            has(term('L', path)),
        ])),
        (Op::Like, Value::Str(p)) if !folds_beyond_ascii(p) => {
            let mut pattern = like_wildcard(&term('s', path));
            pattern.push('\0');
            pattern.push_str(&like_wildcard(p));
            Some(any_of(vec![
                json!({"wildcard": {TERMS_FIELD: {"value": pattern, "case_insensitive": true}}}),
                has(term('L', path)),
            ]))
        }
        _ => None,
    };
    match q {
        Some(q) if exact => Narrowed::on_terms(q),
        Some(q) => Narrowed::superset(q),
        None => Narrowed::all(false),
    }
}

// --- the window of a sorted, limited search ---------------------------------------------------

/// Documents with too many paths, which carry `*` alone.
pub fn everything() -> J {
    has(EVERYTHING.to_string())
}

/// `q` without the `*` documents.
pub fn without_everything(q: &J) -> J {
    json!({"bool": {"filter": [q], "must_not": [everything()]}})
}

/// Whether a search sorted first on `field` may be windowed by that field's number terms
/// (`top_terms_agg`): a path without a dot names one data key, so each document has at most
/// one number term for it, present exactly when its value is a number (NaN has none).
pub fn windowable(field: &str) -> bool {
    field != "id"
        && !field.is_empty()
        && !field.contains('.')
        && !field.bytes().all(|b| b.is_ascii_digit())
}

/// The number term `v` has at `path` (None: not a number, or NaN).
pub fn number_term(path: &str, v: &Value) -> Option<String> {
    number(v).map(|f| with_value('n', path, &sortable(f)))
}

/// A terms aggregation over `path`'s number terms, the `size` largest (or smallest) first:
/// the documents per number, from which the value the window ends at is read.
pub fn top_terms_agg(path: &str, size: usize, descending: bool) -> J {
    let mut include = String::new();
    for c in term('n', path).chars().chain(['\0']) {
        if !c.is_ascii_alphanumeric() {
            // Lucene's regexp syntax takes any escaped character literally.
            include.push('\\');
        }
        include.push(c);
    }
    include.push_str("[0-9a-f]{16}");
    let order = if descending { "desc" } else { "asc" };
    json!({"terms": {"field": TERMS_FIELD, "include": include, "size": size,
                     "order": {"_key": order}}})
}

/// `q` restricted to the documents whose number at `path` is on the window's side of
/// `bound` (a number term, included), or that have no number there (their values sort apart
/// from numbers, so they are all fetched and the core sorts them).
pub fn window_clause(q: &J, path: &str, bound: &str, descending: bool) -> J {
    let side = if descending {
        between_terms_raw(path, Some(bound), None)
    } else {
        between_terms_raw(path, None, Some(bound))
    };
    let no_number = json!({"bool": {"must_not": [between_terms_raw(path, None, None)]}});
    json!({"bool": {"filter": [q, any_of(vec![side, no_number])]}})
}

/// A range over `path`'s number terms between two whole terms (None: open).
fn between_terms_raw(path: &str, lo: Option<&str>, hi: Option<&str>) -> J {
    let open_lo = with_value('n', path, "");
    let mut open_hi = term('n', path);
    open_hi.push('\u{1}');
    let mut r = serde_json::Map::new();
    r.insert("gte".into(), J::String(lo.map_or(open_lo, str::to_string)));
    match hi {
        Some(h) => r.insert("lte".into(), J::String(h.to_string())),
        None => r.insert("lt".into(), J::String(open_hi)),
    };
    json!({"range": {TERMS_FIELD: r}})
}

/// The mapping this crate creates indexes with (unless the config gives one): 0.11.0's
/// properties, with `data` and `metadata` stored but not indexed (any shape is accepted, and
/// nothing is coerced) and the `dk_terms` keyword that queries are narrowed with.
pub fn default_mappings() -> J {
    json!({
        "dynamic": false,
        "properties": {
            "id": {"type": "keyword"},
            "data": {"type": "object", "enabled": false},
            "metadata": {"type": "object", "enabled": false},
            "created_at": {"type": "date"},
            "updated_at": {"type": "date"},
            TERMS_FIELD: {"type": "keyword"}
        }
    })
}

/// Whether a `GET /<index>/_mapping` answer (one index) has the terms field.
pub fn mapping_has_terms(answer: &J) -> bool {
    answer
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|v| v.pointer(&format!("/mappings/properties/{TERMS_FIELD}")))
        .is_some()
}
