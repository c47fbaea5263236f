//! Rows as Arrow string columns, for engines that take and give Arrow batches (DuckDB through
//! its Python package). Writing: a batch of rows becomes three Arrow `large_string` columns of
//! id and tagged JSON text, built here as raw buffers, so no Python str is made per row.
//! Reading: the core's `TextShaper` reads the stored text straight from a record batch's
//! buffers, with the GIL released, and decides the query (internals §1) the way every other
//! store does; only the rows returned become Python objects.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use dataknobs_core::error::Error;
use dataknobs_core::row::Row;
use dataknobs_core::shape;

use crate::convert::{encoded_rows_from_py, spec_from_py, ToPython};
use crate::errors::core_to_py;

/// One Arrow `string` or `large_string` array, read in place through its buffers (which
/// pyarrow exports with format `b`, signed bytes: read here as the raw bytes they are).
struct StrColumn {
    validity: Option<PyBuffer<i8>>,
    offsets: Option<PyBuffer<i8>>,
    data: Option<PyBuffer<i8>>,
    /// The array's offset into its buffers (a sliced array shares them).
    start: usize,
    len: usize,
    /// 64-bit offsets (`large_string`) rather than 32-bit ones.
    large: bool,
    name: &'static str,
}

fn bytes_of(buf: &Option<PyBuffer<i8>>) -> &[u8] {
    match buf {
        // SAFETY: the buffer view is held (and its exporter kept alive) as long as `buf`, and
        // Arrow buffers are immutable; `len_bytes` is the size of the contiguous region that
        // `buf_ptr` starts (checked contiguous when the view was taken).
        Some(b) => unsafe { std::slice::from_raw_parts(b.buf_ptr() as *const u8, b.len_bytes()) },
        None => &[],
    }
}

impl StrColumn {
    fn new(batch: &Bound<'_, PyAny>, index: usize, name: &'static str) -> PyResult<StrColumn> {
        let array = batch.call_method1("column", (index,))?;
        let ty = array.getattr("type")?.str()?.to_string();
        let large = match ty.as_str() {
            "string" | "utf8" => false,
            "large_string" | "large_utf8" => true,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "column {index} ({name}) must be an Arrow string array, got {other}"
                )))
            }
        };
        let view = |b: Bound<'_, PyAny>| -> PyResult<Option<PyBuffer<i8>>> {
            if b.is_none() {
                return Ok(None);
            }
            let buf = PyBuffer::<i8>::get(&b)?;
            if !buf.is_c_contiguous() {
                return Err(PyTypeError::new_err("an Arrow buffer must be contiguous"));
            }
            Ok(Some(buf))
        };
        let buffers = array.call_method0("buffers")?;
        Ok(StrColumn {
            validity: view(buffers.get_item(0)?)?,
            offsets: view(buffers.get_item(1)?)?,
            data: view(buffers.get_item(2)?)?,
            start: array.getattr("offset")?.extract()?,
            len: array.len()?,
            large,
            name,
        })
    }

    fn offset_at(&self, k: usize) -> Option<usize> {
        let raw = bytes_of(&self.offsets);
        if self.large {
            let b = raw.get(k * 8..k * 8 + 8)?;
            usize::try_from(i64::from_ne_bytes(b.try_into().ok()?)).ok()
        } else {
            let b = raw.get(k * 4..k * 4 + 4)?;
            usize::try_from(i32::from_ne_bytes(b.try_into().ok()?)).ok()
        }
    }

    /// The text of row `i`; None when it is null.
    fn get(&self, i: usize) -> Result<Option<&str>, Error> {
        let k = self.start + i;
        if self.validity.is_some() {
            let bits = bytes_of(&self.validity);
            if bits.get(k / 8).is_some_and(|b| b & (1 << (k % 8)) == 0) {
                return Ok(None);
            }
        }
        let bad = |what: &str| {
            Error::data_format("arrow", format!("row {i} of column {}: {what}", self.name))
        };
        let (Some(lo), Some(hi)) = (self.offset_at(k), self.offset_at(k + 1)) else {
            return Err(bad("offsets out of range"));
        };
        let bytes = bytes_of(&self.data)
            .get(lo..hi)
            .ok_or_else(|| bad("offsets out of range"))?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| bad(&format!("not UTF-8 ({e})")))
    }
}

/// The (id, data, metadata) columns of a record batch. A null id is an error; null data or
/// metadata (a table made elsewhere may allow it) reads as an empty map.
/// The id, data and metadata string columns of a record batch, read in place.
pub(crate) struct TextColumns([StrColumn; 3]);

impl TextColumns {
    pub(crate) fn new(batch: &Bound<'_, PyAny>) -> PyResult<TextColumns> {
        Ok(TextColumns([
            StrColumn::new(batch, 0, "id")?,
            StrColumn::new(batch, 1, "data")?,
            StrColumn::new(batch, 2, "metadata")?,
        ]))
    }

    fn len(&self) -> usize {
        self.0.iter().map(|c| c.len).min().unwrap_or(0)
    }

    pub(crate) fn each(
        &self,
        mut f: impl FnMut(&str, &str, &str) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let [ids, data, meta] = &self.0;
        for i in 0..self.len() {
            let id = ids
                .get(i)?
                .ok_or_else(|| Error::data_format("arrow", format!("row {i}: the id is null")))?;
            let d = data.get(i)?.unwrap_or("{}");
            let m = meta.get(i)?.unwrap_or("{}");
            if !f(id, d, m)? {
                break;
            }
        }
        Ok(())
    }
}

/// Offsets and bytes of an Arrow `large_string` array holding `texts`.
fn large_string_buffers<'py, 'a>(
    py: Python<'py>,
    texts: impl Iterator<Item = &'a str>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut offsets: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    offsets.extend_from_slice(&0i64.to_ne_bytes());
    for t in texts {
        data.extend_from_slice(t.as_bytes());
        let end = i64::try_from(data.len()).unwrap_or(i64::MAX);
        offsets.extend_from_slice(&end.to_ne_bytes());
    }
    PyTuple::new(py, [PyBytes::new(py, &offsets), PyBytes::new(py, &data)])
}

/// A batch of rows `(id, data, metadata)` as the buffers of three Arrow `large_string` columns:
/// `((id_offsets, id_bytes), (data_offsets, data_bytes), (metadata_offsets, metadata_bytes))`,
/// data and metadata in tagged JSON (internals §3). The whole batch is checked before anything
/// is returned, so a bad value raises `SerializationError` and nothing is written.
#[pyfunction]
pub fn encode_rows_arrow<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let rows = encoded_rows_from_py(rows)?;
    PyTuple::new(
        py,
        [
            large_string_buffers(py, rows.iter().map(|r| r.id.as_str()))?,
            large_string_buffers(py, rows.iter().map(|r| r.data.as_str()))?,
            large_string_buffers(py, rows.iter().map(|r| r.metadata.as_str()))?,
        ],
    )
}

/// Every row of a record batch with columns (id, data, metadata) of stored text, decoded.
#[pyfunction]
pub fn rows_from_arrow<'py>(
    py: Python<'py>,
    batch: &Bound<'py, PyAny>,
    source: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let cols = TextColumns::new(batch)?;
    let rows = py
        .detach(|| {
            let mut out: Vec<Row> = Vec::with_capacity(cols.len());
            cols.each(|id, d, m| {
                out.push(shape::decode_text_row(id, d, m, source)?);
                Ok(true)
            })?;
            Ok::<_, Error>(out)
        })
        .map_err(|e| core_to_py(py, e))?;
    rows.to_python(py)
}

/// One query decided over record batches of stored text fed in storage order (the core's
/// `TextShaper`): the Python layer feeds what the engine returned, possibly narrowed, and takes
/// the rows the query returns.
#[pyclass(module = "dataknobs_data._native")]
pub struct TextShaper {
    inner: shape::TextShaper,
}

#[pymethods]
impl TextShaper {
    #[new]
    #[pyo3(signature = (spec, source))]
    fn new(py: Python<'_>, spec: Option<&Bound<'_, PyAny>>, source: &str) -> PyResult<Self> {
        let spec = spec_from_py(spec)?;
        let inner = shape::TextShaper::new(&spec, source).map_err(|e| core_to_py(py, e))?;
        Ok(TextShaper { inner })
    }

    /// Whether more rows could change the result (false once an unsorted window is full).
    #[getter]
    fn wants_more(&self) -> bool {
        self.inner.wants_more()
    }

    /// Offers the rows of a record batch (columns id, data, metadata), in storage order.
    fn feed(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        let cols = TextColumns::new(batch)?;
        let inner = &mut self.inner;
        py.detach(|| {
            cols.each(|id, d, m| {
                inner.push(id, d, m)?;
                Ok(inner.wants_more())
            })
        })
        .map_err(|e| core_to_py(py, e))
    }

    /// The rows of a record batch that match the condition (offset, limit and sort ignored).
    fn count(&self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<usize> {
        let cols = TextColumns::new(batch)?;
        let inner = &self.inner;
        py.detach(|| {
            let mut n = 0;
            cols.each(|id, d, m| {
                n += usize::from(inner.matches(id, d, m)?);
                Ok(true)
            })?;
            Ok(n)
        })
        .map_err(|e| core_to_py(py, e))
    }

    /// Unsorted queries: the rows kept since the last call, as `(id, data, metadata)` tuples.
    fn take<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.take_ready().to_python(py)
    }

    /// The rest of the result once every row was fed (a sorted query's whole window).
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = &mut self.inner;
        let rows = py
            .detach(|| inner.finish())
            .map_err(|e| core_to_py(py, e))?;
        rows.to_python(py)
    }
}
