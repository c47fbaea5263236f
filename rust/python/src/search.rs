//! `SearchStore`: the core's Elasticsearch / OpenSearch store with a blocking face (the GIL
//! released while the runtime drives the future) and an awaitable face (`*_async`), both
//! emitted by `verbs!` from one call each. A batch is one crossing: its `_bulk` requests fan
//! out inside the core.

use std::sync::Arc;
use std::time::Duration;

use dataknobs_core::search::{ClientStats, SearchSettings, SearchStore as CoreStore};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::aggregate::{agg_from_py, AggResult};
use crate::convert::{ids_from_py, rows_from_py, spec_from_py, write_ops_from_py, ToPython};
use crate::runtime::{run_detached, runtime};
use crate::stores::{check_batch_size, Cursor, Pages};
use crate::verbs::verbs;

/// Records as documents in one index, on an HTTP client shared with every store of the same
/// hosts, credentials and TLS settings.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct SearchStore {
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
    Ok(Cursor::new(Pages::Rows(
        store.stream(spec, batch_size.max(1), prefetch).await?,
    )))
}

fn config_error(py: Python<'_>, name: &str, message: String) -> PyErr {
    crate::errors::exception(py, "ConfigurationError", (name, message))
}

fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<Duration> {
    if !(value.is_finite() && value > 0.0) {
        let message = format!("must be a positive number of seconds, got {value}");
        return Err(config_error(py, name, message));
    }
    Ok(Duration::from_secs_f64(value))
}

fn json_arg(
    py: Python<'_>,
    name: &str,
    text: Option<String>,
) -> PyResult<Option<serde_json::Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| config_error(py, name, e.to_string())))
        .transpose()
}

verbs! {
    SearchStore(CoreStore);
    extra {
    #[new]
    #[pyo3(signature = (
        hosts,
        index="records".to_string(),
        api_key=None,
        basic_auth=None,
        verify_certs=true,
        ca_certs=None,
        refresh=true,
        settings=None,
        mappings=None,
        create_index=true,
        bulk_bytes=8 << 20,
        bulk_docs=10_000,
        max_concurrency=4,
        max_attempts=5,
        connect_timeout=5.0,
        request_timeout=60.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        hosts: Vec<String>,
        index: String,
        api_key: Option<String>,
        basic_auth: Option<(String, String)>,
        verify_certs: bool,
        ca_certs: Option<String>,
        refresh: bool,
        settings: Option<String>,
        mappings: Option<String>,
        create_index: bool,
        bulk_bytes: usize,
        bulk_docs: usize,
        max_concurrency: usize,
        max_attempts: u32,
        connect_timeout: f64,
        request_timeout: f64,
    ) -> PyResult<Self> {
        let settings = SearchSettings {
            hosts,
            index,
            api_key,
            basic_auth,
            verify_certs,
            ca_certs,
            refresh,
            settings: json_arg(py, "settings", settings)?,
            mappings: json_arg(py, "mappings", mappings)?,
            create_index,
            bulk_bytes,
            bulk_docs,
            max_concurrency,
            max_attempts,
            connect_timeout: seconds(py, "connect_timeout", connect_timeout)?,
            request_timeout: seconds(py, "request_timeout", request_timeout)?,
        };
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let store = run_detached(py, move || Ok(rt.block_on(CoreStore::open(settings))?))?;
        Ok(SearchStore {
            store: Arc::new(store),
            pid: std::process::id(),
        })
    }

    fn is_transactional(&self) -> bool {
        false
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
    /// A transaction's batches, one after another (the engine has no transactions).
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
    /// The groups and metrics of the matching documents (docs/aggregations.md).
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
    /// Bulk-load mode on (no refreshes) or off (interval restored, one refresh).
    fn set_bulk_load / set_bulk_load_async(on: bool)
        prepare {}
        |s| s.set_bulk_load(on).await;
    fn refresh / refresh_async()
        prepare {}
        |s| s.refresh().await;
    fn close / close_async()
        prepare {}
        |s| s.close();
    fn pool_stats / pool_stats_async()
        prepare {}
        |s| s.pool_stats().map(Stats);
}

/// Client counters on their way to a Python dict.
struct Stats(ClientStats);

impl ToPython for Stats {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let st = self.0;
        let d = PyDict::new(py);
        d.set_item("key", st.key)?;
        d.set_item("flavour", st.flavour)?;
        d.set_item("version", st.version)?;
        d.set_item("requests", st.requests)?;
        d.set_item("retries", st.retries)?;
        d.set_item("stores", st.stores)?;
        Ok(d.into_any())
    }
}

/// The query DSL clause the store narrows a condition to on an index it made, as JSON text
/// (what 0.11.0's `elasticsearch_query` builders show). `spec` is a query spec; only its
/// condition is read.
#[pyfunction]
pub fn search_query_dsl(spec: &Bound<'_, PyAny>) -> PyResult<String> {
    let spec = spec_from_py(Some(spec))?;
    let n = dataknobs_core::search::dsl::narrow(spec.cond.as_ref(), true);
    Ok(n.to_query().to_string())
}

/// The mappings a store creates an index with when the config gives none, as JSON text.
#[pyfunction]
pub fn search_default_mappings() -> String {
    dataknobs_core::search::dsl::default_mappings().to_string()
}
