//! The per-operation counters behind `db.stats()` (python/dataknobs_data/observability.py).
//!
//! Every instrumented call adds to them, so they sit on the shortest path there is (a memory
//! read takes a couple of µs): one method call that updates atomics costs a fraction of the
//! attribute updates and the bisect the same bookkeeping takes in Python, and threads share
//! one table without a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;

/// One operation's counts.
struct Slot {
    calls: AtomicU64,
    errors: AtomicU64,
    records: AtomicU64,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
    /// Calls per latency bucket: `buckets[i]` counts the calls whose time is at most
    /// `bounds[i]` and above `bounds[i - 1]`; the last one is past every bound.
    buckets: Box<[AtomicU64]>,
}

impl Slot {
    fn new(buckets: usize) -> Slot {
        Slot {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            records: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            buckets: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// `(op, calls, errors, records, total_ns, max_ns, buckets)` of one operation.
type SlotCounts = (usize, u64, u64, u64, u64, u64, Vec<u64>);

/// Counters of `operations` operations (by index) with latency buckets bounded by `bounds`
/// (nanoseconds, ascending). Relaxed atomics: a snapshot taken while another thread adds may
/// see that call half counted, as documented for `stats()`.
#[pyclass(module = "dataknobs_data._native", frozen)]
pub struct OpCounters {
    bounds: Vec<u64>,
    slots: Vec<Slot>,
}

#[pymethods]
impl OpCounters {
    #[new]
    fn new(operations: usize, bounds: Vec<u64>) -> PyResult<Self> {
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(PyValueError::new_err(
                "latency bucket bounds must be strictly ascending",
            ));
        }
        let slots = (0..operations)
            .map(|_| Slot::new(bounds.len() + 1))
            .collect();
        Ok(OpCounters { bounds, slots })
    }

    /// One call of operation `op` that took `elapsed_ns` and moved `records` records.
    fn add(&self, op: usize, elapsed_ns: i64, records: i64, failed: bool) -> PyResult<()> {
        let slot = self
            .slots
            .get(op)
            .ok_or_else(|| PyIndexError::new_err(format!("no operation {op}")))?;
        // A monotonic clock never goes back; clamp rather than wrap if a caller's does.
        let elapsed = u64::try_from(elapsed_ns).unwrap_or(0);
        slot.calls.fetch_add(1, Relaxed);
        slot.records
            .fetch_add(u64::try_from(records).unwrap_or(0), Relaxed);
        slot.total_ns.fetch_add(elapsed, Relaxed);
        slot.max_ns.fetch_max(elapsed, Relaxed);
        if failed {
            slot.errors.fetch_add(1, Relaxed);
        }
        // The first bucket whose bound is >= the time (Python's bisect_left).
        let bucket = self.bounds.partition_point(|&b| b < elapsed);
        slot.buckets[bucket].fetch_add(1, Relaxed);
        Ok(())
    }

    /// The counts of every operation called at least once, in index order.
    fn snapshot(&self) -> Vec<SlotCounts> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(op, s)| {
                let calls = s.calls.load(Relaxed);
                (calls > 0).then(|| {
                    (
                        op,
                        calls,
                        s.errors.load(Relaxed),
                        s.records.load(Relaxed),
                        s.total_ns.load(Relaxed),
                        s.max_ns.load(Relaxed),
                        s.buckets.iter().map(|b| b.load(Relaxed)).collect(),
                    )
                })
            })
            .collect()
    }
}
