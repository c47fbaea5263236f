//! TEMPORARY stand-ins for core APIs that have not landed yet (memory/file/sqlite stores), so the bridge compiles and its plumbing can be tested.
//! Removed as soon as `dataknobs_core` provides the real ones.

use std::sync::Arc;

use dataknobs_core::{Cursor, Error, QuerySpec, Result, Row, Store};
use indexmap::IndexMap;
use std::sync::Mutex;

fn unavailable<T>(what: &str) -> Result<T> {
    Err(Error::Other(format!(
        "{what} is not available in this build yet"
    )))
}

pub struct MemoryStore {
    rows: Mutex<Option<IndexMap<String, Row>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore {
            rows: Mutex::new(Some(IndexMap::new())),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut IndexMap<String, Row>) -> Result<T>) -> Result<T> {
        let mut g = self
            .rows
            .lock()
            .map_err(|_| Error::Other("poisoned".into()))?;
        match g.as_mut() {
            Some(m) => f(m),
            None => Err(Error::Closed("MemoryStore".into())),
        }
    }

    pub fn len(&self) -> usize {
        self.with(|m| Ok(m.len())).unwrap_or(0)
    }

    pub fn export_json(&self) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
        unavailable("export_json")
    }

    pub fn import_json(&self, _i: Vec<String>, _d: Vec<String>, _m: Vec<String>) -> Result<()> {
        unavailable("import_json")
    }
}

impl Store for MemoryStore {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.with(|m| {
            let mut seen = std::collections::HashSet::new();
            for r in &rows {
                if m.contains_key(&r.id) || !seen.insert(r.id.clone()) {
                    return Err(Error::Duplicate(r.id.clone()));
                }
            }
            Ok(rows
                .into_iter()
                .map(|r| {
                    let id = r.id.clone();
                    m.insert(id.clone(), r);
                    id
                })
                .collect())
        })
    }
    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.with(|m| {
            Ok(rows
                .into_iter()
                .map(|r| {
                    if m.contains_key(&r.id) {
                        false
                    } else {
                        m.insert(r.id.clone(), r);
                        true
                    }
                })
                .collect())
        })
    }
    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.with(|m| {
            Ok(rows
                .into_iter()
                .map(|r| {
                    let id = r.id.clone();
                    m.insert(id.clone(), r);
                    id
                })
                .collect())
        })
    }
    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.with(|m| {
            Ok(rows
                .into_iter()
                .map(|r| match m.get_mut(&r.id) {
                    Some(slot) => {
                        *slot = r;
                        true
                    }
                    None => false,
                })
                .collect())
        })
    }
    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        self.with(|m| Ok(ids.iter().map(|i| m.get(i).cloned()).collect()))
    }
    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        self.with(|m| Ok(ids.iter().map(|i| m.contains_key(i)).collect()))
    }
    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        self.with(|m| Ok(ids.iter().map(|i| m.shift_remove(i).is_some()).collect()))
    }
    fn search(&self, _spec: &QuerySpec) -> Result<Vec<Row>> {
        self.with(|m| Ok(m.values().cloned().collect()))
    }
    fn count(&self, _spec: &QuerySpec) -> Result<usize> {
        self.with(|m| Ok(m.len()))
    }
    fn clear(&self) -> Result<usize> {
        self.with(|m| {
            let n = m.len();
            m.clear();
            Ok(n)
        })
    }
    fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor> {
        let rows = self.search(&spec)?;
        let (tx, cursor) = Cursor::channel(prefetch);
        std::thread::spawn(move || {
            for chunk in rows.chunks(batch_size.max(1)) {
                if tx.blocking_send(Ok(chunk.to_vec())).is_err() {
                    break;
                }
            }
        });
        Ok(cursor)
    }
    fn close(&self) -> Result<()> {
        if let Ok(mut g) = self.rows.lock() {
            *g = None;
        }
        Ok(())
    }
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
