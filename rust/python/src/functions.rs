//! Module-level functions: the tagged JSON codec and the Rust query evaluator.

use pyo3::prelude::*;

use crate::convert::{cond_from_py, row_from_py, value_from_py, value_to_py, Path, STORED};
use crate::errors::core_to_py;

/// Tagged JSON text (internals §3) for one value.
#[pyfunction]
pub fn encode_json(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let value = value_from_py(value, &Path::root("value"), STORED)?;
    Ok(py.detach(|| dataknobs_core::codec::encode_json(&value)))
}

/// The value a tagged JSON text stands for.
#[pyfunction]
pub fn decode_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
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
