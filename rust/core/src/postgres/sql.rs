//! Conditions translated to SQL over the JSONB columns.
//!
//! Each condition becomes a pair of SQL predicates: `lo`, true only for rows that certainly
//! match, and `hi`, true for every row that might. Where the translation is exact the two are
//! the same predicate. The store filters with `hi` and, unless the whole condition is exact,
//! applies the compiled query (the reference semantics) to what comes back, so a translation can
//! only ever cost speed, never correctness. `NOT` swaps the pair, which is why both are kept.
//!
//! Every leaf is wrapped in `COALESCE(.., false)` so that SQL's NULL never reaches a `NOT`.
//! Values are bound as text parameters and cast in SQL; identifiers never come from the query.

use crate::iso;
use crate::query::{Cond, Op};
use crate::value::Value;

/// A translated condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pred {
    Exact(String),
    Approx { lo: String, hi: String },
}

const TRUE: &str = "true";
const MARK_OPEN: char = '\u{1}';
const MARK_CLOSE: char = '\u{2}';
const FALSE: &str = "false";

impl Pred {
    fn exact(s: impl Into<String>) -> Pred {
        Pred::Exact(s.into())
    }

    fn approx(lo: impl Into<String>, hi: impl Into<String>) -> Pred {
        let (lo, hi) = (lo.into(), hi.into());
        if lo == hi {
            Pred::Exact(lo)
        } else {
            Pred::Approx { lo, hi }
        }
    }

    /// Nothing known: could be anything.
    fn unknown(maybe: impl Into<String>) -> Pred {
        Pred::approx(FALSE, maybe)
    }

    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, Pred::Exact(_))
    }

    pub(crate) fn lo(&self) -> &str {
        match self {
            Pred::Exact(s) => s,
            Pred::Approx { lo, .. } => lo,
        }
    }

    /// The filter that keeps every row that might match.
    pub(crate) fn hi(&self) -> &str {
        match self {
            Pred::Exact(s) => s,
            Pred::Approx { hi, .. } => hi,
        }
    }

    fn not(self) -> Pred {
        match self {
            Pred::Exact(s) => Pred::Exact(negate(&s)),
            Pred::Approx { lo, hi } => Pred::approx(negate(&hi), negate(&lo)),
        }
    }

    fn join(items: Vec<Pred>, and: bool) -> Pred {
        let (unit, zero, word) = if and {
            (TRUE, FALSE, " AND ")
        } else {
            (FALSE, TRUE, " OR ")
        };
        let all_exact = items.iter().all(Pred::is_exact);
        let combine = |parts: Vec<&str>| -> String {
            if parts.contains(&zero) {
                return zero.to_string();
            }
            let parts: Vec<&str> = parts.into_iter().filter(|p| *p != unit).collect();
            match parts.len() {
                0 => unit.to_string(),
                1 => parts[0].to_string(),
                _ => format!("({})", parts.join(word)),
            }
        };
        let lo = combine(items.iter().map(Pred::lo).collect());
        if all_exact {
            return Pred::Exact(lo);
        }
        let hi = combine(items.iter().map(Pred::hi).collect());
        Pred::approx(lo, hi)
    }
}

fn negate(s: &str) -> String {
    match s {
        TRUE => FALSE.to_string(),
        FALSE => TRUE.to_string(),
        other => format!("(NOT {other})"),
    }
}

fn and2(a: Pred, b: Pred) -> Pred {
    Pred::join(vec![a, b], true)
}

pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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
    if path.starts_with('$') {
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

struct Builder {
    params: Vec<String>,
}

impl Builder {
    /// A placeholder for a bound value. Simplification may drop the predicate that uses it,
    /// so placeholders are numbered only once the final predicate is known (`finish`).
    fn param(&mut self, text: String) -> String {
        self.params.push(text);
        format!("{MARK_OPEN}{}{MARK_CLOSE}", self.params.len() - 1)
    }

    fn leaf(&mut self, field: &str, op: Op, x: &Value) -> Pred {
        let Some(v) = path_expr(field) else {
            return Pred::unknown(TRUE);
        };
        let typ = format!("jsonb_typeof({v})");
        let present = format!("COALESCE({typ} <> 'null', false)");
        let is_str = format!("COALESCE({typ} = 'string', false)");
        let txt = format!("({v} #>> '{{}}')");
        // Tagged values a number can equal or be ordered against: Decimal, inf, nan.
        let num_tags = format!("COALESCE({v} ? '$decimal' OR {v} ? '$float', false)");
        match op {
            Op::Exists => Pred::exact(present),
            Op::NotExists => Pred::exact(negate(&present)),
            Op::Eq => self.eq(&v, &typ, &present, &num_tags, x),
            Op::Neq => and2(
                Pred::exact(present.clone()),
                self.eq(&v, &typ, &present, &num_tags, x).not(),
            ),
            Op::In | Op::NotIn => {
                let members = match x {
                    Value::List(items) => items.clone(),
                    other => vec![other.clone()],
                };
                let any = Pred::join(
                    members
                        .iter()
                        .map(|m| self.eq(&v, &typ, &present, &num_tags, m))
                        .collect(),
                    false,
                );
                if op == Op::In {
                    any
                } else {
                    and2(Pred::exact(present), any.not())
                }
            }
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                self.order(&v, &typ, &present, &is_str, &txt, &num_tags, op, x)
            }
            Op::Between | Op::NotBetween => {
                let within = match x {
                    Value::List(b) if b.len() == 2 => Some(and2(
                        self.order(&v, &typ, &present, &is_str, &txt, &num_tags, Op::Gte, &b[0]),
                        self.order(&v, &typ, &present, &is_str, &txt, &num_tags, Op::Lte, &b[1]),
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
                let like = if p.is_ascii() {
                    // ILIKE folds ASCII only (C collation) where the reference folds Unicode:
                    // agreed on ASCII values, and any non-ASCII value is left to the reference.
                    let ascii = format!("octet_length({txt}) = char_length({txt})");
                    let hit = format!("{txt} ILIKE {} ESCAPE ''", self.param(p.clone()));
                    Pred::approx(
                        format!("COALESCE({is_str} AND {ascii} AND {hit}, false)"),
                        format!("COALESCE({is_str} AND ({hit} OR NOT {ascii}), false)"),
                    )
                } else {
                    Pred::unknown(is_str.clone())
                };
                if op == Op::Like {
                    like
                } else {
                    and2(Pred::exact(is_str), like.not())
                }
            }
            Op::Regex => match x {
                // PostgreSQL's regex dialect is not Python's: leave every string to the reference.
                Value::Str(_) => Pred::unknown(is_str),
                _ => Pred::exact(FALSE),
            },
            Op::StartsWith => match x {
                Value::Str(p) => Pred::exact(format!(
                    "COALESCE({is_str} AND starts_with({txt}, {}), false)",
                    self.param(p.clone())
                )),
                _ => Pred::exact(FALSE),
            },
        }
    }

    fn eq(&mut self, v: &str, typ: &str, present: &str, num_tags: &str, x: &Value) -> Pred {
        match x {
            Value::Null => Pred::exact(FALSE),
            Value::Str(s) => {
                let json = serde_json::Value::String(s.clone()).to_string();
                Pred::exact(format!(
                    "COALESCE({v} = {}::jsonb, false)",
                    self.param(json)
                ))
            }
            _ => match numeric_text(x) {
                Some(n) => {
                    let cmp = self.num_cmp(v, typ, "=", n);
                    Pred::approx(cmp.clone(), format!("({cmp} OR {num_tags})"))
                }
                None => Pred::unknown(present.to_string()),
            },
        }
    }

    fn num_cmp(&mut self, v: &str, typ: &str, sql_op: &str, n: String) -> String {
        let p = self.param(n);
        format!(
            "COALESCE(CASE {typ} WHEN 'number' THEN ({v})::numeric {sql_op} {p}::numeric \
             WHEN 'boolean' THEN (CASE WHEN {v} = 'true'::jsonb THEN 1 ELSE 0 END) {sql_op} \
             {p}::numeric ELSE false END, false)"
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        v: &str,
        typ: &str,
        present: &str,
        is_str: &str,
        txt: &str,
        num_tags: &str,
        op: Op,
        x: &Value,
    ) -> Pred {
        let sql_op = match op {
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            _ => "<=",
        };
        match x {
            Value::Str(s) => {
                let exact = format!(
                    "COALESCE({is_str} AND {txt} COLLATE \"C\" {sql_op} {} COLLATE \"C\", false)",
                    self.param(s.clone())
                );
                // A datetime or date compares with a str that parses as one.
                if iso::parse_datetime(s).is_some() || iso::parse_date(s).is_some() {
                    let tags = format!("COALESCE({v} ? '$datetime' OR {v} ? '$date', false)");
                    Pred::approx(exact.clone(), format!("({exact} OR {tags})"))
                } else {
                    Pred::exact(exact)
                }
            }
            _ => match numeric_text(x) {
                Some(n) => {
                    let cmp = self.num_cmp(v, typ, sql_op, n);
                    Pred::approx(cmp.clone(), format!("({cmp} OR {num_tags})"))
                }
                None => Pred::unknown(present.to_string()),
            },
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
}

/// The translation of a condition.
pub(crate) fn translate(c: &Cond) -> Translated {
    let mut b = Builder { params: Vec::new() };
    let pred = b.cond(c);
    Translated {
        pred,
        params: b.params,
    }
}

pub(crate) struct Translated {
    pub pred: Pred,
    params: Vec<String>,
}

impl Translated {
    /// `hi` with its placeholders numbered `$1::text`, `$2::text`... in order of use, and the
    /// parameters it binds.
    pub(crate) fn hi_sql(&self) -> (String, Vec<String>) {
        let (mut texts, params) = self.number(&[self.pred.hi()]);
        (texts.remove(0), params)
    }

    /// `lo` and `hi` numbered alike (one `$n` per parameter), and the parameters they bind.
    pub(crate) fn pair_sql(&self) -> (String, String, Vec<String>) {
        let (mut texts, params) = self.number(&[self.pred.lo(), self.pred.hi()]);
        let hi = texts.remove(1);
        (texts.remove(0), hi, params)
    }

    fn number(&self, texts: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut slot: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut used: Vec<String> = Vec::new();
        let mut outs = Vec::with_capacity(texts.len());
        for text in texts {
            let mut out = String::with_capacity(text.len());
            let mut rest = *text;
            while let Some(start) = rest.find(MARK_OPEN) {
                out.push_str(&rest[..start]);
                let after = &rest[start + MARK_OPEN.len_utf8()..];
                let Some(end) = after.find(MARK_CLOSE) else {
                    break;
                };
                let index = after[..end].parse::<usize>().unwrap_or(usize::MAX);
                let n = *slot.entry(index).or_insert_with(|| {
                    used.push(self.params.get(index).cloned().unwrap_or_default());
                    used.len()
                });
                out.push_str(&format!("${n}::text"));
                rest = &after[end + MARK_CLOSE.len_utf8()..];
            }
            out.push_str(rest);
            outs.push(out);
        }
        (outs, used)
    }
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
        let t = translate(&f("n", Op::Eq, Value::Str("x".into())));
        assert!(t.pred.is_exact());
        let (sql, params) = t.hi_sql();
        assert_eq!(params, vec!["\"x\"".to_string()]);
        assert!(
            sql.contains("$1::text") && !sql.contains(MARK_OPEN),
            "{sql}"
        );
        let exact = |c: Cond| translate(&c).pred.is_exact();
        assert!(!exact(f("n", Op::Gt, Value::Int(1))));
        assert!(!exact(f("n", Op::Regex, Value::Str("a".into()))));
        assert!(exact(f("n", Op::Regex, Value::Int(1))));
        assert!(exact(f("a.b", Op::Exists, Value::Null)));
        assert!(exact(f("s", Op::Gt, Value::Str("abc".into()))));
        assert!(!exact(f("s", Op::Gt, Value::Str("2024-01-01".into()))));
        // Untranslatable paths keep every row.
        for path in ["$date", "a.$map", "a.-1", "a.01", "a..b", "a. 1"] {
            let t = translate(&f(path, Op::Eq, Value::Str("x".into())));
            assert_eq!(t.pred, Pred::unknown(TRUE), "{path}");
        }
        // NOT swaps the bounds.
        let t = translate(&Cond::Not(Box::new(f(
            "n",
            Op::Regex,
            Value::Str("a".into()),
        ))));
        assert!(
            matches!(t.pred, Pred::Approx { ref lo, ref hi } if lo.starts_with("(NOT") && hi == TRUE)
        );
        assert_eq!(translate(&Cond::Or(vec![])).pred, Pred::exact(FALSE));
        assert_eq!(translate(&Cond::And(vec![])).pred, Pred::exact(TRUE));
        // A dropped predicate takes its parameter with it.
        let t = translate(&Cond::And(vec![
            Cond::Or(vec![]),
            f("a", Op::Eq, Value::Bool(false)),
        ]));
        assert_eq!(t.hi_sql(), (FALSE.to_string(), vec![]));
        let t = translate(&Cond::Or(vec![
            f("a", Op::Eq, Value::Str("p".into())),
            f("b", Op::Eq, Value::Str("q".into())),
        ]));
        let (sql, params) = t.hi_sql();
        assert_eq!(params, vec!["\"p\"".to_string(), "\"q\"".to_string()]);
        assert!(sql.contains("$2::text"), "{sql}");
        // lo and hi share their numbering.
        let t = translate(&Cond::And(vec![
            f("a", Op::Eq, Value::Str("p".into())),
            f("b", Op::Gt, Value::Int(3)),
        ]));
        let (lo, hi, params) = t.pair_sql();
        assert_eq!(params.len(), 2);
        assert!(lo.contains("$1::text") && lo.contains("$2::text"), "{lo}");
        assert!(hi.contains("$1::text") && hi.contains("$2::text"), "{hi}");
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
