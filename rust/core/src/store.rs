//! The operations every local store offers (docs/internals.md §2). All are blocking and cheap to
//! call from any thread; the Python bridge runs them with the GIL released (sync) or on the
//! tokio blocking pool (async).

use std::sync::Arc;

use crate::aggregate::{self, AggRow, AggSpec};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::query::QuerySpec;
use crate::row::Row;

/// One batch of a transaction's commit: the writes of one kind, in the order they were staged.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp<R = Row> {
    /// Fails closed like `create_batch`.
    Create(Vec<R>),
    Upsert(Vec<R>),
    Delete(Vec<String>),
}

pub trait Store: Send + Sync + 'static {
    /// Fails closed: an id already stored or repeated in `rows` gives `Error::Duplicate(id)` and
    /// nothing is written.
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>>;
    /// Stores the rows whose id is absent; true where stored.
    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>>;
    /// Insert or replace; an existing id keeps its place in storage order.
    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>>;
    /// Replace existing rows; false where the id is missing.
    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>>;
    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>>;
    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>>;
    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>>;
    /// Filter, sort, offset, limit, project.
    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>>;
    /// Number of rows matching `spec.cond`; sort, offset and limit are ignored.
    fn count(&self, spec: &QuerySpec) -> Result<usize>;
    /// Removes everything; returns how many rows were removed.
    fn clear(&self) -> Result<usize>;
    /// Pages of at most `batch_size` rows, produced ahead of the consumer by at most
    /// `max(prefetch, 1)` pages.
    fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor>;
    /// Hands every row matching `spec.cond` to `each`, in storage order, without holding the
    /// result (sort, offset, limit and projection are ignored). A row may be partial: it holds
    /// at least the fields `spec`'s condition and sort keys read.
    fn for_each_match(&self, spec: &QuerySpec, each: &mut dyn FnMut(&Row)) -> Result<()>;
    /// The groups and metrics of the rows matching `spec.cond` (docs/aggregations.md), computed
    /// by the core's accumulators over [`Store::for_each_match`]: memory holds the groups, not
    /// the rows. A store whose engine can compute the same answer may push it down instead.
    fn aggregate(&self, spec: &QuerySpec, agg: &Arc<AggSpec>) -> Result<Vec<AggRow>> {
        let mut acc = aggregate::Aggregator::new(Arc::clone(agg));
        self.for_each_match(&agg.reading(spec), &mut |row| acc.push(row))?;
        Ok(acc.finish())
    }
    /// Applies `ops` in order and returns how many records they wrote or removed. A store
    /// whose [`Store::is_transactional`] is true applies all of them or, on the first failure,
    /// none; the others apply each batch on its own, so earlier ones stay applied.
    fn apply(&self, ops: Vec<WriteOp>) -> Result<usize> {
        let mut affected = 0;
        for op in ops {
            affected += match op {
                WriteOp::Create(rows) => self.create_batch(rows)?.len(),
                WriteOp::Upsert(rows) => self.upsert_batch(rows)?.len(),
                WriteOp::Delete(ids) => self.delete_batch(&ids)?.into_iter().filter(|d| *d).count(),
            };
        }
        Ok(affected)
    }
    /// Whether [`Store::apply`] is all or nothing.
    fn is_transactional(&self) -> bool {
        false
    }
    /// Idempotent. Every later call returns `Error::Closed`.
    fn close(&self) -> Result<()>;
}
