//! A stored record: its id, its data fields in order, and its metadata.

use std::sync::Arc;

use crate::codec;
use crate::error::{detail, Error, Result};
use crate::query::{Cond, QuerySpec};
use crate::value::Map;

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub data: Map,
    pub metadata: Map,
}

/// A row as stored: its data and metadata still tagged JSON text. Whoever takes it decodes the
/// text (the Python bridge makes Python objects of it directly, without a [`Row`] between).
#[derive(Debug, Clone, PartialEq)]
pub struct TextRow {
    pub id: String,
    pub data: String,
    pub metadata: String,
    /// Where the row is stored, for errors: `table "public"."records"`.
    pub source: Arc<str>,
}

impl TextRow {
    /// The decoded row; a failure names the record and where it is stored.
    pub fn decode(&self) -> Result<Row> {
        Ok(Row {
            id: self.id.clone(),
            data: decode_stored(&self.id, "data", &self.data, &*self.source)?,
            metadata: decode_stored(&self.id, "metadata", &self.metadata, &*self.source)?,
        })
    }
}

/// Decodes a stored map's tagged JSON text, naming the record (`what`: its data or metadata)
/// and `source` on failure.
pub fn decode_stored(
    id: &str,
    what: &str,
    text: &str,
    source: impl std::fmt::Display,
) -> Result<Map> {
    codec::decode_map(text).map_err(|e| {
        let detail = match &e {
            Error::DataFormat { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Error::data_format(
            "json",
            format!("record {id:?} in {source}: {what}: {detail}"),
        )
    })
}

/// The fields of a stored row a query reads, so a row can be tested (and sorted) after
/// decoding only those.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Top-level data keys: each path itself (an exact field name wins) and its first segment.
    keys: Vec<String>,
    /// A `metadata.*` path may walk the record metadata.
    pub(crate) metadata: bool,
    id: bool,
}

impl Reads {
    /// What the condition reads (`with_cond`) and the sort keys (`with_sort`) read.
    pub(crate) fn new(spec: &QuerySpec, with_cond: bool, with_sort: bool) -> Reads {
        fn walk(c: &Cond, out: &mut Vec<String>) {
            match c {
                Cond::Filter { field, .. } => out.push(field.clone()),
                Cond::And(items) | Cond::Or(items) => items.iter().for_each(|c| walk(c, out)),
                Cond::Not(inner) => walk(inner, out),
            }
        }
        let mut paths = Vec::new();
        if let Some(c) = spec.cond.as_ref().filter(|_| with_cond) {
            walk(c, &mut paths);
        }
        if with_sort {
            paths.extend(spec.sort.iter().map(|(f, _)| f.clone()));
        }
        let mut plan = Reads::default();
        for p in paths {
            if p == "id" {
                plan.id = true;
                continue;
            }
            if let Some((first, _)) = p.split_once('.') {
                plan.metadata |= first == "metadata";
                if !plan.keys.iter().any(|k| k == first) {
                    plan.keys.push(first.to_string());
                }
            }
            if !plan.keys.contains(&p) {
                plan.keys.push(p);
            }
        }
        plan
    }

    /// The part of a stored row these reads need: the planned data keys (decoded), the
    /// metadata when a path may walk it, and the id when the query reads it. Filtering and
    /// sorting this row give the same answers as on the whole row. Errors name the record and
    /// `source`.
    pub(crate) fn partial(
        &self,
        id: &str,
        data: &str,
        meta: &str,
        source: impl std::fmt::Display,
    ) -> Result<Row> {
        let name = |what: &str, e: Error| {
            Error::data_format(
                "json",
                format!("record {id:?} in {source}: {what}: {}", detail(&e)),
            )
        };
        let mut found: Vec<(usize, &str)> = Vec::with_capacity(self.keys.len());
        let mut first_is_tag = false;
        let n = codec::scan_object(data, |k, raw| {
            if found.is_empty() && !first_is_tag {
                first_is_tag = codec::is_tag_key(k);
            }
            if let Some(i) = self.keys.iter().position(|w| w == k) {
                found.push((i, raw));
            }
        })
        .map_err(|e| name("data", e))?;
        let data = if n == 1 && first_is_tag {
            // A lone tag key is an escaped mapping (or an error): decode it as a whole.
            codec::decode_map(data).map_err(|e| name("data", e))?
        } else {
            let mut m = Map::with_capacity(found.len());
            for (i, raw) in found {
                let v = codec::decode_raw(raw).map_err(|e| name("data", e))?;
                // A repeated key keeps the last value, as a full decode does.
                m.insert(self.keys[i].clone(), v);
            }
            m
        };
        let metadata = if self.metadata {
            codec::decode_map(meta).map_err(|e| name("metadata", e))?
        } else {
            Map::new()
        };
        Ok(Row {
            id: if self.id {
                id.to_string()
            } else {
                String::new()
            },
            data,
            metadata,
        })
    }
}
