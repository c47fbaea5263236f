//! `PostgresStore`: the core's async PostgreSQL store with a blocking face (the GIL released
//! while the runtime drives the future) and an awaitable face (`*_async`, the Rust future
//! itself, resolved on the caller's event loop). No blocking pool is involved either way.

use std::sync::Arc;

use dataknobs_core::postgres::{PgSettings, PostgresStore as CoreStore, Streamed};
use dataknobs_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::aggregate::{agg_from_py, AggResult};
use crate::convert::{ids_from_py, rows_from_py, spec_from_py, write_ops_from_py, ToPython};
use crate::errors::{BridgeError, BridgeResult};
use crate::runtime::{future_awaitable, run_detached, runtime};
use crate::stores::{Cursor, Pages};
use crate::verbs::verbs;

/// A PostgreSQL table `id, data JSONB, metadata JSONB, created_at, updated_at, seq` on a pool
/// shared with every store of the same connection settings.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct PostgresStore {
    store: Arc<CoreStore>,
    /// A forked child must not touch the parent's connections.
    pid: u32,
}

async fn open_stream(
    store: Arc<CoreStore>,
    spec: dataknobs_core::QuerySpec,
    batch_size: usize,
    prefetch: usize,
) -> dataknobs_core::Result<Cursor> {
    Ok(Cursor::new(
        match store.stream(spec, batch_size.max(1), prefetch).await? {
            Streamed::Rows(rows) => Pages::Rows(rows),
            Streamed::Text(text) => Pages::Text(text),
        },
    ))
}

/// The pages of a search found as it goes (`search_paged`), then the order of its result.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct PagedSearch {
    /// The matches, in the order the server's scan met them.
    #[pyo3(get)]
    pages: Py<Cursor>,
    order: Arc<tokio::sync::Mutex<Option<OrderReceiver>>>,
}

type OrderReceiver = tokio::sync::oneshot::Receiver<dataknobs_core::Result<Vec<usize>>>;

async fn order_of(
    slot: Arc<tokio::sync::Mutex<Option<OrderReceiver>>>,
) -> BridgeResult<Vec<usize>> {
    let Some(rx) = slot.lock().await.take() else {
        return Err(BridgeError::Core(Error::Other(
            "the order was already taken".into(),
        )));
    };
    match rx.await {
        Ok(order) => Ok(order?),
        Err(_) => Err(BridgeError::Core(Error::Other(
            "the search ended before its order was known (its pages carry the error)".into(),
        ))),
    }
}

#[pymethods]
impl PagedSearch {
    /// Positions among the rows of `pages` of the result, in its order, once every page has
    /// been read.
    fn order<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let slot = Arc::clone(&self.order);
        run_detached(py, move || rt.block_on(order_of(slot)))?.to_python(py)
    }

    fn order_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        future_awaitable(py, order_of(Arc::clone(&self.order)))
    }
}

/// A found search on its way to Python.
struct Found(dataknobs_core::postgres::PagedSearch);

impl ToPython for Found {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pages = Py::new(py, Cursor::new(Pages::Text(self.0.pages)))?;
        let found = PagedSearch {
            pages,
            order: Arc::new(tokio::sync::Mutex::new(Some(self.0.order))),
        };
        Ok(Bound::new(py, found)?.into_any())
    }
}

verbs! {
    PostgresStore(CoreStore);
    extra {
    #[new]
    #[pyo3(signature = (
        host=None,
        port=None,
        database=None,
        user=None,
        password=None,
        connection_string=None,
        table="records".to_string(),
        schema_name="public".to_string(),
        min_pool_size=2,
        max_pool_size=5,
        command_timeout=None,
        ssl=None,
        auto_create_table=true,
        prepared_statements=true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: Option<String>,
        port: Option<u16>,
        database: Option<String>,
        user: Option<String>,
        password: Option<String>,
        connection_string: Option<String>,
        table: String,
        schema_name: String,
        min_pool_size: usize,
        max_pool_size: usize,
        command_timeout: Option<f64>,
        ssl: Option<String>,
        auto_create_table: bool,
        prepared_statements: bool,
    ) -> PyResult<Self> {
        let settings = PgSettings {
            host,
            port,
            database,
            user,
            password,
            connection_string,
            table,
            schema_name,
            min_pool_size,
            max_pool_size,
            command_timeout,
            ssl,
            auto_create_table,
            prepared_statements,
        };
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let store = run_detached(py, move || Ok(rt.block_on(CoreStore::open(settings))?))?;
        Ok(PostgresStore {
            store: Arc::new(store),
            pid: std::process::id(),
        })
    }

    fn is_transactional(&self) -> bool {
        true
    }
    }

    fn create_batch / create_batch_async(rows: &Bound<'py, PyAny>)
        prepare { let rows = rows_from_py(rows)?; }
        |s| s.create_batch(rows).await;
    /// One `create_batch` per batch of an Arrow stream (each all or nothing), each built as
    /// it is stored (`dataknobs_core::arrow::write_batches_async`).
    #[pyo3(signature = (data, id_column="id".to_string()))]
    fn create_from_arrow / create_from_arrow_async(data: &Bound<'py, PyAny>, id_column: String)
        prepare { let batches = crate::arrow_export::arrow_rows_from_py(data, &id_column)?; }
        |s| {
            let s = &s;
            dataknobs_core::arrow::write_batches_async(batches, |rows| s.create_batch(rows)).await
        };
    fn create_missing / create_missing_async(rows: &Bound<'py, PyAny>)
        prepare { let rows = rows_from_py(rows)?; }
        |s| s.create_missing(rows).await;
    fn upsert_batch / upsert_batch_async(rows: &Bound<'py, PyAny>)
        prepare { let rows = rows_from_py(rows)?; }
        |s| s.upsert_batch(rows).await;
    fn update_batch / update_batch_async(rows: &Bound<'py, PyAny>)
        prepare { let rows = rows_from_py(rows)?; }
        |s| s.update_batch(rows).await;
    fn read_batch / read_batch_async(ids: &Bound<'py, PyAny>)
        prepare { let ids = ids_from_py(ids)?; }
        |s| s.read_batch(&ids).await;
    fn exists_batch / exists_batch_async(ids: &Bound<'py, PyAny>)
        prepare { let ids = ids_from_py(ids)?; }
        |s| s.exists_batch(&ids).await;
    fn delete_batch / delete_batch_async(ids: &Bound<'py, PyAny>)
        prepare { let ids = ids_from_py(ids)?; }
        |s| s.delete_batch(&ids).await;
    /// A transaction's batches, all in one server transaction.
    fn apply / apply_async(ops: &Bound<'py, PyAny>)
        prepare { let ops = write_ops_from_py(ops)?; }
        |s| s.apply(ops).await;
    #[pyo3(signature = (spec=None))]
    fn search / search_async(spec: Option<&Bound<'py, PyAny>>)
        prepare { let spec = spec_from_py(spec)?; }
        |s| s.search(&spec).await;
    #[pyo3(signature = (spec=None))]
    fn count / count_async(spec: Option<&Bound<'py, PyAny>>)
        prepare { let spec = spec_from_py(spec)?; }
        |s| s.count(&spec).await;
    /// The groups and metrics of the matching rows (docs/aggregations.md).
    #[pyo3(signature = (spec, agg))]
    fn aggregate / aggregate_async(spec: Option<&Bound<'py, PyAny>>, agg: &Bound<'py, PyAny>)
        prepare { let spec = spec_from_py(spec)?; let agg = agg_from_py(agg)?; }
        |s| Ok(AggResult::new(&agg, s.aggregate(&spec, &agg).await?));
    fn clear / clear_async()
        prepare {}
        |s| s.clear().await;
    #[pyo3(signature = (spec=None, batch_size=1000, prefetch=2))]
    fn stream / stream_async(spec: Option<&Bound<'py, PyAny>>, batch_size: usize, prefetch: usize)
        prepare { check_batch_size(batch_size)?; let spec = spec_from_py(spec)?; }
        |s| open_stream(s, spec, batch_size, prefetch).await;
    #[pyo3(signature = (spec=None, batch_size=1000, prefetch=2))]
    fn search_paged / search_paged_async(spec: Option<&Bound<'py, PyAny>>, batch_size: usize, prefetch: usize)
        prepare { check_batch_size(batch_size)?; let spec = spec_from_py(spec)?; }
        |s| s.search_paged(spec, batch_size, prefetch).await.map(Found);
    fn close / close_async()
        prepare {}
        |s| s.close();
    fn pool_stats / pool_stats_async()
        prepare {}
        |s| s.pool_stats().map(Stats);
}

/// Pool counters on their way to a Python dict.
struct Stats(dataknobs_core::postgres::PoolStats);

impl ToPython for Stats {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let st = self.0;
        let d = PyDict::new(py);
        d.set_item("key", st.key)?;
        d.set_item("max_size", st.max_size)?;
        d.set_item("size", st.size)?;
        d.set_item("idle", st.idle)?;
        d.set_item("in_use", st.in_use)?;
        d.set_item("waiting", st.waiting)?;
        d.set_item("waits", st.waits)?;
        d.set_item("errors", st.errors)?;
        d.set_item("stores", st.stores)?;
        Ok(d.into_any())
    }
}

fn check_batch_size(batch_size: usize) -> PyResult<()> {
    if batch_size == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "batch_size must be at least 1",
        ));
    }
    Ok(())
}
