//! The dataknobs-data core: value model, tagged JSON codec, query evaluation and the local
//! stores (memory, file, SQLite), and the PostgreSQL and S3 clients. No Python here: `cargo test`
//! runs it on its own.

pub mod aggregate;
pub mod arrow;
pub mod codec;
pub mod cursor;
pub mod error;
pub mod file;
pub mod iso;
pub mod memory;
pub mod num;
pub(crate) mod outcome;
pub mod postgres;
mod pred;
pub mod query;
pub mod row;
pub mod s3;
pub mod search;
pub mod shape;
pub mod sqlite;
pub mod store;
pub mod value;

#[cfg(test)]
mod testutil;

#[cfg(test)]
mod bench;

pub use aggregate::{AggRow, AggSpec, AggValue};
pub use cursor::Cursor;
pub use error::{Error, Result};
pub use file::FileStore;
pub use memory::MemoryStore;
pub use query::{CompiledQuery, Cond, Op, QuerySpec};
pub use row::Row;
pub use sqlite::SqliteStore;
pub use store::{Store, WriteOp};
pub use value::{DateTimeValue, Map, Value};
