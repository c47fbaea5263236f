//! Aggregations across the boundary (docs/aggregations.md): the spec from Python, the result
//! rows to Python dicts, and `Aggregator`, the core's accumulators fed from Python: Arrow
//! batches of stored text (the DuckDB store) or rows (a database with no native store).

use std::sync::Arc;

use dataknobs_core::aggregate::{self, AggRow, AggSpec, AggValue, MetricParts};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};

use crate::arrow::TextColumns;
use crate::convert::{rows_from_py, spec_from_py, value_to_py, ToPython};
use crate::errors::core_to_py;

/// The aggregation spec `(group_by, metrics)`: `group_by` a list of field names, `metrics` a
/// list of `(name, op, field or None)`. The Python layer has already checked the types
/// (database.py `aggregation_spec`); the core checks the ops and names.
pub fn agg_from_py(agg: &Bound<'_, PyAny>) -> PyResult<Arc<AggSpec>> {
    let (group_by, metrics): (Vec<String>, Vec<MetricParts>) = agg.extract()?;
    AggSpec::new(group_by, metrics)
        .map(Arc::new)
        .map_err(|e| core_to_py(agg.py(), e))
}

/// Result rows on their way to Python: one dict per group, the group fields then the metrics.
pub struct AggResult {
    pub spec: Arc<AggSpec>,
    pub rows: Vec<AggRow>,
}

impl AggResult {
    pub fn new(spec: &Arc<AggSpec>, rows: Vec<AggRow>) -> AggResult {
        AggResult {
            spec: Arc::clone(spec),
            rows,
        }
    }
}

fn metric_to_py<'py>(py: Python<'py>, v: &AggValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        AggValue::Null => py.None().into_bound(py),
        AggValue::Int(i) => (*i).into_pyobject(py)?.into_any(),
        AggValue::Float(f) => PyFloat::new(py, *f).into_any(),
        AggValue::Value(v) => value_to_py(py, v)?,
    })
}

impl ToPython for AggResult {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let names: Vec<Bound<'py, PyString>> = self
            .spec
            .columns()
            .into_iter()
            .map(|n| PyString::new(py, n))
            .collect();
        let out = PyList::empty(py);
        for row in &self.rows {
            let d = PyDict::new(py);
            let mut names = names.iter();
            for (k, name) in row.keys.iter().zip(names.by_ref()) {
                d.set_item(name, value_to_py(py, k)?)?;
            }
            for (m, name) in row.metrics.iter().zip(names) {
                d.set_item(name, metric_to_py(py, m)?)?;
            }
            out.append(d)?;
        }
        Ok(out.into_any())
    }
}

/// One aggregation over rows fed in any order: Arrow record batches (columns id, data,
/// metadata as stored text; the DuckDB store feeds what its engine returned, possibly
/// narrowed) or lists of rows; the result rows are taken at the end.
#[pyclass(module = "dataknobs_data._native", name = "Aggregator")]
pub struct TextAggregator {
    spec: Arc<AggSpec>,
    inner: Option<aggregate::TextAggregator>,
}

#[pymethods]
impl TextAggregator {
    #[new]
    #[pyo3(signature = (spec, agg, source))]
    fn new(
        py: Python<'_>,
        spec: Option<&Bound<'_, PyAny>>,
        agg: &Bound<'_, PyAny>,
        source: &str,
    ) -> PyResult<Self> {
        let spec = spec_from_py(spec)?;
        let agg = agg_from_py(agg)?;
        let inner = aggregate::TextAggregator::new(&spec, Arc::clone(&agg), source)
            .map_err(|e| core_to_py(py, e))?;
        Ok(TextAggregator {
            spec: agg,
            inner: Some(inner),
        })
    }

    /// Whether the rows' metadata column is read (a path walks `metadata.*`).
    #[getter]
    fn reads_metadata(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(aggregate::TextAggregator::reads_metadata)
    }

    /// Adds the matching rows of a record batch to their groups.
    fn feed(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        let cols = TextColumns::new(batch)?;
        let Some(inner) = self.inner.as_mut() else {
            return Err(finished(py));
        };
        py.detach(|| {
            cols.each(|id, d, m| {
                inner.push(id, d, m)?;
                Ok(true)
            })
        })
        .map_err(|e| core_to_py(py, e))
    }

    /// Adds the matching rows of a list of `(id, data, metadata)` rows to their groups.
    fn feed_rows(&mut self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        let rows = rows_from_py(rows)?;
        let Some(inner) = self.inner.as_mut() else {
            return Err(finished(py));
        };
        py.detach(|| rows.iter().try_for_each(|r| inner.push_row(r)))
            .map_err(|e| core_to_py(py, e))
    }

    /// The result rows (once).
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let Some(inner) = self.inner.take() else {
            return Err(finished(py));
        };
        let rows = py.detach(|| inner.finish());
        AggResult::new(&self.spec, rows).to_python(py)
    }
}

fn finished(py: Python<'_>) -> PyErr {
    core_to_py(
        py,
        dataknobs_core::Error::Other("the aggregation was already finished".into()),
    )
}
