//! The object layout: one object per record at `{prefix}{id}.json`, holding
//! `{"id", "data", "metadata", "created_at", "updated_at"}` in the tagged JSON of the other
//! backends. Objects the pure-Python package wrote (`{"fields": {name: {"value": ...}}, "id",
//! "metadata"}`) read as well.

use serde_json::Value as J;

use crate::codec;
use crate::error::{Error, Result};
use crate::row::Row;
use crate::value::Map;

/// Longest id taken, in UTF-8 bytes: S3 keys stop at 1,024, and the prefix needs room too.
pub const MAX_ID_BYTES: usize = 512;
const SUFFIX: &str = ".json";

/// Why `id` cannot be a key, or None when it can. A refused id never reaches the server: a key
/// may not leave the prefix (`/`, `..`) or hold what S3 tools mangle (control characters).
pub fn unsafe_id(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("an empty id")
    } else if id.len() > MAX_ID_BYTES {
        Some("longer than 512 bytes")
    } else if id.contains('/') {
        Some("holds '/'")
    } else if id.contains("..") {
        Some("holds '..'")
    } else if id.chars().any(char::is_control) {
        Some("holds a control character")
    } else {
        None
    }
}

/// The typed error for an id that cannot be stored (SerializationError: the record cannot be
/// written as an object).
pub fn id_error(id: &str, why: &str) -> Error {
    let shown: String = id.chars().take(80).collect();
    Error::serialization(
        "s3 key",
        format!("record id {shown:?} cannot be an S3 key: {why}"),
    )
}

pub fn key_for(prefix: &str, id: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + id.len() + SUFFIX.len());
    k.push_str(prefix);
    k.push_str(id);
    k.push_str(SUFFIX);
    k
}

/// The record id a listed key stores, or None for an object under the prefix that is not a
/// record of this store (another suffix, a deeper "folder", an id it would refuse).
pub fn id_of_key<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    let id = key.strip_prefix(prefix)?.strip_suffix(SUFFIX)?;
    unsafe_id(id).is_none().then_some(id)
}

/// Now, as the stored `created_at` / `updated_at` text (isoformat, UTC).
pub fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// The object body for `row`.
pub fn encode(row: &Row, created_at: &str, updated_at: &str) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"id\":");
    codec::push_json_str(&mut out, &row.id);
    out.push_str(",\"data\":");
    codec::push_map(&mut out, &row.data);
    out.push_str(",\"metadata\":");
    codec::push_map(&mut out, &row.metadata);
    out.push_str(",\"created_at\":");
    codec::push_json_str(&mut out, created_at);
    out.push_str(",\"updated_at\":");
    codec::push_json_str(&mut out, updated_at);
    out.push('}');
    out
}

/// The record in an object body; `id` is the one its key names. A failure is a
/// DataFormatError naming `source` (the object's s3:// address).
pub fn decode(id: &str, body: &[u8], source: &str) -> Result<Row> {
    let bad = |what: String| Error::data_format("json", format!("object {source}: {what}"));
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let (mut data, mut metadata, mut fields) = (None, None, None);
    codec::scan_object(text, |k, raw| match k {
        "data" => data = Some(raw),
        "metadata" => metadata = Some(raw),
        "fields" => fields = Some(raw),
        _ => {}
    })
    .map_err(|e| bad(crate::error::detail(&e)))?;
    let map = |what: &str, raw: &str| {
        codec::decode_map(raw).map_err(|e| bad(format!("{what}: {}", crate::error::detail(&e))))
    };
    let data = match (data, fields) {
        (Some(raw), _) => map("data", raw)?,
        (None, Some(raw)) => legacy_fields(raw).map_err(|e| bad(format!("fields: {e}")))?,
        (None, None) => return Err(bad("neither \"data\" nor \"fields\"".into())),
    };
    let metadata = match metadata {
        Some("null") | None => Map::new(),
        Some(raw) => map("metadata", raw)?,
    };
    Ok(Row {
        id: id.to_string(),
        data,
        metadata,
    })
}

/// 0.11.0's `Record.to_dict(flatten=False)` fields: `{name: {"name", "value", "type",
/// "metadata"}}`; the values are plain JSON.
fn legacy_fields(raw: &str) -> std::result::Result<Map, String> {
    let J::Object(fields) = serde_json::from_str::<J>(raw).map_err(|e| e.to_string())? else {
        return Err("expected an object".into());
    };
    let mut out = Map::with_capacity(fields.len());
    for (name, field) in fields {
        let value = match field {
            J::Object(mut f) => f.remove("value").unwrap_or(J::Null),
            other => other,
        };
        let value =
            codec::from_json(value).map_err(|e| format!("{name}: {}", crate::error::detail(&e)))?;
        out.insert(name, value);
    }
    Ok(out)
}
