//! The store classes and the stream cursor exposed to Python (docs/internals.md §2).
//!
//! Every verb has a blocking form (arguments converted under the GIL, store work with the GIL
//! released, result converted under the GIL) and an `*_async` twin that runs the same closure
//! on the tokio blocking pool and resolves on the caller's event loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dataknobs_core::arrow::write_batches;
use dataknobs_core::row::TextRow;
use dataknobs_core::sqlite::EncodedRow;
use dataknobs_core::{Error, Row, Store};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::aggregate::{agg_from_py, AggResult};
use crate::convert::{
    encoded_rows_from_py, ids_from_py, rows_from_py, spec_from_py, write_ops_from_py, ToPy,
    ToPython,
};
use crate::errors::{core_to_py, BridgeError, BridgeResult};
use crate::runtime::{check_pid, run_detached, runtime, spawn_blocking_awaitable};

/// A store plus the process it belongs to: a store opened before a fork must not be touched by
/// the child (its SQLite handle, file locks and runtime threads all belong to the parent).
struct StoreHandle {
    store: Arc<dyn Store>,
    pid: u32,
    /// Whether small calls run with the GIL held (`quick`).
    inline_small: bool,
}

/// Ids per call up to which the memory store's lookups keep the GIL (`StoreHandle::quick`).
const INLINE_IDS: usize = 64;

impl StoreHandle {
    fn new(store: Arc<dyn Store>) -> Self {
        StoreHandle {
            store,
            pid: std::process::id(),
            inline_small: false,
        }
    }

    /// A handle whose small calls (`quick`) keep the GIL: for a store whose every operation
    /// is in process memory, where releasing and taking back the GIL costs more than a lookup.
    fn inline_small(store: Arc<dyn Store>) -> Self {
        StoreHandle {
            inline_small: true,
            ..StoreHandle::new(store)
        }
    }

    /// `sync`, but with the GIL held when `small` and the store is an in-memory one: nothing
    /// under the store's lock takes the GIL, so holding it while waiting for the lock can
    /// stall other Python threads for the length of a write, never deadlock.
    fn quick<'py, T, F>(&self, py: Python<'py>, small: bool, job: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Arc<dyn Store>) -> BridgeResult<T> + Send,
        T: ToPython + Send,
    {
        if !(small && self.inline_small) {
            return self.sync(py, job);
        }
        self.check(py)?;
        let store = Arc::clone(&self.store);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || job(store)))
            .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
            .map_err(|e| e.into_pyerr(py))?
            .to_python(py)
    }

    fn check(&self, py: Python<'_>) -> PyResult<()> {
        check_pid(self.pid).map_err(|e| e.into_pyerr(py))
    }

    fn sync<'py, T, F>(&self, py: Python<'py>, job: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Arc<dyn Store>) -> BridgeResult<T> + Send,
        T: ToPython + Send,
    {
        self.check(py)?;
        let store = Arc::clone(&self.store);
        run_detached(py, move || job(store))?.to_python(py)
    }

    fn spawn<'py, T, F>(&self, py: Python<'py>, job: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Arc<dyn Store>) -> BridgeResult<T> + Send + 'static,
        T: ToPython + Send + 'static,
    {
        self.check(py)?;
        let store = Arc::clone(&self.store);
        spawn_blocking_awaitable(py, move || job(store))
    }
}

fn open_stream(
    store: Arc<dyn Store>,
    spec: dataknobs_core::QuerySpec,
    batch_size: usize,
    prefetch: usize,
) -> BridgeResult<Cursor> {
    // The producer may spawn onto tokio, so it needs the runtime's context.
    let rt = runtime()?;
    let _entered = rt.enter();
    let cursor = store.stream(spec, batch_size, prefetch)?;
    Ok(Cursor::new(Pages::Rows(cursor)))
}

pub(crate) fn check_batch_size(batch_size: usize) -> PyResult<()> {
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size must be at least 1"));
    }
    Ok(())
}

/// A write batch as converted from Python: rows of values, or tagged JSON text for the SQLite
/// store, which only keeps text (encoding straight from the Python objects skips building and
/// walking a `Value` tree for every row).
enum Batch {
    Rows(Vec<Row>),
    Sqlite(Arc<dataknobs_core::sqlite::SqliteStore>, Vec<EncodedRow>),
}

impl Batch {
    fn create_batch(self, s: Arc<dyn Store>) -> BridgeResult<Vec<String>> {
        Ok(match self {
            Batch::Rows(rows) => s.create_batch(rows)?,
            Batch::Sqlite(store, rows) => store.create_batch_encoded(rows)?,
        })
    }

    fn create_missing(self, s: Arc<dyn Store>) -> BridgeResult<Vec<bool>> {
        Ok(match self {
            Batch::Rows(rows) => s.create_missing(rows)?,
            Batch::Sqlite(store, rows) => store.create_missing_encoded(rows)?,
        })
    }

    fn upsert_batch(self, s: Arc<dyn Store>) -> BridgeResult<Vec<String>> {
        Ok(match self {
            Batch::Rows(rows) => s.upsert_batch(rows)?,
            Batch::Sqlite(store, rows) => store.upsert_batch_encoded(rows)?,
        })
    }

    fn update_batch(self, s: Arc<dyn Store>) -> BridgeResult<Vec<bool>> {
        Ok(match self {
            Batch::Rows(rows) => s.update_batch(rows)?,
            Batch::Sqlite(store, rows) => store.update_batch_encoded(rows)?,
        })
    }
}

/// How a store class takes a write batch from Python: as rows unless it says otherwise.
trait TakesBatch {
    fn batch(&self, rows: &Bound<'_, PyAny>) -> PyResult<Batch> {
        Ok(Batch::Rows(rows_from_py(rows)?))
    }
}

impl TakesBatch for MemoryStore {}

/// How a store class opens a stream: the core store's cursor unless it says otherwise.
trait OpensStream {
    fn open(
        &self,
        store: Arc<dyn Store>,
        spec: dataknobs_core::QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> BridgeResult<Cursor> {
        open_stream(store, spec, batch_size, prefetch)
    }
}

impl OpensStream for MemoryStore {
    /// The matches at opening, paged in place (`Pages::Local`): the same snapshot the core's
    /// producer thread would send, without the thread and the channel.
    fn open(
        &self,
        _store: Arc<dyn Store>,
        spec: dataknobs_core::QuerySpec,
        batch_size: usize,
        _prefetch: usize,
    ) -> BridgeResult<Cursor> {
        let rows = self.concrete.search(&spec)?;
        Ok(Cursor::new(Pages::Local {
            rows: rows.into_iter(),
            batch_size: batch_size.max(1),
        }))
    }
}

impl OpensStream for FileStore {}

impl OpensStream for SqliteStore {}

impl TakesBatch for FileStore {}

impl TakesBatch for SqliteStore {
    fn batch(&self, rows: &Bound<'_, PyAny>) -> PyResult<Batch> {
        Ok(Batch::Sqlite(
            Arc::clone(&self.concrete),
            encoded_rows_from_py(rows)?,
        ))
    }
}

/// The shared verbs, spelled out once for each class: `#[pymethods]` allows one impl block per
/// class, so the class-specific methods are passed in and emitted alongside.
macro_rules! store_class {
    ($cls:ident { $($extra:tt)* }) => {
        #[pymethods]
        impl $cls {
            $($extra)*

            fn create_batch<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.sync(py, move |s| batch.create_batch(s))
            }

            fn create_batch_async<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.spawn(py, move |s| batch.create_batch(s))
            }

            /// One `create_batch` per batch of an Arrow stream (each all or nothing), each
            /// built as it is stored (`dataknobs_core::arrow::write_batches`).
            #[pyo3(signature = (data, id_column="id"))]
            fn create_from_arrow<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>, id_column: &str) -> PyResult<Bound<'py, PyAny>> {
                let batches = crate::arrow_export::arrow_rows_from_py(data, id_column)?;
                self.handle.sync(py, move |s| Ok(write_batches(batches, |rows| s.create_batch(rows))?))
            }

            #[pyo3(signature = (data, id_column="id"))]
            fn create_from_arrow_async<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>, id_column: &str) -> PyResult<Bound<'py, PyAny>> {
                let batches = crate::arrow_export::arrow_rows_from_py(data, id_column)?;
                self.handle.spawn(py, move |s| Ok(write_batches(batches, |rows| s.create_batch(rows))?))
            }

            fn create_missing<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.sync(py, move |s| batch.create_missing(s))
            }

            fn create_missing_async<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.spawn(py, move |s| batch.create_missing(s))
            }

            fn upsert_batch<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.sync(py, move |s| batch.upsert_batch(s))
            }

            fn upsert_batch_async<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.spawn(py, move |s| batch.upsert_batch(s))
            }

            fn update_batch<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.sync(py, move |s| batch.update_batch(s))
            }

            fn update_batch_async<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let batch = self.batch(rows)?;
                self.handle.spawn(py, move |s| batch.update_batch(s))
            }

            fn read_batch<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ids = ids_from_py(ids)?;
                self.handle.quick(py, ids.len() <= INLINE_IDS, move |s| Ok(s.read_batch(&ids)?))
            }

            fn read_batch_async<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ids = ids_from_py(ids)?;
                self.handle.spawn(py, move |s| Ok(s.read_batch(&ids)?))
            }

            fn exists_batch<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ids = ids_from_py(ids)?;
                self.handle.quick(py, ids.len() <= INLINE_IDS, move |s| Ok(s.exists_batch(&ids)?))
            }

            fn exists_batch_async<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ids = ids_from_py(ids)?;
                self.handle.spawn(py, move |s| Ok(s.exists_batch(&ids)?))
            }

            /// A transaction's batches in one call (`[(kind, rows_or_ids), ...]`): all or
            /// nothing where `is_transactional()`, else each batch on its own.
            fn apply<'py>(&self, py: Python<'py>, ops: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ops = write_ops_from_py(ops)?;
                self.handle.sync(py, move |s| Ok(s.apply(ops)?))
            }

            fn apply_async<'py>(&self, py: Python<'py>, ops: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ops = write_ops_from_py(ops)?;
                self.handle.spawn(py, move |s| Ok(s.apply(ops)?))
            }

            fn is_transactional(&self) -> bool {
                self.handle.store.is_transactional()
            }

            fn delete_batch<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ids = ids_from_py(ids)?;
                self.handle.sync(py, move |s| Ok(s.delete_batch(&ids)?))
            }

            fn delete_batch_async<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let ids = ids_from_py(ids)?;
                self.handle.spawn(py, move |s| Ok(s.delete_batch(&ids)?))
            }

            #[pyo3(signature = (spec=None))]
            fn search<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
                let spec = spec_from_py(spec)?;
                self.handle.sync(py, move |s| Ok(s.search(&spec)?))
            }

            #[pyo3(signature = (spec=None))]
            fn search_async<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
                let spec = spec_from_py(spec)?;
                self.handle.spawn(py, move |s| Ok(s.search(&spec)?))
            }

            #[pyo3(signature = (spec=None))]
            fn count<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
                let spec = spec_from_py(spec)?;
                // Counting everything is a length, whatever the store holds.
                let everything = spec.cond.is_none();
                self.handle.quick(py, everything, move |s| Ok(s.count(&spec)?))
            }

            #[pyo3(signature = (spec=None))]
            fn count_async<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
                let spec = spec_from_py(spec)?;
                self.handle.spawn(py, move |s| Ok(s.count(&spec)?))
            }

            /// The groups and metrics of the matching rows (docs/aggregations.md).
            #[pyo3(signature = (spec, agg))]
            fn aggregate<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>, agg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let spec = spec_from_py(spec)?;
                let agg = agg_from_py(agg)?;
                self.handle.sync(py, move |s| Ok(AggResult::new(&agg, s.aggregate(&spec, &agg)?)))
            }

            #[pyo3(signature = (spec, agg))]
            fn aggregate_async<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>, agg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let spec = spec_from_py(spec)?;
                let agg = agg_from_py(agg)?;
                self.handle.spawn(py, move |s| Ok(AggResult::new(&agg, s.aggregate(&spec, &agg)?)))
            }

            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                self.handle.sync(py, |s| Ok(s.clear()?))
            }

            fn clear_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                self.handle.spawn(py, |s| Ok(s.clear()?))
            }

            #[pyo3(signature = (spec=None, batch_size=1000, prefetch=2))]
            fn stream<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>, batch_size: usize, prefetch: usize) -> PyResult<Bound<'py, PyAny>> {
                check_batch_size(batch_size)?;
                let spec = spec_from_py(spec)?;
                self.handle.sync(py, move |s| self.open(s, spec, batch_size, prefetch))
            }

            #[pyo3(signature = (spec=None, batch_size=1000, prefetch=2))]
            fn stream_async<'py>(&self, py: Python<'py>, spec: Option<&Bound<'py, PyAny>>, batch_size: usize, prefetch: usize) -> PyResult<Bound<'py, PyAny>> {
                check_batch_size(batch_size)?;
                let spec = spec_from_py(spec)?;
                self.handle.spawn(py, move |s| open_stream(s, spec, batch_size, prefetch))
            }

            fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                self.handle.sync(py, |s| Ok(s.close()?))
            }

            fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                self.handle.spawn(py, |s| Ok(s.close()?))
            }
        }
    };
}

fn path_text(path: &std::path::Path) -> PyResult<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| PyValueError::new_err(format!("path is not valid UTF-8: {path:?}")))
}

/// Records held in process memory; the reference for query semantics.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct MemoryStore {
    handle: StoreHandle,
    concrete: Arc<dataknobs_core::memory::MemoryStore>,
}

store_class!(MemoryStore {
    #[new]
    fn new() -> Self {
        let concrete = Arc::new(dataknobs_core::memory::MemoryStore::new());
        MemoryStore {
            handle: StoreHandle::inline_small(concrete.clone()),
            concrete,
        }
    }

    /// `(ids, data_json, metadata_json)`: three parallel lists of tagged JSON text.
    fn export_json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let store = Arc::clone(&self.concrete);
        self.handle.sync(py, move |_| Ok(store.export_json()?))
    }

    fn import_json<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        data_json: Vec<String>,
        metadata_json: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = Arc::clone(&self.concrete);
        self.handle
            .sync(py, move |_| Ok(store.import_json(ids, data_json, metadata_json)?))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.handle.check(py)?;
        self.concrete.len().map_err(|e| core_to_py(py, e))
    }
});

/// One JSON, JSON Lines, CSV or TSV file, optionally gzip-compressed.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct FileStore {
    handle: StoreHandle,
}

store_class!(FileStore {
    #[new]
    #[pyo3(signature = (path, format, compression=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        format: String,
        compression: Option<String>,
    ) -> PyResult<Self> {
        let path = path_text(&path)?;
        let store = run_detached(py, move || {
            Ok(dataknobs_core::file::FileStore::open(
                &path,
                &format,
                compression.as_deref(),
            )?)
        })?;
        Ok(FileStore {
            handle: StoreHandle::new(Arc::new(store)),
        })
    }
});

/// A SQLite table `id, data, metadata, created_at, updated_at`.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct SqliteStore {
    handle: StoreHandle,
    concrete: Arc<dataknobs_core::sqlite::SqliteStore>,
}

store_class!(SqliteStore {
    #[new]
    #[pyo3(signature = (
        path,
        table="records".to_string(),
        timeout=5.0,
        journal_mode=None,
        synchronous=None,
        auto_create_table=true,
    ))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        table: String,
        timeout: f64,
        journal_mode: Option<String>,
        synchronous: Option<String>,
        auto_create_table: bool,
    ) -> PyResult<Self> {
        let path = path_text(&path)?;
        let store = run_detached(py, move || {
            Ok(dataknobs_core::sqlite::SqliteStore::open(
                &path,
                &table,
                timeout,
                journal_mode.as_deref(),
                synchronous.as_deref(),
                auto_create_table,
            )?)
        })?;
        let concrete = Arc::new(store);
        Ok(SqliteStore {
            handle: StoreHandle::new(concrete.clone()),
            concrete,
        })
    }
});

pub(crate) type SharedCursor = Arc<tokio::sync::Mutex<Option<Pages>>>;

/// A core cursor of either kind of page, or rows already in this process.
pub(crate) enum Pages {
    Rows(dataknobs_core::Cursor),
    Text(dataknobs_core::Cursor<TextRow>),
    /// The memory store's matches, taken when the stream opened (as its producer thread
    /// would), cut into pages as they are read: no thread, channel or runtime hop per page.
    Local {
        rows: std::vec::IntoIter<Row>,
        batch_size: usize,
    },
}

/// A page of either kind, converted to Python rows the same way.
pub(crate) enum PageRows {
    Rows(Vec<Row>),
    Text(Vec<TextRow>),
}

impl Pages {
    async fn next_page(&mut self) -> dataknobs_core::Result<Option<PageRows>> {
        Ok(match self {
            Pages::Rows(c) => c.next_page().await?.map(PageRows::Rows),
            Pages::Text(c) => c.next_page().await?.map(PageRows::Text),
            Pages::Local { .. } => self.next_local().map(PageRows::Rows),
        })
    }

    /// The next page of a `Local` cursor (None at its end, and for the other kinds).
    fn next_local(&mut self) -> Option<Vec<Row>> {
        match self {
            Pages::Local { rows, batch_size } => {
                let page: Vec<Row> = rows.by_ref().take(*batch_size).collect();
                (!page.is_empty()).then_some(page)
            }
            _ => None,
        }
    }

    pub(crate) fn close(&mut self) {
        match self {
            Pages::Rows(c) => c.close(),
            Pages::Text(c) => c.close(),
            Pages::Local { rows, .. } => *rows = Vec::new().into_iter(),
        }
    }
}

impl ToPython for PageRows {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            PageRows::Rows(rows) => rows.to_python(py),
            PageRows::Text(rows) => rows.to_python(py),
        }
    }
}

/// Pages of a stream. The core cursor sits behind an async mutex so a blocking `next_page`, an
/// awaited one and `close` from another thread never race on the channel.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct Cursor {
    inner: SharedCursor,
    /// What `take_records` fetched of a page and has not handed out yet.
    pending: std::sync::Mutex<Option<Pending>>,
}

/// The rest of a page, still as Rust rows.
enum Pending {
    Rows(std::vec::IntoIter<Row>),
    Text(std::vec::IntoIter<TextRow>),
}

impl Pending {
    fn of(page: PageRows) -> Pending {
        match page {
            PageRows::Rows(rows) => Pending::Rows(rows.into_iter()),
            PageRows::Text(rows) => Pending::Text(rows.into_iter()),
        }
    }

    fn into_page(self) -> Option<PageRows> {
        let page = match self {
            Pending::Rows(rows) => PageRows::Rows(rows.collect()),
            Pending::Text(rows) => PageRows::Text(rows.collect()),
        };
        match &page {
            PageRows::Rows(rows) if rows.is_empty() => None,
            PageRows::Text(rows) if rows.is_empty() => None,
            _ => Some(page),
        }
    }
}

impl Cursor {
    pub(crate) fn new(cursor: Pages) -> Self {
        Cursor {
            inner: Arc::new(tokio::sync::Mutex::new(Some(cursor))),
            pending: std::sync::Mutex::new(None),
        }
    }

    /// The rest of a page `take_records` left, taken out (so no lock is held while Python
    /// objects are made: a finalizer run by the GC may switch threads meanwhile).
    fn take_pending(&self) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The next page from the producer (None at the end).
    fn fetch(&self, py: Python<'_>, limit: Option<Duration>) -> PyResult<Option<PageRows>> {
        if let Ok(mut guard) = self.inner.try_lock() {
            if let Some(pages @ Pages::Local { .. }) = guard.as_mut() {
                // Moving rows already in memory: nothing to wait for, so no hop to the
                // runtime and no GIL release (which cost more than the page).
                let page = pages.next_local();
                if page.is_none() {
                    *guard = None;
                }
                return Ok(page.map(PageRows::Rows));
            }
        }
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let inner = Arc::clone(&self.inner);
        run_detached(py, move || rt.block_on(next_page(inner, limit)))
    }

    /// The cursor's pages, for a reader that takes them in Rust (`ArrowStream`).
    pub(crate) fn shared(&self) -> SharedCursor {
        Arc::clone(&self.inner)
    }
}

impl ToPython for Cursor {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, self)?.into_any())
    }
}

fn page_timeout(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|secs| {
            Duration::try_from_secs_f64(secs)
                .map_err(|e| PyValueError::new_err(format!("invalid timeout {secs}: {e}")))
        })
        .transpose()
}

/// A page an awaited `next_page_async` fetched. An awaitable's result is converted on the
/// runtime's worker, under the GIL, where it holds up the fetching and decoding of the next
/// page; `take` converts on the thread that awaited instead, in parallel with that work
/// (100,000 rows streamed: 0.27 s converted on the worker, 0.22 s taken).
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct Page {
    rows: std::sync::Mutex<Option<PageRows>>,
}

impl Page {
    fn new(rows: PageRows) -> Self {
        Page {
            rows: std::sync::Mutex::new(Some(rows)),
        }
    }
}

impl ToPython for Page {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, self)?.into_any())
    }
}

#[pymethods]
impl Page {
    /// The rows, once: a second call fails.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // A poisoned lock means a panic mid-take, after which the rows are gone or whole.
        let taken = self.rows.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(rows) => rows.to_python(py),
            None => Err(PyValueError::new_err("this page's rows were already taken")),
        }
    }
}

pub(crate) async fn next_page(
    inner: SharedCursor,
    timeout: Option<Duration>,
) -> BridgeResult<Option<PageRows>> {
    let read = async move {
        let mut guard = inner.lock().await;
        match guard.as_mut() {
            Some(cursor) => {
                let page = cursor.next_page().await;
                if matches!(page, Ok(None)) {
                    // Finished: release the producer's resources now rather than at drop.
                    *guard = None;
                }
                page
            }
            None => Ok(None),
        }
    };
    match timeout {
        Some(limit) => match tokio::time::timeout(limit, read).await {
            Ok(page) => Ok(page?),
            Err(_) => Err(BridgeError::Core(Error::Timeout(limit.as_secs_f64()))),
        },
        None => Ok(read.await?),
    }
}

#[pymethods]
impl Cursor {
    /// The next page, or None at the end.
    #[pyo3(signature = (timeout=None))]
    fn next_page<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let limit = page_timeout(timeout)?;
        if let Some(rest) = self.take_pending().and_then(Pending::into_page) {
            return rest.to_python(py);
        }
        self.fetch(py, limit)?.to_python(py)
    }

    /// Up to `n` records of class `cls` (see `records_from_rows`), None at the end. The page
    /// stays Rust rows until taken, so a consumer that drops each record before the next
    /// keeps only `n` of them alive: a whole page of new objects outlives the GC's young
    /// collections and, promoted, sets off full ones over every object the process has
    /// (with 100,000 rows held elsewhere, 40% of a memory stream_read's time).
    #[pyo3(signature = (cls, n, timeout=None))]
    fn take_records<'py>(
        &self,
        py: Python<'py>,
        cls: &Bound<'py, pyo3::types::PyType>,
        n: usize,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, pyo3::types::PyList>>> {
        let limit = page_timeout(timeout)?;
        let n = n.max(1);
        loop {
            if let Some(mut rest) = self.take_pending() {
                let mut cx = ToPy::for_batch(py, n);
                let mut out = Vec::with_capacity(n);
                match &mut rest {
                    Pending::Rows(rows) => {
                        for row in rows.by_ref().take(n) {
                            out.push(crate::functions::record_of(py, cls, &cx.row(&row)?)?);
                        }
                    }
                    Pending::Text(rows) => {
                        for row in rows.by_ref().take(n) {
                            out.push(crate::functions::record_of(py, cls, &cx.text_row(&row)?)?);
                        }
                    }
                }
                if !out.is_empty() {
                    *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(rest);
                    return Ok(Some(pyo3::types::PyList::new(py, out)?));
                }
            }
            match self.fetch(py, limit)? {
                Some(page) => {
                    *self.pending.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(Pending::of(page));
                }
                None => return Ok(None),
            }
        }
    }

    /// The next page as a `Page` (None at the end), whose rows become Python objects only
    /// when taken.
    #[pyo3(signature = (timeout=None))]
    fn next_page_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = page_timeout(timeout)?;
        let inner = Arc::clone(&self.inner);
        crate::runtime::future_awaitable(py, async move {
            Ok(next_page(inner, limit).await?.map(Page::new))
        })
    }

    /// Stops the producer. Idempotent; later pages read as the end.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        drop(self.take_pending());
        match self.inner.try_lock() {
            Ok(mut guard) => {
                if let Some(mut cursor) = guard.take() {
                    cursor.close();
                }
            }
            Err(_) => {
                // A page read is in flight and holds the lock; close as soon as it lets go
                // instead of blocking this thread behind it.
                let rt = runtime().map_err(|e| e.into_pyerr(py))?;
                let inner = Arc::clone(&self.inner);
                rt.spawn(async move {
                    if let Some(mut cursor) = inner.lock().await.take() {
                        cursor.close();
                    }
                });
            }
        }
        Ok(())
    }
}
