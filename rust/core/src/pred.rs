//! Three-valued SQL predicates, shared by the SQL backends (postgres/sql.rs, sqlite/sql.rs).
//!
//! A condition becomes one predicate in SQL's three-valued logic: true for rows that certainly
//! match, false for rows that certainly do not, NULL for rows the translation cannot decide.
//! SQL's AND, OR and NOT are Kleene's, under which an undecided part leaves a row undecided
//! only when its value could change the answer, so the unknowns compose soundly. A store keeps
//! the rows that are not false and applies the compiled query (the reference semantics) to
//! the undecided ones; a translation can only ever cost speed, never correctness.
//!
//! The SQL written here (`true`, `false`, `CAST(NULL AS boolean)`, `CASE`, `NOT`, `AND`, `OR`)
//! reads the same in PostgreSQL and SQLite; each dialect writes its own leaves.

use crate::value::Value;

/// A translated condition and whether the translation decides it (`exact`). PostgreSQL's
/// exact predicates are never NULL. SQLite's may still be NULL on rows holding a stored form its
/// JSON functions read differently (sqlite/sql.rs lists them); the store counts those rows
/// in the same statement and falls back when there are any, so `exact` there says "worth
/// letting the engine decide", not "certainly decided".
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pred {
    sql: String,
    exact: bool,
}

pub(crate) const TRUE: &str = "true";
pub(crate) const FALSE: &str = "false";
pub(crate) const MAYBE: &str = "CAST(NULL AS boolean)";
const MARK_OPEN: char = '\u{1}';
const MARK_CLOSE: char = '\u{2}';

impl Pred {
    pub(crate) fn exact(s: impl Into<String>) -> Pred {
        Pred {
            sql: s.into(),
            exact: true,
        }
    }

    /// Undecided where `possible` holds, false elsewhere.
    pub(crate) fn unknown_where(possible: &str) -> Pred {
        match possible {
            FALSE => Pred::exact(FALSE),
            TRUE => Pred {
                sql: MAYBE.into(),
                exact: false,
            },
            p => Pred {
                sql: format!("(CASE WHEN {p} THEN NULL ELSE false END)"),
                exact: false,
            },
        }
    }

    /// Three-valued SQL that may be NULL.
    pub(crate) fn inexact(sql: String) -> Pred {
        Pred { sql, exact: false }
    }

    pub(crate) fn is_exact(&self) -> bool {
        self.exact
    }

    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    pub(crate) fn not(self) -> Pred {
        let sql = match self.sql.as_str() {
            TRUE => FALSE.to_string(),
            FALSE => TRUE.to_string(),
            MAYBE => MAYBE.to_string(),
            other => format!("(NOT {other})"),
        };
        Pred {
            sql,
            exact: self.exact,
        }
    }

    pub(crate) fn join(items: Vec<Pred>, and: bool) -> Pred {
        let (unit, zero, word) = if and {
            (TRUE, FALSE, " AND ")
        } else {
            (FALSE, TRUE, " OR ")
        };
        if items.iter().any(|p| p.sql == zero) {
            return Pred::exact(zero);
        }
        let kept: Vec<Pred> = items.into_iter().filter(|p| p.sql != unit).collect();
        let exact = kept.iter().all(Pred::is_exact);
        let sql = match kept.len() {
            0 => unit.to_string(),
            1 => kept[0].sql.clone(),
            _ => {
                let parts: Vec<&str> = kept.iter().map(|p| p.sql.as_str()).collect();
                format!("({})", parts.join(word))
            }
        };
        Pred { sql, exact }
    }
}

pub(crate) fn and2(a: Pred, b: Pred) -> Pred {
    Pred::join(vec![a, b], true)
}

/// The bound values of a translation. Simplification may drop the predicate that uses one,
/// so a leaf writes a mark and the marks are numbered only once the final SQL is known
/// (`number`).
#[derive(Debug)]
pub(crate) struct Params<P> {
    items: Vec<P>,
}

impl<P: Clone> Params<P> {
    pub(crate) fn new() -> Params<P> {
        Params { items: Vec::new() }
    }

    /// A mark standing for `value` in the SQL.
    pub(crate) fn mark(&mut self, value: P) -> String {
        self.items.push(value);
        format!("{MARK_OPEN}{}{MARK_CLOSE}", self.items.len() - 1)
    }

    /// `texts` with their marks replaced by `placeholder(n)` (n = 1, 2, ... in order of first
    /// use across the texts, a value used twice keeping its number), and the values they bind.
    pub(crate) fn number(
        &self,
        texts: &[&str],
        placeholder: impl Fn(usize) -> String,
    ) -> (Vec<String>, Vec<P>) {
        let mut slot: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut used: Vec<P> = Vec::new();
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
                let n = match slot.get(&index) {
                    Some(n) => *n,
                    None => match self.items.get(index) {
                        Some(v) => {
                            used.push(v.clone());
                            slot.insert(index, used.len());
                            used.len()
                        }
                        // A mark this translation did not write: leave it as text (the
                        // statement then fails to prepare rather than binding a wrong value).
                        None => 0,
                    },
                };
                out.push_str(&placeholder(n));
                rest = &after[end + MARK_CLOSE.len_utf8()..];
            }
            out.push_str(rest);
            outs.push(out);
        }
        (outs, used)
    }
}

/// Whether a filter value is or holds a str with NUL.
pub(crate) fn holds_nul(v: &Value) -> bool {
    match v {
        Value::Str(s) => s.contains('\0'),
        Value::List(items) => items.iter().any(holds_nul),
        Value::Map(m) => m.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kleene_simplification() {
        let a = Pred::exact("a");
        let u = Pred::unknown_where("p");
        assert_eq!(
            Pred::join(vec![a.clone(), Pred::exact(FALSE)], true).sql(),
            FALSE
        );
        assert_eq!(
            Pred::join(vec![a.clone(), Pred::exact(TRUE)], false).sql(),
            TRUE
        );
        let both = Pred::join(vec![a.clone(), u.clone()], true);
        assert!(!both.is_exact() && both.sql().contains(" AND "));
        assert_eq!(Pred::exact(TRUE).not().sql(), FALSE);
        assert_eq!(Pred::unknown_where(TRUE).not().sql(), MAYBE);
        assert_eq!(Pred::unknown_where(FALSE), Pred::exact(FALSE));
    }

    #[test]
    fn marks_number_in_order_of_use() {
        let mut p: Params<i32> = Params::new();
        let a = p.mark(10);
        let b = p.mark(20);
        let c = p.mark(30);
        // `a` was dropped by simplification; `c` is used twice.
        let text = format!("x = {c} AND y = {b} AND z = {c}");
        let (out, used) = p.number(&[&text], |n| format!("?{n}"));
        assert_eq!(out, vec!["x = ?1 AND y = ?2 AND z = ?1".to_string()]);
        assert_eq!(used, vec![30, 20]);
        drop(a);
    }
}
