//! The dataknobs-data core: value model, tagged JSON codec, query evaluation and the local
//! stores (memory, file, SQLite). No Python here: `cargo test` runs it on its own.

pub mod cursor;
pub mod error;
pub mod query;
pub mod row;
pub mod store;
pub mod value;

pub use cursor::Cursor;
pub use error::{Error, Result};
pub use query::{Cond, Op, QuerySpec};
pub use row::Row;
pub use store::Store;
pub use value::{DateTimeValue, Map, Value};
