//! Deciding and shaping a query over rows that arrive as stored tagged JSON text, from an
//! engine that at most narrowed them (DuckDB, driven through its Python package). The rows come
//! in storage order, in as many pieces as the caller likes; the compiled query decides each one
//! from the fields it reads (`Reads::partial`), and only the rows returned are decoded whole.
//! The same steps the SQLite store takes over its own cursor.

use std::sync::Arc;

use crate::error::Result;
use crate::query::{CompiledQuery, QuerySpec};
use crate::row::{decode_stored, Reads, Row};

/// Filter, sort, offset, limit and projection of one query over text rows fed in storage order.
pub struct TextShaper {
    q: CompiledQuery,
    plan: Reads,
    /// Where the rows are stored, for errors: `duckdb table "records"`.
    source: Arc<str>,
    /// Sorted queries: each match's partial row (its sort keys) and its stored text.
    keys: Vec<Row>,
    texts: Vec<Option<(String, String, String)>>,
    /// Unsorted queries: matches still to skip for the offset, and how many were kept.
    skip: usize,
    kept: usize,
    /// Unsorted queries: rows kept and not yet taken.
    ready: Vec<Row>,
}

impl TextShaper {
    pub fn new(spec: &QuerySpec, source: impl Into<Arc<str>>) -> Result<TextShaper> {
        let q = CompiledQuery::new(spec)?;
        let sorted = q.has_sort();
        Ok(TextShaper {
            plan: Reads::new(spec, true, sorted),
            skip: q.offset(),
            q,
            source: source.into(),
            keys: Vec::new(),
            texts: Vec::new(),
            kept: 0,
            ready: Vec::new(),
        })
    }

    /// Whether more rows could change the result: false once an unsorted window is full (or
    /// the limit is 0), so the caller can stop reading.
    pub fn wants_more(&self) -> bool {
        match self.q.limit() {
            Some(0) => false,
            Some(limit) if !self.q.has_sort() => self.kept < limit,
            _ => true,
        }
    }

    /// Whether the row matches the condition (offset, limit and sort play no part).
    pub fn matches(&self, id: &str, data: &str, meta: &str) -> Result<bool> {
        if !self.q.has_cond() {
            return Ok(true);
        }
        let part = self.plan.partial(id, data, meta, &*self.source)?;
        self.q.matches(&part)
    }

    /// Offers the next row in storage order.
    pub fn push(&mut self, id: &str, data: &str, meta: &str) -> Result<()> {
        if !self.wants_more() {
            return Ok(());
        }
        if self.q.has_sort() {
            let part = self.plan.partial(id, data, meta, &*self.source)?;
            if self.q.matches(&part)? {
                self.keys.push(part);
                self.texts
                    .push(Some((id.to_string(), data.to_string(), meta.to_string())));
            }
            return Ok(());
        }
        if !self.matches(id, data, meta)? {
            return Ok(());
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(());
        }
        let row = self.decode(id, data, meta)?;
        self.ready.push(self.q.project_row(row));
        self.kept += 1;
        Ok(())
    }

    /// Unsorted queries: the rows kept since the last take, in storage order (a stream hands
    /// them on page by page). Sorted queries keep everything for `finish`.
    pub fn take_ready(&mut self) -> Vec<Row> {
        std::mem::take(&mut self.ready)
    }

    /// The rest of the result once every row was offered: for a sorted query the whole sorted
    /// window, decoded and projected; for an unsorted one what `take_ready` has not taken.
    pub fn finish(&mut self) -> Result<Vec<Row>> {
        if !self.q.has_sort() {
            return Ok(self.take_ready());
        }
        let keys = std::mem::take(&mut self.keys);
        let mut texts = std::mem::take(&mut self.texts);
        let refs: Vec<&Row> = keys.iter().collect();
        let mut out = Vec::new();
        for i in self.q.window(&refs) {
            if let Some((id, data, meta)) = texts.get_mut(i).and_then(Option::take) {
                let row = self.decode(&id, &data, &meta)?;
                out.push(self.q.project_row(row));
            }
        }
        Ok(out)
    }

    fn decode(&self, id: &str, data: &str, meta: &str) -> Result<Row> {
        Ok(Row {
            id: id.to_string(),
            data: decode_stored(id, "data", data, &*self.source)?,
            metadata: decode_stored(id, "metadata", meta, &*self.source)?,
        })
    }
}

/// Each stored row decoded whole, for reads by id (no query).
pub fn decode_text_row(id: &str, data: &str, meta: &str, source: &str) -> Result<Row> {
    Ok(Row {
        id: id.to_string(),
        data: decode_stored(id, "data", data, source)?,
        metadata: decode_stored(id, "metadata", meta, source)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::query::{Cond, Op};
    use crate::value::{Map, Value};

    fn text(i: i64, city: &str) -> (String, String, String) {
        let mut data = Map::new();
        data.insert("n".into(), Value::Int(i));
        data.insert("city".into(), Value::Str(city.into()));
        (format!("r{i}"), codec::encode_map(&data), "{}".to_string())
    }

    fn rows() -> Vec<(String, String, String)> {
        (0..20)
            .map(|i| text(i, if i % 3 == 0 { "a" } else { "b" }))
            .collect()
    }

    fn spec(sort: bool, offset: Option<usize>, limit: Option<usize>) -> QuerySpec {
        QuerySpec {
            cond: Some(Cond::Filter {
                field: "city".into(),
                op: Op::Eq,
                value: Value::Str("a".into()),
            }),
            sort: if sort {
                vec![("n".into(), true)]
            } else {
                vec![]
            },
            offset,
            limit,
            fields: None,
        }
    }

    fn run(spec: &QuerySpec, chunk: usize) -> Vec<String> {
        let mut s = TextShaper::new(spec, "test").unwrap();
        let mut out = Vec::new();
        for piece in rows().chunks(chunk) {
            for (id, data, meta) in piece {
                s.push(id, data, meta).unwrap();
            }
            out.extend(s.take_ready());
        }
        out.extend(s.finish().unwrap());
        out.into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn agrees_with_the_compiled_query_however_the_rows_are_cut() {
        let decoded: Vec<Row> = rows()
            .iter()
            .map(|(i, d, m)| decode_text_row(i, d, m, "test").unwrap())
            .collect();
        for sort in [false, true] {
            for (offset, limit) in [
                (None, None),
                (Some(2), Some(3)),
                (Some(9), None),
                (None, Some(0)),
            ] {
                let spec = spec(sort, offset, limit);
                let want: Vec<String> = CompiledQuery::new(&spec)
                    .unwrap()
                    .apply(&decoded)
                    .unwrap()
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                for chunk in [1, 4, 100] {
                    assert_eq!(run(&spec, chunk), want, "sort {sort} {offset:?} {limit:?}");
                }
            }
        }
    }

    #[test]
    fn an_unsorted_window_stops_asking_once_full() {
        let mut s = TextShaper::new(&spec(false, None, Some(2)), "test").unwrap();
        let mut offered = 0;
        for (id, data, meta) in rows() {
            if !s.wants_more() {
                break;
            }
            s.push(&id, &data, &meta).unwrap();
            offered += 1;
        }
        assert_eq!(offered, 4);
        let ids: Vec<String> = s.finish().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, vec!["r0", "r3"]);
    }

    #[test]
    fn bad_text_names_the_record_and_source() {
        let mut s = TextShaper::new(&spec(false, None, None), "duckdb table \"t\"").unwrap();
        let err = s.push("r9", "{not json", "{}").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("r9") && msg.contains("duckdb table"), "{msg}");
    }
}
