//! The document layout, the one 0.11.0 writes: `_id` is the record id, `_source` is
//! `{"id", "data", "metadata", "created_at", "updated_at"}`. Values are the tagged JSON of
//! the other backends (plain JSON for None, bool, numbers, str, list, dict; one-key objects
//! for datetimes, dates, Decimals, bytes and non-finite floats), so everything round-trips;
//! documents 0.11.0 wrote (plain JSON, datetimes as ISO text) read as they are.

use crate::codec;
use crate::error::{Error, Result};
use crate::row::{decode_stored, Row};
use crate::value::Map;

/// Longest id taken, in UTF-8 bytes: the server's limit for `_id`.
pub const MAX_ID_BYTES: usize = 512;

/// Why `id` cannot be a document id, or None when it can. A refused id never reaches the
/// server.
pub fn unsafe_id(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("an empty id")
    } else if id.len() > MAX_ID_BYTES {
        Some("longer than 512 bytes")
    } else {
        None
    }
}

/// The typed error for an id that cannot be stored.
pub fn id_error(id: &str, why: &str) -> Error {
    let shown: String = id.chars().take(80).collect();
    Error::serialization(
        "elasticsearch _id",
        format!("record id {shown:?} cannot be a document id: {why}"),
    )
}

/// Every id must be usable before anything is written.
pub fn check_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
    for id in ids {
        if let Some(why) = unsafe_id(id) {
            return Err(id_error(id, why));
        }
    }
    Ok(())
}

/// Appends the `_source` of `row` to `out`, with its query terms when `terms` (dsl.rs).
pub fn push_source(out: &mut String, row: &Row, created_at: &str, updated_at: &str, terms: bool) {
    out.push_str("{\"id\":");
    codec::push_json_str(out, &row.id);
    out.push_str(",\"data\":");
    codec::push_map(out, &row.data);
    out.push_str(",\"metadata\":");
    codec::push_map(out, &row.metadata);
    out.push_str(",\"created_at\":");
    codec::push_json_str(out, created_at);
    out.push_str(",\"updated_at\":");
    codec::push_json_str(out, updated_at);
    if terms {
        super::dsl::push_terms(out, row);
    }
    out.push('}');
}

/// The record in a `_source` (raw JSON text); `id` is the hit's `_id`. A failure is a
/// DataFormatError naming the record and `source` (the index).
pub fn decode_source(id: &str, raw: &str, source: &str) -> Result<Row> {
    let (mut data, mut metadata) = (None, None);
    codec::scan_object(raw, |k, v| match k {
        "data" => data = Some(v),
        "metadata" => metadata = Some(v),
        _ => {}
    })
    .map_err(|e| {
        Error::data_format(
            "json",
            format!("record {id:?} in {source}: {}", crate::error::detail(&e)),
        )
    })?;
    let map = |what: &str, raw: Option<&str>| -> Result<Map> {
        match raw {
            None | Some("null") => Ok(Map::new()),
            Some(text) => decode_stored(id, what, text, source),
        }
    };
    Ok(Row {
        id: id.to_string(),
        data: map("data", data)?,
        metadata: map("metadata", metadata)?,
    })
}

/// The members of a hit or `_mget` doc object the store reads: `_id`, `_source` (raw),
/// `found`, `sort` (raw), `_seq_no`, `_primary_term`.
#[derive(Default)]
pub struct Hit<'a> {
    pub id: Option<String>,
    pub source: Option<&'a str>,
    pub found: Option<bool>,
    pub sort: Option<&'a str>,
    pub seq_no: Option<i64>,
    pub primary_term: Option<i64>,
}

/// Scans one hit without parsing its `_source` (which may nest deeply: it is decoded by the
/// bounded reader).
pub fn scan_hit(raw: &str) -> Result<Hit<'_>> {
    let mut hit = Hit::default();
    let mut bad_id = None;
    codec::scan_object(raw, |k, v| match k {
        "_id" => match serde_json::from_str::<String>(v) {
            Ok(s) => hit.id = Some(s),
            Err(e) => bad_id = Some(e.to_string()),
        },
        "_source" => hit.source = Some(v),
        "found" => hit.found = Some(v == "true"),
        "sort" => hit.sort = Some(v),
        "_seq_no" => hit.seq_no = v.parse().ok(),
        "_primary_term" => hit.primary_term = v.parse().ok(),
        _ => {}
    })?;
    if let Some(e) = bad_id {
        return Err(Error::data_format("json", format!("hit _id: {e}")));
    }
    Ok(hit)
}

/// The raw text of member `key` of a JSON object (None when absent).
pub fn member<'a>(raw: &'a str, key: &str) -> Result<Option<&'a str>> {
    let mut found = None;
    codec::scan_object(raw, |k, v| {
        if k == key {
            found = Some(v);
        }
    })?;
    Ok(found)
}

/// Now, as stored `created_at` / `updated_at` text (isoformat, UTC).
pub fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}
