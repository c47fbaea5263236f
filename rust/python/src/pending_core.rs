//! TEMPORARY stand-ins for the file and SQLite stores, which have not landed in the core yet,
//! so the bridge compiles. Removed as soon as `dataknobs_core` provides them.

use std::sync::Arc;

use dataknobs_core::{Error, Result, Store};

fn unavailable<T>(what: &str) -> Result<T> {
    Err(Error::Other(format!(
        "{what} is not available in this build yet"
    )))
}

pub struct FileStore;

impl FileStore {
    pub fn open(_p: &str, _f: &str, _c: Option<&str>) -> Result<Arc<dyn Store>> {
        unavailable("FileStore")
    }
}

pub struct SqliteStore;

impl SqliteStore {
    pub fn open(
        _p: &str,
        _t: &str,
        _timeout: f64,
        _j: Option<&str>,
        _s: Option<&str>,
        _a: bool,
    ) -> Result<Arc<dyn Store>> {
        unavailable("SqliteStore")
    }
}
