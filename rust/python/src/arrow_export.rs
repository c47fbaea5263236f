//! Arrow built in the core, handed to Python through the Arrow PyCapsule interface
//! (`__arrow_c_schema__`, `__arrow_c_array__`, `__arrow_c_stream__`): pyarrow, polars and
//! anything else that speaks it take the batches without a copy, and no Python object is made
//! per row or value.
//!
//! `ArrowStream` reads a store's `Cursor` page by page and builds one RecordBatch per page
//! (`dataknobs_core::arrow`) with the GIL released; its schema is given or inferred from the
//! first page. `next_batch` / `next_batch_async` raise the typed errors of
//! `dataknobs_data.exceptions`; a consumer of `__arrow_c_stream__` gets the same message
//! through Arrow's error channel.

use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use dataknobs_core::arrow::arrow_array::ffi::{to_ffi, FFI_ArrowSchema};
use dataknobs_core::arrow::arrow_array::ffi_stream::{
    FFI_ArrowArrayStream, RecordBatchStreamReader,
};
use dataknobs_core::arrow::arrow_array::{Array, RecordBatch, RecordBatchReader, StructArray};
use dataknobs_core::arrow::arrow_schema::{ArrowError, Schema, SchemaRef};
use dataknobs_core::arrow::{self as core_arrow};
use dataknobs_core::error::Error;
use dataknobs_core::row::Row;

use crate::convert::{rows_from_py, ToPython};
use crate::errors::{core_to_py, panic_message, BridgeResult};
use crate::runtime::{future_awaitable, run_detached, runtime};
use crate::stores::{next_page, Cursor, PageRows, SharedCursor};

fn capsule_name(name: &str) -> CString {
    // The names are fixed ASCII without NUL.
    CString::new(name).unwrap_or_default()
}

fn arrow_err(py: Python<'_>, e: ArrowError) -> PyErr {
    core_to_py(py, Error::serialization("arrow", e))
}

fn schema_capsule<'py>(py: Python<'py>, schema: &Schema) -> PyResult<Bound<'py, PyCapsule>> {
    let ffi = FFI_ArrowSchema::try_from(schema).map_err(|e| arrow_err(py, e))?;
    PyCapsule::new(py, ffi, Some(capsule_name("arrow_schema")))
}

/// The schema of any object with `__arrow_c_schema__` (a `pyarrow.Schema`, for one).
pub(crate) fn schema_from_py(obj: &Bound<'_, PyAny>) -> PyResult<SchemaRef> {
    let py = obj.py();
    let capsule = obj
        .call_method0("__arrow_c_schema__")
        .map_err(|_| {
            PyValueError::new_err(format!(
                "schema must be a pyarrow.Schema (or have __arrow_c_schema__), got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
        .cast_into::<PyCapsule>()?;
    let ptr = capsule.pointer_checked(Some(c"arrow_schema"))?;
    // SAFETY: the capsule is named "arrow_schema", so by the PyCapsule interface it holds an
    // ArrowSchema, which stays valid while the capsule lives (we only borrow it; its release
    // callback runs when the capsule is freed).
    let ffi = unsafe { ptr.cast::<FFI_ArrowSchema>().as_ref() };
    Schema::try_from(ffi)
        .map(Arc::new)
        .map_err(|e| arrow_err(py, e))
}

/// A schema built in the core, for `pyarrow.schema(...)`.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct ArrowSchema {
    schema: SchemaRef,
}

#[pymethods]
impl ArrowSchema {
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, &self.schema)
    }
}

/// One RecordBatch built in the core, for `pyarrow.record_batch(...)`.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct ArrowBatch {
    batch: RecordBatch,
}

impl ToPython for ArrowBatch {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, self)?.into_any())
    }
}

#[pymethods]
impl ArrowBatch {
    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, &self.batch.schema())
    }

    /// The batch as a struct array: (schema capsule, array capsule).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        // The interface lets a producer ignore the requested schema; the consumer casts.
        let _ = requested_schema;
        let data = StructArray::from(self.batch.clone()).into_data();
        let (array, schema) = to_ffi(&data).map_err(|e| arrow_err(py, e))?;
        Ok((
            PyCapsule::new(py, schema, Some(capsule_name("arrow_schema")))?,
            PyCapsule::new(py, array, Some(capsule_name("arrow_array")))?,
        ))
    }
}

/// Where an `ArrowStream` is: its cursor, its schema once known, and the first page when the
/// schema was inferred from it before any batch was asked for.
struct StreamState {
    cursor: SharedCursor,
    schema: Option<SchemaRef>,
    columns: Option<Vec<String>>,
    /// A schema inferred from the first page refuses fields that appear later.
    strict: bool,
    pending: Option<Vec<Row>>,
    done: bool,
}

impl StreamState {
    /// The next non-empty page, decoded as far as the schema (when known) reads.
    async fn fetch(&mut self) -> BridgeResult<Option<Vec<Row>>> {
        if let Some(rows) = self.pending.take() {
            return Ok(Some(rows));
        }
        while !self.done {
            let Some(page) = next_page(Arc::clone(&self.cursor), None).await? else {
                self.done = true;
                break;
            };
            let rows = match (page, &self.schema) {
                (PageRows::Rows(rows), _) => rows,
                (PageRows::Text(text), Some(schema)) => {
                    core_arrow::decode_for_schema(&text, schema, self.strict)?
                }
                (PageRows::Text(text), None) => text
                    .iter()
                    .map(|t| t.decode())
                    .collect::<dataknobs_core::Result<Vec<Row>>>()?,
            };
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
        Ok(None)
    }

    async fn schema(&mut self) -> BridgeResult<SchemaRef> {
        if let Some(s) = &self.schema {
            return Ok(Arc::clone(s));
        }
        let first = self.fetch().await?;
        let schema =
            core_arrow::infer_schema(first.as_deref().unwrap_or(&[]), self.columns.as_deref());
        self.pending = first;
        self.schema = Some(Arc::clone(&schema));
        Ok(schema)
    }

    async fn next_batch(&mut self) -> BridgeResult<Option<RecordBatch>> {
        let schema = self.schema().await?;
        match self.fetch().await? {
            Some(rows) => Ok(Some(core_arrow::rows_to_batch(
                &rows,
                &schema,
                self.strict,
            )?)),
            None => Ok(None),
        }
    }
}

type SharedState = Arc<tokio::sync::Mutex<StreamState>>;

async fn next_of(state: SharedState) -> BridgeResult<Option<ArrowBatch>> {
    let mut guard = state.lock().await;
    Ok(guard.next_batch().await?.map(|batch| ArrowBatch { batch }))
}

/// The RecordBatches of a store's cursor (see the module doc).
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct ArrowStream {
    state: SharedState,
    /// The same cursor the state reads, so `close` need not wait for the state's lock.
    cursor: SharedCursor,
}

#[pymethods]
impl ArrowStream {
    /// `schema`: a pyarrow schema the batches must fit (its fields pick the columns);
    /// `columns`: the fields to keep when the schema is inferred. With neither, the schema is
    /// inferred from the first page and a later field it lacks is an error.
    #[new]
    #[pyo3(signature = (cursor, schema=None, columns=None))]
    fn new(
        cursor: &Bound<'_, Cursor>,
        schema: Option<&Bound<'_, PyAny>>,
        columns: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let schema = schema.map(schema_from_py).transpose()?;
        let strict = schema.is_none() && columns.is_none();
        let shared = cursor.get().shared();
        Ok(ArrowStream {
            cursor: Arc::clone(&shared),
            state: Arc::new(tokio::sync::Mutex::new(StreamState {
                cursor: shared,
                schema,
                columns,
                strict,
                pending: None,
                done: false,
            })),
        })
    }

    /// The next batch, or None at the end (GIL released while it is read and built).
    fn next_batch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let state = Arc::clone(&self.state);
        run_detached(py, move || rt.block_on(next_of(state)))?.to_python(py)
    }

    /// An awaitable of the next batch, or None at the end.
    fn next_batch_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = Arc::clone(&self.state);
        future_awaitable(py, async move { next_of(state).await })
    }

    /// The stream's schema (inferred from the first page if not given; reads it).
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let state = Arc::clone(&self.state);
        let schema = run_detached(py, move || {
            rt.block_on(async move { state.lock().await.schema().await })
        })?;
        schema_capsule(py, &schema)
    }

    /// The remaining batches as an ArrowArrayStream; each is built when the consumer asks.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let state = Arc::clone(&self.state);
        let schema = run_detached(py, move || {
            rt.block_on(async move { state.lock().await.schema().await })
        })?;
        let reader = Reader {
            state: Arc::clone(&self.state),
            schema,
        };
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new(py, stream, Some(capsule_name("arrow_array_stream")))
    }

    /// Stops the producer (a batch being built finishes first). Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let rt = runtime().map_err(|e| e.into_pyerr(py))?;
        let cursor = Arc::clone(&self.cursor);
        run_detached(py, move || {
            rt.block_on(async move {
                let taken = cursor.lock().await.take();
                if let Some(mut pages) = taken {
                    pages.close();
                }
            });
            Ok(())
        })
    }
}

/// The C stream's side: pulls batches on the consumer's thread (which holds no GIL we need:
/// the producer is all Rust). A panic becomes an Arrow error, never an unwind across C.
struct Reader {
    state: SharedState,
    schema: SchemaRef,
}

impl Iterator for Reader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let state = Arc::clone(&self.state);
        let step = std::panic::catch_unwind(AssertUnwindSafe(move || {
            let rt = runtime().map_err(|e| format!("{e:?}"))?;
            rt.block_on(async move { state.lock().await.next_batch().await })
                .map_err(|e| match e {
                    crate::errors::BridgeError::Core(e) => e.to_string(),
                    other => format!("{other:?}"),
                })
        }));
        match step {
            Ok(Ok(batch)) => batch.map(Ok),
            Ok(Err(message)) => Some(Err(ArrowError::ExternalError(message.into()))),
            Err(payload) => Some(Err(ArrowError::ExternalError(
                format!(
                    "internal error in dataknobs_data native code: {}",
                    panic_message(payload.as_ref())
                )
                .into(),
            ))),
        }
    }
}

impl RecordBatchReader for Reader {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// The schema `rows` imply (the core's rule, `dataknobs_core::arrow`); `columns` picks and
/// orders the fields.
#[pyfunction]
#[pyo3(signature = (rows, columns=None))]
pub fn arrow_schema(
    rows: &Bound<'_, PyAny>,
    columns: Option<Vec<String>>,
) -> PyResult<ArrowSchema> {
    let py = rows.py();
    let rows = rows_from_py(rows)?;
    let schema = py.detach(|| core_arrow::infer_schema(&rows, columns.as_deref()));
    Ok(ArrowSchema { schema })
}

/// One batch of `rows` in `schema`; `strict`: a data field the schema lacks is an error
/// (otherwise it is left out).
#[pyfunction]
#[pyo3(signature = (rows, schema, strict=true))]
pub fn rows_to_arrow(
    rows: &Bound<'_, PyAny>,
    schema: &Bound<'_, PyAny>,
    strict: bool,
) -> PyResult<ArrowBatch> {
    let py = rows.py();
    let schema = schema_from_py(schema)?;
    let rows = rows_from_py(rows)?;
    let batch = run_detached(py, move || {
        Ok(core_arrow::rows_to_batch(&rows, &schema, strict)?)
    })?;
    Ok(ArrowBatch { batch })
}

/// The batches of any object with `__arrow_c_stream__` (a `pyarrow.Table`, a
/// `RecordBatchReader`, a polars frame...) as rows for writing, converted one batch at a time
/// on a thread of their own as the writer takes them (`dataknobs_core::arrow::RowBatches`),
/// so a write holds O(batch) rows. That thread holds no GIL (a producer that needs it takes
/// it itself).
pub(crate) fn arrow_rows_from_py(
    data: &Bound<'_, PyAny>,
    id_column: &str,
) -> PyResult<core_arrow::RowBatches> {
    let py = data.py();
    let capsule = data
        .call_method0("__arrow_c_stream__")
        .map_err(|_| {
            PyValueError::new_err(format!(
                "write_arrow takes an object with __arrow_c_stream__ (a pyarrow Table or \
                 RecordBatchReader), got {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
        .cast_into::<PyCapsule>()?;
    let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the capsule is named "arrow_array_stream", so it holds an ArrowArrayStream;
    // `from_raw` moves it out (leaving a released stream for the capsule's destructor).
    let reader =
        unsafe { RecordBatchStreamReader::from_raw(ptr.cast::<FFI_ArrowArrayStream>().as_ptr()) }
            .map_err(|e| arrow_err(py, e))?;
    Ok(core_arrow::RowBatches::spawn(reader, id_column.to_string()))
}
