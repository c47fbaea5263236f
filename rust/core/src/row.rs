//! A stored record: its id, its data fields in order, and its metadata.

use crate::value::Map;

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub data: Map,
    pub metadata: Map,
}
