//! `S3Store`: the core's S3 store with a blocking face (the GIL released while the runtime
//! drives the future) and an awaitable face (`*_async`), both emitted by `verbs!` from one
//! call each. A batch is one crossing: its requests fan out inside the core.

use std::sync::Arc;
use std::time::Duration;

use dataknobs_core::s3::{ClientStats, S3Settings, S3Store as CoreStore};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::aggregate::{agg_from_py, AggResult};
use crate::convert::{ids_from_py, rows_from_py, spec_from_py, write_ops_from_py, ToPython};
use crate::runtime::{run_detached, runtime};
use crate::stores::{check_batch_size, Cursor, Pages};
use crate::verbs::verbs;

/// Records as objects `{prefix}{id}.json` in a bucket, on a client shared with every store of
/// the same endpoint, region, credentials and bucket.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct S3Store {
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

fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<Duration> {
    if !(value.is_finite() && value > 0.0) {
        let message = format!("must be a positive number of seconds, got {value}");
        return Err(crate::errors::exception(
            py,
            "ConfigurationError",
            (name, message),
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

verbs! {
    S3Store(CoreStore);
    extra {
    #[new]
    #[pyo3(signature = (
        bucket,
        prefix="records/".to_string(),
        region=None,
        endpoint_url=None,
        access_key_id=None,
        secret_access_key=None,
        session_token=None,
        max_concurrency=64,
        max_attempts=3,
        connect_timeout=5.0,
        request_timeout=30.0,
        create_bucket=true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        bucket: String,
        prefix: String,
        region: Option<String>,
        endpoint_url: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        session_token: Option<String>,
        max_concurrency: usize,
        max_attempts: u32,
        connect_timeout: f64,
        request_timeout: f64,
        create_bucket: bool,
    ) -> PyResult<Self> {
        let settings = S3Settings {
            bucket,
            prefix,
            region,
            endpoint_url,
            access_key_id,
            secret_access_key,
            session_token,
            max_concurrency,
            max_attempts,
            connect_timeout: seconds(py, "connect_timeout", connect_timeout)?,
            request_timeout: seconds(py, "request_timeout", request_timeout)?,
            create_bucket,
        };
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let store = run_detached(py, move || Ok(rt.block_on(CoreStore::open(settings))?))?;
        Ok(S3Store {
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
    /// A transaction's batches, one after another (S3 has no transactions).
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
        d.set_item("max_concurrency", st.max_concurrency)?;
        d.set_item("in_flight", st.in_flight)?;
        d.set_item("requests", st.requests)?;
        d.set_item("waits", st.waits)?;
        d.set_item("stores", st.stores)?;
        Ok(d.into_any())
    }
}
