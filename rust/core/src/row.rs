//! A stored record: its id, its data fields in order, and its metadata.

use std::sync::Arc;

use crate::codec;
use crate::error::{Error, Result};
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
