//! Conditions and sort keys translated to SQLite's JSON functions over the tagged JSON text of
//! the `data` column, as three-valued predicates (crate::pred).
//!
//! A leaf reads the stored value's JSON type (`json_type`) and value (`json_extract`) and
//! decides by type what the reference (query.rs) decides: `1 = "1"` is false (a text is never
//! equal to a number), booleans compare as 0 and 1, integers and reals compare numerically
//! (SQLite compares INTEGER with REAL exactly, and reads the shortest round-trip spelling of a
//! float, which the codec writes, back to the same double within `REAL_READS_EXACTLY`), strings
//! compare in BINARY collation, which on UTF-8 is code point order. A missing field or a
//! stored None is false for every operator but `exists`/`not_exists`.
//!
//! A tagged object (Decimal, datetime, date, bytes, non-finite float) is undecided (NULL) where
//! it could match: the core compares those. So is every row in one of the stored forms the
//! JSON functions read differently from the codec (`ODD_DATA`, `NUL_ESCAPE`). The store counts
//! the undecided rows in the statement that decides the others and falls back to the core
//! when there are any, so the translation only chooses who decides, never the answer.

use rusqlite::types::Value as S;

use crate::iso;
use crate::num::{cmp_num, Num};
use crate::pred::{and2, holds_nul, Params, Pred, FALSE, TRUE};
use crate::query::{Cond, Op};
use crate::value::Value;

/// Data texts that may be a hand-written `{"$map": {...}}` (the codec never writes top-level
/// data that way), whose fields the JSON paths do not see: every text that does not start
/// with `{"` (space or `}` after the brace, leading space) and every first key starting with
/// `$` or an escape. Plain comparisons on the text are the cheapest test SQLite has.
const ODD_DATA: &str = "(data < '{\"' OR data >= '{#' OR (data >= '{\"$' AND data < '{\"%') \
                        OR (data >= '{\"\\' AND data < '{\"]'))";

/// Data holding an escaped NUL, which `json_extract` cuts a string at (the bridge refuses NUL
/// in what it stores; another program may have written one).
const NUL_ESCAPE: &str = "instr(data, '\\u0000') > 0";

/// The magnitudes within which SQLite reads the codec's spelling of a float back to the same
/// double (`floats_read_back_exactly` in sqlite.rs; it misses by an ulp beyond about 1e-84 and
/// 1e118): a stored real outside them is left to the core.
const REAL_READS_EXACTLY: (&str, &str) = ("1e-80", "1e110");

/// SQLite's limit on a LIKE pattern's length in bytes (SQLITE_MAX_LIKE_PATTERN_LENGTH).
const MAX_LIKE_PATTERN: usize = 50_000;

/// Whether every JSON writer in use writes `x` as a string literal verbatim, so a document
/// holding the string must contain `"x"` byte for byte: letters, digits and a few punctuation
/// marks that no writer escapes (not `/`, `<`, `>`, `&`, `'`, which some writers escape, and
/// nothing beyond ASCII, which ASCII-only writers escape).
pub(crate) fn raw_in_any_json(x: &str) -> bool {
    x.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" -_.,:;@+=#!?()[]{}*~|^$%".contains(&b))
}

/// A path segment whose reading is the same for the reference's walk and SQLite's quoted JSON
/// path: not a tag or `$map` key, nothing the quoting cannot carry, not a list index (`#>`-style
/// indexes walk lists in the reference and objects' keys in a quoted path).
fn plain_segment(seg: &str) -> bool {
    !seg.is_empty()
        && !seg.starts_with('$')
        && !seg.chars().any(|c| c == '"' || c == '\\' || c.is_control())
        && !seg.bytes().all(|b| b.is_ascii_digit())
}

/// A JSON path literal `'$."a"."b"'` (single quotes doubled for SQL).
fn json_path(segs: &[&str]) -> String {
    let mut p = String::from("'$");
    for s in segs {
        p.push_str(".\"");
        p.push_str(&s.replace('\'', "''"));
        p.push('"');
    }
    p.push('\'');
    p
}

/// The stored value a leaf (or a sort key) reads, in the SQL forms its tests need.
struct Subject {
    /// The value as SQL (`json_extract`): NULL when missing or a JSON null, 1/0 for booleans.
    v: String,
    /// Its JSON type (`json_type`): NULL when missing.
    typ: String,
    /// Undecided where this holds (a dotted path through a `$map` wrapper).
    odd: Option<String>,
    /// Whether `v` is the `id` column (always text).
    is_id: bool,
}

impl Subject {
    /// docs/internals.md §1: `id`, an exact data field name, or a dotted walk through data.
    /// None for a path whose SQL reading could differ (metadata walks, list indexes, tags).
    fn of(field: &str) -> Option<Subject> {
        if field == "id" {
            return Some(Subject {
                v: "id".into(),
                typ: "'text'".into(),
                odd: None,
                is_id: true,
            });
        }
        if !field.contains('.') {
            if !plain_segment(field) {
                return None;
            }
            let p = json_path(&[field]);
            return Some(Subject {
                v: format!("json_extract(data, {p})"),
                typ: format!("json_type(data, {p})"),
                odd: None,
                is_id: false,
            });
        }
        let segs: Vec<&str> = field.split('.').collect();
        if segs[0] == "metadata" || !segs.iter().all(|s| plain_segment(s)) {
            return None;
        }
        // An exact data field name wins over the walk.
        let whole = json_path(&[field]);
        let walk = json_path(&segs);
        let has_whole = format!("json_type(data, {whole}) IS NOT NULL");
        // A `{"$map": ...}` dict on the way reads as its content in the reference.
        let wrapped: Vec<String> = (1..segs.len())
            .map(|n| {
                let mut prefix = segs[..n].to_vec();
                prefix.push("$map");
                format!("json_type(data, {}) IS NOT NULL", json_path(&prefix))
            })
            .collect();
        Some(Subject {
            v: format!(
                "(CASE WHEN {has_whole} THEN json_extract(data, {whole}) \
                 ELSE json_extract(data, {walk}) END)"
            ),
            typ: format!("COALESCE(json_type(data, {whole}), json_type(data, {walk}))"),
            odd: Some(format!("(NOT {has_whole} AND ({}))", wrapped.join(" OR "))),
            is_id: false,
        })
    }

    fn present(&self) -> String {
        if self.is_id {
            TRUE.into()
        } else {
            format!("COALESCE({} <> 'null', false)", self.typ)
        }
    }

    fn is_str(&self) -> String {
        if self.is_id {
            TRUE.into()
        } else {
            format!("COALESCE({} = 'text', false)", self.typ)
        }
    }
}

/// A number as SQLite binds it; None for NaN (equal to and ordered with nothing) and non-numbers.
fn bind_num(x: &Value) -> Option<S> {
    match x {
        Value::Bool(b) => Some(S::Integer(i64::from(*b))),
        Value::Int(i) => Some(S::Integer(*i)),
        Value::Float(f) if !f.is_nan() => Some(S::Real(*f)),
        _ => None,
    }
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Gt => ">",
        Op::Gte => ">=",
        Op::Lt => "<",
        _ => "<=",
    }
}

/// Whether `a op b` holds under the reference's numeric comparison.
fn num_holds(a: &Num, op: Op, b: &Num) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match cmp_num(a, b) {
        None => false,
        Some(o) => match op {
            Op::Eq => o == Equal,
            Op::Gt => o == Greater,
            Op::Gte => o != Less,
            Op::Lt => o == Less,
            _ => o != Greater,
        },
    }
}

/// SQL for the stored real `v` being one SQLite read exactly (`REAL_READS_EXACTLY`). Not
/// `abs()`, which raises on the smallest integer, and AND / OR do not keep SQLite from
/// evaluating it on one.
pub(crate) fn real_reads_exactly(v: &str) -> String {
    let (lo, hi) = REAL_READS_EXACTLY;
    format!("({v} = 0 OR {v} BETWEEN {lo} AND {hi} OR {v} BETWEEN -{hi} AND -{lo})")
}

struct Builder {
    params: Params<S>,
    /// Whether some leaf compares stored strings (so `NUL_ESCAPE` rows are undecided).
    reads_text: bool,
}

impl Builder {
    fn param(&mut self, v: S) -> String {
        self.params.mark(v)
    }

    fn leaf(&mut self, field: &str, op: Op, x: &Value) -> Pred {
        if holds_nul(x) {
            return Pred::unknown_where(TRUE);
        }
        let Some(s) = Subject::of(field) else {
            return Pred::unknown_where(TRUE);
        };
        let pred = self.leaf_of(&s, op, x);
        match &s.odd {
            Some(odd) if pred.sql() != FALSE && pred.sql() != TRUE => {
                let exact = pred.is_exact();
                let sql = format!("(CASE WHEN {odd} THEN NULL ELSE {} END)", pred.sql());
                if exact {
                    Pred::exact(sql)
                } else {
                    Pred::inexact(sql)
                }
            }
            _ => pred,
        }
    }

    fn leaf_of(&mut self, s: &Subject, op: Op, x: &Value) -> Pred {
        let present = s.present();
        match op {
            Op::Exists => Pred::exact(present),
            Op::NotExists => Pred::exact(format!("(NOT {present})")),
            Op::Eq => self.eq(s, x),
            Op::Neq => and2(Pred::exact(present), self.eq(s, x).not()),
            Op::In | Op::NotIn => {
                let members = match x {
                    Value::List(items) => items.clone(),
                    other => vec![other.clone()],
                };
                let any = Pred::join(members.iter().map(|m| self.eq(s, m)).collect(), false);
                if op == Op::In {
                    any
                } else {
                    and2(Pred::exact(present), any.not())
                }
            }
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => self.order(s, op, x),
            Op::Between | Op::NotBetween => {
                let within = match x {
                    Value::List(b) if b.len() == 2 => Some(and2(
                        self.order(s, Op::Gte, &b[0]),
                        self.order(s, Op::Lte, &b[1]),
                    )),
                    _ => None,
                };
                match (op, within) {
                    (Op::Between, Some(p)) => p,
                    (Op::Between, None) => Pred::exact(FALSE),
                    (_, Some(p)) => and2(Pred::exact(present), p.not()),
                    (_, None) => Pred::exact(present),
                }
            }
            Op::Like | Op::NotLike => {
                let Value::Str(p) = x else {
                    return Pred::exact(FALSE);
                };
                let is_str = s.is_str();
                let like = if p.is_ascii() && p.len() <= MAX_LIKE_PATTERN {
                    // SQLite's LIKE folds ASCII letters only, the reference's (?i) folds
                    // Unicode: they agree unless the value holds a character that folds to an
                    // ASCII letter (KELVIN SIGN, LONG S, dotted and dotless I), left
                    // undecided. `%` and `_` take any characters in both, newlines included.
                    self.reads_text = true;
                    let v = &s.v;
                    let hit = format!("{v} LIKE {}", self.param(S::Text(p.clone())));
                    Pred::exact(format!(
                        "(CASE WHEN NOT {is_str} THEN false \
                         WHEN instr({v}, '\u{212A}') = 0 AND instr({v}, '\u{17F}') = 0 \
                         AND instr({v}, '\u{130}') = 0 AND instr({v}, '\u{131}') = 0 \
                         THEN {hit} END)"
                    ))
                } else {
                    Pred::unknown_where(&is_str)
                };
                if op == Op::Like {
                    like
                } else {
                    and2(Pred::exact(is_str), like.not())
                }
            }
            Op::Regex => match x {
                // SQLite has no regex function: every string is the core's.
                Value::Str(_) => Pred::unknown_where(&s.is_str()),
                _ => Pred::exact(FALSE),
            },
            Op::StartsWith => match x {
                Value::Str(p) => {
                    self.reads_text = true;
                    let n = i64::try_from(p.chars().count()).unwrap_or(i64::MAX);
                    let quick = self.quick(s, &format!("\"{p}"), p);
                    let test = format!(
                        "COALESCE({} AND substr({}, 1, {}) = {}, false)",
                        s.is_str(),
                        s.v,
                        self.param(S::Integer(n)),
                        self.param(S::Text(p.clone()))
                    );
                    Pred::exact(format!("({quick}{test})"))
                }
                _ => Pred::exact(FALSE),
            },
        }
    }

    /// `instr(data, needle) > 0 AND `: a substring test that rejects most rows without parsing
    /// their JSON, when the data text must hold `needle` for `text` to be there.
    fn quick(&mut self, s: &Subject, needle: &str, text: &str) -> String {
        if s.is_id || !raw_in_any_json(text) {
            return String::new();
        }
        format!(
            "instr(data, {}) > 0 AND ",
            self.param(S::Text(needle.into()))
        )
    }

    fn eq(&mut self, s: &Subject, x: &Value) -> Pred {
        match x {
            Value::Null => Pred::exact(FALSE),
            Value::Str(text) => {
                self.reads_text = true;
                if s.is_id {
                    return Pred::exact(format!("(id = {})", self.param(S::Text(text.clone()))));
                }
                let quick = self.quick(s, &format!("\"{text}\""), text);
                let x = self.param(S::Text(text.clone()));
                if text.starts_with(['[', '{']) {
                    // An array or object reads as its JSON text, which this one could be.
                    return Pred::exact(format!(
                        "({quick}COALESCE({} = 'text' AND {} = {x}, false))",
                        s.typ, s.v
                    ));
                }
                // No JSON type but a string reads as text this could equal (numbers and
                // booleans read as numbers, arrays and objects as text starting with `[` or
                // `{`), so the type needs no second look.
                Pred::exact(format!("({quick}COALESCE({} = {x}, false))", s.v))
            }
            _ => self
                .numeric(s, Op::Eq, x)
                .unwrap_or_else(|| Pred::unknown_where(&s.present())),
        }
    }

    /// `value op x` for a numeric `x` by the stored value's JSON type: integers and reals in
    /// SQL, booleans as 0 and 1 (decided here, once), tagged objects (Decimals, non-finite
    /// floats) undecided, anything else false. None when `x` is not a bool, int or float.
    fn numeric(&mut self, s: &Subject, op: Op, x: &Value) -> Option<Pred> {
        if s.is_id {
            return matches!(x, Value::Bool(_) | Value::Int(_) | Value::Float(_))
                .then(|| Pred::exact(FALSE));
        }
        let xn = Num::of(x)?;
        if !matches!(x, Value::Bool(_) | Value::Int(_) | Value::Float(_)) {
            return None;
        }
        let Some(bound) = bind_num(x) else {
            // NaN: equal to nothing, ordered with nothing.
            return Some(Pred::exact(FALSE));
        };
        let holds = |a: Num| if num_holds(&a, op, &xn) { TRUE } else { FALSE };
        let (v, typ) = (&s.v, &s.typ);
        let p = self.param(bound);
        let o = sql_op(op);
        Some(Pred::exact(format!(
            "(CASE {typ} WHEN 'integer' THEN {v} {o} {p} \
             WHEN 'real' THEN (CASE WHEN {} THEN {v} {o} {p} END) \
             WHEN 'true' THEN {} WHEN 'false' THEN {} WHEN 'object' THEN NULL ELSE false END)",
            real_reads_exactly(v),
            holds(Num::Int(1)),
            holds(Num::Int(0)),
        )))
    }

    fn order(&mut self, s: &Subject, op: Op, x: &Value) -> Pred {
        match x {
            Value::Str(text) => {
                self.reads_text = true;
                let p = self.param(S::Text(text.clone()));
                let o = sql_op(op);
                if s.is_id {
                    return Pred::exact(format!("(id {o} {p})"));
                }
                // A datetime or date compares with a str that parses as one.
                let object =
                    if iso::parse_datetime(text).is_some() || iso::parse_date(text).is_some() {
                        "NULL"
                    } else {
                        FALSE
                    };
                Pred::exact(format!(
                    "(CASE {} WHEN 'text' THEN {} {o} {p} WHEN 'object' THEN {object} \
                     ELSE false END)",
                    s.typ, s.v
                ))
            }
            _ => self
                .numeric(s, op, x)
                .unwrap_or_else(|| Pred::unknown_where(&s.present())),
        }
    }

    /// A cheap test that is false only on rows the condition is false for, in every stored
    /// form (`ODD_DATA` and `NUL_ESCAPE` rows too), or None: translate puts it ahead of
    /// everything else, so most rows are ruled out without the guarded JSON tests (SQLite
    /// evaluates a CASE's branches in order and stops at the first that holds).
    fn needed(&mut self, c: &Cond) -> Option<String> {
        match c {
            Cond::Filter { field, op, value } => self.needed_leaf(field, *op, value),
            Cond::And(items) => {
                let parts: Vec<String> = items.iter().filter_map(|i| self.needed(i)).collect();
                (!parts.is_empty()).then(|| format!("({})", parts.join(" AND ")))
            }
            Cond::Or(items) if !items.is_empty() => {
                let parts = items
                    .iter()
                    .map(|i| self.needed(i))
                    .collect::<Option<Vec<String>>>()?;
                Some(format!("({})", parts.join(" OR ")))
            }
            // A test of what the inner condition needs says nothing of its complement.
            _ => None,
        }
    }

    fn needed_leaf(&mut self, field: &str, op: Op, x: &Value) -> Option<String> {
        // Only a path into data (not `id`, not metadata) has its value in the data text.
        if holds_nul(x) || Subject::of(field).is_none_or(|s| s.is_id) {
            return None;
        }
        let members = match (op, x) {
            (Op::Eq, _) => std::slice::from_ref(x),
            (Op::In, Value::List(items)) if !items.is_empty() => items.as_slice(),
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, _) => {
                return self.needed_number(field, op, x);
            }
            _ => return None,
        };
        // A matching string is in the text verbatim, quotes and all, whatever wraps it.
        let needles = members
            .iter()
            .map(|m| match m {
                Value::Str(t) if raw_in_any_json(t) => Some(format!(
                    "instr(data, {}) > 0",
                    self.param(S::Text(format!("\"{t}\"")))
                )),
                _ => None,
            })
            .collect::<Option<Vec<String>>>()?;
        Some(format!("({})", needles.join(" OR ")))
    }

    /// `field op x` read bare (`json_extract` alone) for a plain top-level field and a number
    /// well inside `REAL_READS_EXACTLY`: on a number or boolean it is the answer (a stored
    /// real SQLite reads an ulp off cannot cross a bound this far from the edges); a string,
    /// list or dict reads as text, which SQLite orders after every number, so it is false only
    /// where the reference's answer is false too (`<`, `<=`); tagged objects (Decimals,
    /// datetimes, non-finite floats: keys starting with `$`, and `$map` data) are let through
    /// by their `"$`. NULL (missing, None) rules nothing out.
    fn needed_number(&mut self, field: &str, op: Op, x: &Value) -> Option<String> {
        if field.contains('.') || !plain_segment(field) {
            return None;
        }
        let inside = |f: f64| f == 0.0 || (1e-79..=1e109).contains(&f.abs());
        let bound = match x {
            Value::Int(i) if i.unsigned_abs() < (1 << 53) && *i != 0 => S::Integer(*i),
            Value::Float(f) if f.is_finite() && *f != 0.0 && inside(*f) => S::Real(*f),
            _ => return None,
        };
        let b = self.param(bound);
        let dollar = self.param(S::Text("\"$".into()));
        Some(format!(
            "(json_extract(data, {}) {} {b} OR instr(data, {dollar}) > 0)",
            json_path(&[field]),
            sql_op(op)
        ))
    }

    fn cond(&mut self, c: &Cond) -> Pred {
        match c {
            Cond::Filter { field, op, value } => self.leaf(field, *op, value),
            Cond::And(items) => Pred::join(items.iter().map(|i| self.cond(i)).collect(), true),
            Cond::Or(items) => Pred::join(items.iter().map(|i| self.cond(i)).collect(), false),
            Cond::Not(inner) => self.cond(inner).not(),
        }
    }
}

/// A condition as SQLite SQL over the columns `data` (and `id`): true, false, or NULL where the
/// core must decide (always for `ODD_DATA` rows, and `NUL_ESCAPE` rows when it reads text).
#[derive(Debug, Clone)]
pub(crate) struct Where {
    /// The predicate, its parameters numbered `?1`, `?2`...
    pub sql: String,
    pub params: Vec<S>,
    /// Whether it is worth letting SQLite decide (crate::pred::Pred): the rows it leaves NULL
    /// are only ones in a rare stored form.
    pub exact: bool,
}

/// The translation of a condition (see the module doc).
pub(crate) fn translate(c: &Cond) -> Where {
    let mut b = Builder {
        params: Params::new(),
        reads_text: false,
    };
    let pred = b.cond(c);
    let exact = pred.is_exact();
    let sql = match pred.sql() {
        // A constant holds on every row alike.
        p @ (TRUE | FALSE) => p.to_string(),
        p => {
            let odd = if b.reads_text {
                format!("({ODD_DATA} OR {NUL_ESCAPE})")
            } else {
                ODD_DATA.to_string()
            };
            match b.needed(c) {
                Some(n) => {
                    format!("(CASE WHEN NOT {n} THEN false WHEN {odd} THEN NULL ELSE {p} END)")
                }
                None => format!("(CASE WHEN {odd} THEN NULL ELSE {p} END)"),
            }
        }
    };
    let (mut texts, params) = b.params.number(&[&sql], |n| format!("?{n}"));
    Where {
        sql: texts.remove(0),
        params,
        exact,
    }
}

/// ORDER BY terms that reproduce the reference's sort order (query.rs `sort_key_cmp`) for sort
/// values that are JSON numbers, booleans, strings, arrays, null or missing, and `complex`:
/// true for a row whose sort values the SQL cannot order (a tagged object, a real outside
/// `REAL_READS_EXACTLY`, a stored form of `ODD_DATA` or `NUL_ESCAPE`). Sorting by `complex DESC` first puts such rows first, so the
/// first row tells whether the SQL order holds for the whole result. Ties fall back to rowid
/// (storage order), as the reference's stable sort does. None when a sort path has no SQL
/// reading.
pub(crate) struct SortSql {
    pub complex: String,
    pub terms: String,
}

pub(crate) fn sort_sql(sort: &[(String, bool)]) -> Option<SortSql> {
    let mut complex = vec![ODD_DATA.to_string(), NUL_ESCAPE.to_string()];
    let mut terms = Vec::with_capacity(sort.len() * 3 + 1);
    for (field, descending) in sort {
        let s = Subject::of(field)?;
        let (v, typ) = (&s.v, &s.typ);
        let dir = if *descending { "DESC" } else { "ASC" };
        if s.is_id {
            terms.push(format!("id {dir}"));
            continue;
        }
        complex.push(format!(
            "COALESCE({typ} = 'object' OR ({typ} = 'real' AND NOT {}), false)",
            real_reads_exactly(v)
        ));
        if let Some(odd) = &s.odd {
            complex.push(odd.clone());
        }
        // None last whatever the direction.
        terms.push(format!("COALESCE({typ}, 'null') = 'null'"));
        // Numbers and booleans, then strings, then lists (dicts are complex).
        terms.push(format!(
            "(CASE {typ} WHEN 'text' THEN 2 WHEN 'array' THEN 6 ELSE 0 END) {dir}"
        ));
        terms.push(format!(
            "(CASE WHEN {typ} IN ('integer', 'real', 'true', 'false', 'text') THEN {v} END) {dir}"
        ));
    }
    terms.push("rowid".into());
    Some(SortSql {
        complex: format!("({})", complex.join(" OR ")),
        terms: terms.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(field: &str, op: Op, value: Value) -> Cond {
        Cond::Filter {
            field: field.into(),
            op,
            value,
        }
    }

    #[test]
    fn exactness() {
        let exact = |c: Cond| translate(&c).exact;
        assert!(exact(f("city", Op::Eq, Value::Str("Denver".into()))));
        assert!(exact(f("age", Op::Gt, Value::Int(30))));
        assert!(exact(f("a.b", Op::In, Value::List(vec![Value::Int(1)]))));
        assert!(exact(f("s", Op::Like, Value::Str("a%".into()))));
        assert!(!exact(f("s", Op::Like, Value::Str("é%".into()))));
        assert!(!exact(f("s", Op::Regex, Value::Str("a".into()))));
        assert!(!exact(f("metadata.m", Op::Eq, Value::Int(1))));
        assert!(!exact(f("tags.0", Op::Eq, Value::Int(1))));
        assert!(!exact(f("d", Op::Eq, Value::Decimal("1".into()))));
        let w = translate(&f("city", Op::Eq, Value::Str("Denver".into())));
        // The cheap substring test comes first, ahead of the guards; equality reads no type.
        assert_eq!(
            w.params,
            vec![
                S::Text("\"Denver\"".into()),
                S::Text("\"Denver\"".into()),
                S::Text("Denver".into())
            ]
        );
        assert!(
            w.sql
                .starts_with("(CASE WHEN NOT (instr(data, ?1) > 0) THEN false WHEN ")
                && w.sql.contains("?3")
                && w.sql.contains("\\u0000")
                && !w.sql.contains("json_type"),
            "{}",
            w.sql
        );
        // Numbers: a bare json_extract first, tags let through by their `"$`.
        let n = translate(&f("age", Op::Gt, Value::Int(60))).sql;
        assert!(
            n.starts_with(
                "(CASE WHEN NOT (json_extract(data, '$.\"age\"') > ?1 OR instr(data, ?2) > 0)"
            ),
            "{n}"
        );
        // Nothing to test cheaply on metadata, ids or a NOT.
        for c in [
            f("metadata.m", Op::Eq, Value::Str("a".into())),
            f("id", Op::Eq, Value::Str("a".into())),
            Cond::Not(Box::new(f("s", Op::Eq, Value::Str("a".into())))),
        ] {
            assert!(!translate(&c).sql.starts_with("(CASE WHEN NOT"), "{c:?}");
        }
        // Numbers never read text, so rows with an escaped NUL stay decided.
        assert!(!translate(&f("n", Op::Lt, Value::Int(3)))
            .sql
            .contains("u0000"));
        assert_eq!(translate(&Cond::Or(vec![])).sql, FALSE);
        // NaN is equal to nothing.
        assert_eq!(
            translate(&f("n", Op::Eq, Value::Float(f64::NAN))).sql,
            FALSE
        );
    }

    #[test]
    fn paths() {
        assert_eq!(json_path(&["a'b", "c"]), "'$.\"a''b\".\"c\"'");
        assert!(Subject::of("a.$map").is_none());
        assert!(Subject::of("a.01").is_none());
        assert!(Subject::of("a..b").is_none());
        assert!(Subject::of("a\"b").is_none());
        assert!(Subject::of("a.b").unwrap().odd.unwrap().contains("$map"));
        assert!(sort_sql(&[("tags.0".into(), false)]).is_none());
    }
}
