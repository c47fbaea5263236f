//! Conditions and sort keys translated to SQL over the JSONB columns.
//!
//! A condition becomes one three-valued predicate (crate::pred: true, false, or NULL for rows
//! the translation cannot decide; the store applies the compiled query to the undecided ones).
//!
//! Leaves yield NULL only on purpose: a missing field is false (every leaf tests its type or
//! wraps itself in `COALESCE(.., false)`). Values are bound as text parameters and cast in SQL;
//! identifiers never come from the query.

use crate::iso;
use crate::num::{cmp_num, Num};
use crate::pred::{and2, holds_nul, Params, Pred, FALSE, TRUE};
use crate::query::{Cond, Op};
use crate::value::Value;

/// A SQL string literal for `s` (field paths in expressions, the table name in catalog
/// look-ups). An escape string (`E'...'`, backslash and quote escaped) reads the same whatever
/// the session's `standard_conforming_strings`, where a plain `'...'` with doubled quotes lets
/// a backslash in a field name end the literal when the setting is off. Values are bound as
/// parameters; field paths are written into the statement because the ORDER BY terms and the
/// index hint that use them have no parameter list of their own. A path holding NUL, which
/// no literal can carry, never gets here (`path_expr`).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A path segment whose meaning is the same for Python's walk and for `#>`: not a tag or `$map`
/// key, not something `#>` would read as a (negative, padded) array index.
fn plain_segment(seg: &str) -> bool {
    let Some(first) = seg.chars().next() else {
        return false;
    };
    if first == '$' || first == '-' || first == '+' || seg.chars().any(char::is_whitespace) {
        return false;
    }
    if seg.bytes().all(|b| b.is_ascii_digit()) {
        return seg == "0" || first != '0';
    }
    true
}

fn text_array(segs: &[&str]) -> String {
    let items: Vec<String> = segs.iter().map(|s| quote_literal(s)).collect();
    format!("ARRAY[{}]::text[]", items.join(","))
}

/// The JSONB value at `path` (docs/internals.md §1), NULL when missing; None when the path is
/// one whose SQL reading could differ from the reference.
fn path_expr(path: &str) -> Option<String> {
    if path == "id" {
        return Some("to_jsonb(id)".into());
    }
    if path.starts_with('$') || path.contains('\0') {
        return None;
    }
    let full = quote_literal(path);
    if !path.contains('.') {
        return Some(format!("(data -> {full})"));
    }
    let segs: Vec<&str> = path.split('.').collect();
    if !segs.iter().all(|s| plain_segment(s)) {
        return None;
    }
    let walk = format!("data #> {}", text_array(&segs));
    Some(if segs[0] == "metadata" {
        format!(
            "(CASE WHEN data ? {full} THEN data -> {full} WHEN data ? 'metadata' THEN {walk} \
             ELSE metadata #> {} END)",
            text_array(&segs[1..])
        )
    } else {
        format!("(CASE WHEN data ? {full} THEN data -> {full} ELSE {walk} END)")
    })
}

/// The text of a number as `numeric` reads it, exactly as the stored JSON spells the same value
/// (see jsonb.rs), so that comparisons agree with the reference.
fn numeric_text(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) if f.is_finite() => Some(if f.fract() == 0.0 && f.abs() >= 1e15 {
            format!("{f:.1}")
        } else {
            format!("{f}")
        }),
        _ => None,
    }
}

/// The exact decimal value of a float, for comparing against stored Decimals, which Python
/// compares with a float's exact binary value (`Decimal("0.1") != 0.1`).
fn exact_float_text(f: f64) -> String {
    let sci = format!("{f:.800e}");
    match sci.split_once('e') {
        Some((mantissa, exp)) => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exp}")
        }
        None => sci,
    }
}

/// Whether `a op b` holds under the reference's numeric comparison (NaN compares false).
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

/// A finite Python Decimal's text as `numeric` reads it, bounded so the cast cannot fail.
const DECIMAL_SHAPE: &str = "'^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{1,4})?$'";

/// SQL for the stored value at `v` being one of a set of constants: the two booleans or the
/// two infinities (`yes` for the first, `no` for the second).
fn one_of(v_is_first: &str, v_is_second: &str, first: bool, second: bool) -> String {
    match (first, second) {
        (true, true) => TRUE.into(),
        (false, false) => FALSE.into(),
        (true, false) => v_is_first.into(),
        (false, true) => v_is_second.into(),
    }
}

/// The stored value a leaf tests, in the SQL forms its operators need.
struct Subject {
    /// The JSONB value, NULL when missing.
    v: String,
    typ: String,
    /// The value is there and not null.
    present: String,
    is_str: String,
    /// The value as text.
    txt: String,
    /// A strict SQL/JSON path to the value (a top-level field only: a dotted name's walk has
    /// rules of its own, `path_expr`).
    path: Option<String>,
}

impl Subject {
    fn of(field: &str) -> Option<Subject> {
        let v = path_expr(field)?;
        let typ = format!("jsonb_typeof({v})");
        let simple = field != "id"
            && !field.contains('.')
            && !field.starts_with('$')
            && !field
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control());
        Some(Subject {
            present: format!("COALESCE({typ} <> 'null', false)"),
            is_str: format!("COALESCE({typ} = 'string', false)"),
            txt: format!("({v} #>> '{{}}')"),
            path: simple.then(|| format!("strict $.\"{field}\"")),
            typ,
            v,
        })
    }
}

struct Builder {
    params: Params<String>,
}

impl Builder {
    /// A placeholder for a bound value (numbered by `Translated::numbered`).
    fn param(&mut self, text: String) -> String {
        self.params.mark(text)
    }

    fn leaf(&mut self, field: &str, op: Op, x: &Value) -> Pred {
        // PostgreSQL refuses NUL in a bound text; stored text never holds one (the bridge
        // refuses it), so such a filter is left to the evaluator rather than sent.
        if holds_nul(x) {
            return Pred::unknown_where(TRUE);
        }
        let Some(s) = Subject::of(field) else {
            return Pred::unknown_where(TRUE);
        };
        let s = &s;
        let present = &s.present;
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
                let (txt, is_str) = (&s.txt, &s.is_str);
                let Value::Str(p) = x else {
                    return Pred::exact(FALSE);
                };
                let like = if p.is_ascii() {
                    // ILIKE folds ASCII only (C collation) where the reference folds Unicode:
                    // agreed on ASCII values, and any non-ASCII value is left undecided.
                    let hit = format!("{txt} ILIKE {} ESCAPE ''", self.param(p.clone()));
                    Pred::inexact(format!(
                        "(CASE WHEN NOT {is_str} THEN false \
                         WHEN octet_length({txt}) = char_length({txt}) THEN {hit} END)"
                    ))
                } else {
                    Pred::unknown_where(is_str)
                };
                if op == Op::Like {
                    like
                } else {
                    and2(Pred::exact(is_str), like.not())
                }
            }
            Op::Regex => match x {
                // PostgreSQL's regex dialect is not Python's: leave every string undecided.
                Value::Str(_) => Pred::unknown_where(&s.is_str),
                _ => Pred::exact(FALSE),
            },
            Op::StartsWith => match x {
                Value::Str(p) => Pred::exact(format!(
                    "COALESCE({} AND starts_with({}, {}), false)",
                    s.is_str,
                    s.txt,
                    self.param(p.clone())
                )),
                _ => Pred::exact(FALSE),
            },
        }
    }

    fn eq(&mut self, s: &Subject, x: &Value) -> Pred {
        match x {
            Value::Null => Pred::exact(FALSE),
            Value::Str(text) => {
                let json = serde_json::Value::String(text.clone()).to_string();
                Pred::exact(format!(
                    "COALESCE({} = {}::jsonb, false)",
                    s.v,
                    self.param(json)
                ))
            }
            _ => self
                .numeric(s, Op::Eq, x)
                .unwrap_or_else(|| Pred::unknown_where(&s.present)),
        }
    }

    /// `value op x` for a numeric `x`, by the stored value's JSON type: numbers compare as
    /// `numeric`, booleans as 0 and 1 (decided here, once), and the tagged Decimals and
    /// infinities by their text. Only a Decimal too odd to cast (NaN payloads, huge exponents)
    /// stays undecided. None when `x` is not a finite number.
    fn numeric(&mut self, s: &Subject, op: Op, x: &Value) -> Option<Pred> {
        let (v, typ) = (&s.v, &s.typ);
        let n = numeric_text(x)?;
        let xn = Num::of(x)?;
        let sql_op = match op {
            Op::Eq => "=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            _ => "<=",
        };
        let holds = |a: Num| num_holds(&a, op, &xn);
        let boolean = one_of(
            &format!("{v} = 'true'::jsonb"),
            &format!("{v} = 'false'::jsonb"),
            holds(Num::Int(1)),
            holds(Num::Int(0)),
        );
        let float_tag = format!("({v} ->> '$float')");
        let infinite = one_of(
            &format!("{float_tag} = 'inf'"),
            &format!("{float_tag} = '-inf'"),
            holds(Num::Float(f64::INFINITY)),
            holds(Num::Float(f64::NEG_INFINITY)),
        );
        let exact = match x {
            Value::Float(f) => exact_float_text(*f),
            _ => n.clone(),
        };
        let dec = format!("({v} ->> '$decimal')");
        // One jsonpath test decides a stored number with a single look-up of the field, where
        // the CASE below looks it up twice (its type, then its value): 100,000 rows counted in
        // 21 ms instead of 29. It is NULL for every other type, which the CASE then decides.
        let number = s.path.as_ref().map(|path| {
            let jp_op = if op == Op::Eq { "==" } else { sql_op };
            let test = self.param(format!("{path} {jp_op} {n}"));
            format!("data @@ {test}::jsonpath")
        });
        let p = self.param(n);
        let pe = self.param(exact);
        let (open, close) = match &number {
            Some(test) => (format!("COALESCE({test}, "), ")"),
            None => (String::new(), ""),
        };
        Some(Pred::inexact(format!(
            "{open}(CASE {typ} WHEN 'number' THEN ({v})::numeric {sql_op} {p}::numeric \
             WHEN 'boolean' THEN {boolean} \
             WHEN 'object' THEN (CASE \
               WHEN {v} ? '$float' AND {v} - '$float' = '{{}}'::jsonb THEN {infinite} \
               WHEN {v} ? '$decimal' AND {v} - '$decimal' = '{{}}'::jsonb THEN (CASE \
                 WHEN length({dec}) <= 1000 AND {dec} ~ {DECIMAL_SHAPE} \
                   THEN {dec}::numeric {sql_op} {pe}::numeric \
                 WHEN {dec} ~* '^[+-]?s?nan[0-9]*$' THEN false END) \
               ELSE false END) \
             ELSE false END){close}"
        )))
    }

    fn order(&mut self, s: &Subject, op: Op, x: &Value) -> Pred {
        let (v, is_str, txt) = (&s.v, &s.is_str, &s.txt);
        let sql_op = match op {
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            _ => "<=",
        };
        match x {
            Value::Str(text) => {
                let exact = format!(
                    "COALESCE({is_str} AND {txt} COLLATE \"C\" {sql_op} {} COLLATE \"C\", false)",
                    self.param(text.clone())
                );
                // A datetime or date compares with a str that parses as one.
                if iso::parse_datetime(text).is_some() || iso::parse_date(text).is_some() {
                    let tags = format!("COALESCE({v} ? '$datetime' OR {v} ? '$date', false)");
                    Pred::inexact(format!(
                        "(CASE WHEN {exact} THEN true WHEN {tags} THEN NULL ELSE false END)"
                    ))
                } else {
                    Pred::exact(exact)
                }
            }
            _ => self
                .numeric(s, op, x)
                .unwrap_or_else(|| Pred::unknown_where(&s.present)),
        }
    }

    fn cond(&mut self, c: &Cond) -> Pred {
        match c {
            Cond::Filter { field, op, value } => self.leaf(field, *op, value),
            Cond::And(items) => Pred::join(items.iter().map(|i| self.cond(i)).collect(), true),
            Cond::Or(items) => Pred::join(items.iter().map(|i| self.cond(i)).collect(), false),
            Cond::Not(inner) => self.cond(inner).not(),
        }
    }

    /// `data @> {...}` for the string equalities on top-level fields that every match must
    /// satisfy: implied by the predicate, so adding it changes nothing but lets the GIN index
    /// on `data` narrow the scan.
    fn containment(&mut self, c: &Cond) -> Option<String> {
        let leaves: Vec<&Cond> = match c {
            Cond::And(items) => items.iter().collect(),
            leaf => vec![leaf],
        };
        let mut obj = serde_json::Map::new();
        for leaf in leaves {
            if let Cond::Filter {
                field,
                op: Op::Eq,
                value: Value::Str(s),
            } = leaf
            {
                if s.contains('\0') {
                    continue;
                }
                let plain = field != "id" && !field.contains('.') && !field.starts_with('$');
                if plain && !obj.contains_key(field) {
                    obj.insert(field.clone(), serde_json::Value::String(s.clone()));
                }
            }
        }
        if obj.is_empty() {
            return None;
        }
        let text = serde_json::Value::Object(obj).to_string();
        Some(format!("data @> {}::jsonb", self.param(text)))
    }
}

/// The translation of a condition.
pub(crate) fn translate(c: &Cond) -> Translated {
    let mut b = Builder {
        params: Params::new(),
    };
    let pred = b.cond(c);
    let hint = if pred.sql() == FALSE {
        None
    } else {
        b.containment(c)
    };
    Translated {
        pred,
        hint,
        params: b.params,
    }
}

pub(crate) struct Translated {
    pub pred: Pred,
    hint: Option<String>,
    params: Params<String>,
}

impl Translated {
    /// The predicate and the index hint (true when there is none), their placeholders numbered
    /// `$1::text`, `$2::text`... in order of use, and the parameters they bind.
    pub(crate) fn numbered(&self, with_hint: bool) -> (String, String, Vec<String>) {
        let hint = self.hint.as_deref().filter(|_| with_hint).unwrap_or(TRUE);
        let (mut texts, params) = self.number(&[hint, self.pred.sql()]);
        let pred = texts.remove(1);
        (pred, texts.remove(0), params)
    }

    fn number(&self, texts: &[&str]) -> (Vec<String>, Vec<String>) {
        self.params.number(texts, |n| format!("${n}::text"))
    }
}

/// ORDER BY terms that reproduce the reference sort order (query.rs `sort_key_cmp`) for
/// sort values that are JSON numbers, booleans, strings, null or missing, arrays and plain
/// objects, with `complex`: true for a row whose sort values include a tagged scalar
/// (datetime, date, Decimal, bytes, special float), which only the reference orders. Sorting
/// by `complex DESC` first puts such rows first, so the first row tells whether the SQL order
/// holds for the whole result. Ties fall back to storage order, as the reference's stable
/// sort does. None when a sort path has no SQL reading.
pub(crate) struct SortSql {
    pub complex: String,
    pub terms: String,
}

pub(crate) fn sort_sql(sort: &[(String, bool)]) -> Option<SortSql> {
    let mut complex = Vec::with_capacity(sort.len());
    let mut terms = Vec::with_capacity(sort.len() * 4 + 1);
    for (field, descending) in sort {
        let v = path_expr(field)?;
        let typ = format!("jsonb_typeof({v})");
        let dir = if *descending { "DESC" } else { "ASC" };
        complex.push(format!(
            "COALESCE({typ} = 'object' AND {v} ?| \
             ARRAY['$datetime','$date','$decimal','$bytes','$float'], false)"
        ));
        // None last whatever the direction.
        terms.push(format!("COALESCE({typ}, 'null') = 'null'"));
        terms.push(format!(
            "(CASE {typ} WHEN 'number' THEN 0 WHEN 'boolean' THEN 0 WHEN 'string' THEN 2 \
             ELSE 6 END) {dir}"
        ));
        terms.push(format!(
            "(CASE {typ} WHEN 'number' THEN ({v})::numeric \
             WHEN 'boolean' THEN (CASE WHEN {v} = 'true'::jsonb THEN 1 ELSE 0 END) END) {dir}"
        ));
        terms.push(format!(
            "(CASE WHEN {typ} = 'string' THEN {v} #>> '{{}}' END) COLLATE \"C\" {dir}"
        ));
    }
    terms.push("seq".into());
    Some(SortSql {
        complex: format!("({})", complex.join(" OR ")),
        terms: terms.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pred::MAYBE;

    fn f(field: &str, op: Op, value: Value) -> Cond {
        Cond::Filter {
            field: field.into(),
            op,
            value,
        }
    }

    #[test]
    fn exactness() {
        let t = translate(&f("n", Op::Eq, Value::Str("x".into())));
        assert!(t.pred.is_exact());
        let (sql, hint, params) = t.numbered(true);
        assert_eq!(
            params,
            vec!["{\"n\":\"x\"}".to_string(), "\"x\"".to_string()]
        );
        assert!(hint.contains("data @> $1::text::jsonb"), "{hint}");
        assert!(sql.contains("$2::text") && !sql.contains('\u{1}'), "{sql}");
        let exact = |c: Cond| translate(&c).pred.is_exact();
        // Numbers are decided in SQL but for odd Decimals, so the predicate may be NULL.
        assert!(!exact(f("n", Op::Gt, Value::Int(1))));
        assert!(!exact(f("n", Op::Regex, Value::Str("a".into()))));
        assert!(exact(f("n", Op::Regex, Value::Int(1))));
        assert!(exact(f("a.b", Op::Exists, Value::Null)));
        assert!(exact(f("s", Op::Gt, Value::Str("abc".into()))));
        assert!(!exact(f("s", Op::Gt, Value::Str("2024-01-01".into()))));
        // Untranslatable paths are undecided for every row.
        for path in ["$date", "a.$map", "a.-1", "a.01", "a..b", "a. 1"] {
            let t = translate(&f(path, Op::Eq, Value::Str("x".into())));
            assert_eq!(t.pred.sql(), MAYBE, "{path}");
        }
        // NOT keeps an undecided row undecided.
        let t = translate(&Cond::Not(Box::new(f(
            "n",
            Op::Regex,
            Value::Str("a".into()),
        ))));
        assert!(!t.pred.is_exact() && t.pred.sql().starts_with("(NOT"));
        assert_eq!(translate(&Cond::Or(vec![])).pred, Pred::exact(FALSE));
        assert_eq!(translate(&Cond::And(vec![])).pred, Pred::exact(TRUE));
        // A dropped predicate takes its parameters (and the hint) with it.
        let t = translate(&Cond::And(vec![
            Cond::Or(vec![]),
            f("a", Op::Eq, Value::Str("p".into())),
        ]));
        assert_eq!(
            t.numbered(true),
            (FALSE.to_string(), TRUE.to_string(), vec![])
        );
        let t = translate(&Cond::Or(vec![
            f("a", Op::Eq, Value::Str("p".into())),
            f("b", Op::Eq, Value::Str("q".into())),
        ]));
        let (sql, hint, params) = t.numbered(true);
        assert_eq!(hint, TRUE, "an OR implies no containment");
        assert_eq!(params, vec!["\"p\"".to_string(), "\"q\"".to_string()]);
        assert!(sql.contains("$2::text"), "{sql}");
        // Booleans against a number are decided when the query is translated.
        let t = translate(&f("n", Op::Lt, Value::Int(10)));
        assert!(t.pred.sql().contains("WHEN 'boolean' THEN true"));
        let t = translate(&f("n", Op::Eq, Value::Int(1)));
        assert!(t
            .pred
            .sql()
            .contains("WHEN 'boolean' THEN (data -> E'n') = 'true'::jsonb"));
    }

    #[test]
    fn exact_float_text_is_the_binary_value() {
        assert_eq!(exact_float_text(0.5), "5e-1");
        assert_eq!(
            exact_float_text(0.1),
            "1.000000000000000055511151231257827021181583404541015625e-1"
        );
        assert_eq!(exact_float_text(-3.0), "-3e0");
    }

    #[test]
    fn sort_terms_cover_every_key() {
        let s = sort_sql(&[("a".into(), true), ("id".into(), false)]).unwrap();
        assert!(s.terms.ends_with("seq"), "{}", s.terms);
        assert_eq!(s.terms.matches("DESC").count(), 3);
        assert!(s.complex.contains(" OR "));
        assert!(sort_sql(&[("a.$map".into(), false)]).is_none());
    }

    #[test]
    fn numbers_spell_like_stored_json() {
        assert_eq!(numeric_text(&Value::Float(0.1)).as_deref(), Some("0.1"));
        assert_eq!(
            numeric_text(&Value::Float(1e-7)).as_deref(),
            Some("0.0000001")
        );
        assert_eq!(
            numeric_text(&Value::Float(2f64.powi(60))).as_deref(),
            Some("1152921504606846976.0")
        );
        assert_eq!(numeric_text(&Value::Bool(true)).as_deref(), Some("1"));
        assert_eq!(numeric_text(&Value::Float(f64::NAN)), None);
    }
}
