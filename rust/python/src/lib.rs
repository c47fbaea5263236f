//! The PyO3 bridge: `dataknobs_data._native` (docs/internals.md §2).

use pyo3::prelude::*;

mod aggregate;
mod arrow;
mod arrow_export;
mod convert;
mod counters;
mod errors;
mod functions;
mod postgres;
mod runtime;
mod s3;
mod search;
mod stores;
mod verbs;

// Decoding a page of rows makes and frees many small maps and strings; glibc's malloc spends
// more time on them than the decoding does (malloc_consolidate led the profile of a search).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<stores::MemoryStore>()?;
    m.add_class::<stores::FileStore>()?;
    m.add_class::<stores::SqliteStore>()?;
    m.add_class::<postgres::PostgresStore>()?;
    m.add_class::<postgres::PagedSearch>()?;
    m.add_class::<s3::S3Store>()?;
    m.add_class::<search::SearchStore>()?;
    m.add_class::<stores::Cursor>()?;
    m.add_class::<stores::Page>()?;
    m.add_class::<counters::OpCounters>()?;
    m.add_class::<arrow::TextShaper>()?;
    m.add_class::<arrow_export::ArrowStream>()?;
    m.add_class::<arrow_export::ArrowBatch>()?;
    m.add_class::<arrow_export::ArrowSchema>()?;
    m.add_function(wrap_pyfunction!(arrow_export::arrow_schema, m)?)?;
    m.add_function(wrap_pyfunction!(arrow_export::rows_to_arrow, m)?)?;
    m.add_class::<aggregate::TextAggregator>()?;
    m.add_function(wrap_pyfunction!(functions::encode_json, m)?)?;
    m.add_function(wrap_pyfunction!(functions::decode_json, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_decode_json_reference, m)?)?;
    m.add_function(wrap_pyfunction!(functions::matches, m)?)?;
    m.add_function(wrap_pyfunction!(functions::records_from_rows, m)?)?;
    m.add_function(wrap_pyfunction!(functions::record_or_none, m)?)?;
    m.add_function(wrap_pyfunction!(arrow::encode_rows_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(arrow::rows_from_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(search::search_query_dsl, m)?)?;
    m.add_function(wrap_pyfunction!(search::search_default_mappings, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::py_runtime_pid, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_sleep_async, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_cancelled_count, m)?)?;
    Ok(())
}
