//! Module-level functions: the tagged JSON codec and the Rust query evaluator.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

use crate::convert::{cond_from_py, row_from_py, value_from_py, value_to_py, Path, ToPy, STORED};
use crate::errors::core_to_py;

/// Tagged JSON text (internals §3) for one value.
#[pyfunction]
pub fn encode_json(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let value = value_from_py(value, &Path::root("value"), STORED)?;
    Ok(py.detach(|| dataknobs_core::codec::encode_json(&value)))
}

/// The value a tagged JSON text stands for, read straight into Python objects.
#[pyfunction]
pub fn decode_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    match ToPy::new(py).json(text)? {
        Some(v) => Ok(v),
        None => _decode_json_reference(py, text),
    }
}

/// `decode_json` the long way, through the core's `Value` (the reference the direct reading
/// is tested against).
#[pyfunction]
pub fn _decode_json_reference<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let value = dataknobs_core::codec::decode_json(text).map_err(|e| core_to_py(py, e))?;
    value_to_py(py, &value)
}

/// Whether `row` satisfies `cond` under the Rust evaluator (for differential tests).
#[pyfunction]
#[pyo3(signature = (cond, row))]
pub fn matches(
    py: Python<'_>,
    cond: Option<&Bound<'_, PyAny>>,
    row: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let row = row_from_py(row)?;
    let Some(cond) = cond.filter(|c| !c.is_none()) else {
        return Ok(true);
    };
    let cond = cond_from_py(cond)?;
    dataknobs_core::query::matches(&cond, &row).map_err(|e| core_to_py(py, e))
}

/// Records for rows `(id, data, metadata)`, doing for each what `Record._from_row` does (the
/// four slots set straight, taking the dicts as they are) without a Python call per row: a
/// third of what building them in Python costs. `cls` is the record class; the Python layer
/// passes `Record`, whose slots are `_values`, `_fields`, `_id` and `metadata`.
#[pyfunction]
pub fn records_from_rows<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    rows: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyList>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        out.push(record_of(py, cls, &row)?);
    }
    PyList::new(py, out)
}

/// The record of one row as `records_from_rows` builds it, or None for None: what a read by
/// id returns, without the list around it (a lone read is all overhead).
#[pyfunction]
pub fn record_or_none<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    row: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    if row.is_none() {
        return Ok(row.clone());
    }
    record_of(py, cls, row)
}

/// One row `(id, data, metadata)` as a record of class `cls` (see `records_from_rows`).
pub(crate) fn record_of<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    row: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let names = [
        intern!(py, "_values"),
        intern!(py, "_fields"),
        intern!(py, "_id"),
        intern!(py, "metadata"),
    ];
    let row = row.cast::<PyTuple>()?;
    if row.len() != 3 {
        return Err(PyTypeError::new_err(format!(
            "a row is (id, data, metadata), got a tuple of {}",
            row.len()
        )));
    }
    // SAFETY: the GIL is held; `cls` is a live type object. PyType_GenericAlloc returns a
    // new reference to a zeroed instance (tracked by the GC if the type is), or NULL with
    // an exception set, which `from_owned_ptr_or_err` turns into the error.
    let rec = unsafe {
        Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyType_GenericAlloc(cls.as_type_ptr(), 0))?
    };
    let values = [
        row.get_item(1)?,
        py.None().into_bound(py),
        row.get_item(0)?,
        row.get_item(2)?,
    ];
    for (name, value) in names.iter().zip(values) {
        // SAFETY: GIL held, all three pointers live for the call; on failure (-1) an
        // exception is set, which PyErr::fetch takes.
        if unsafe {
            pyo3::ffi::PyObject_GenericSetAttr(rec.as_ptr(), name.as_ptr(), value.as_ptr())
        } != 0
        {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(rec)
}
