//! The one tokio runtime of the process, created on first use, and the fork guard.
//!
//! A forked child inherits the runtime's memory but none of its worker threads, so anything
//! handed to it would wait forever. Every entry point therefore compares the current process id
//! with the one that created the runtime (or the store) and fails at once instead.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use dataknobs_core::Error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tokio::runtime::{Builder, Runtime};

use crate::convert::ToPython;
use crate::errors::{BridgeError, BridgeResult};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// 0 until the runtime exists (no user process has pid 0).
static RUNTIME_PID: AtomicU32 = AtomicU32::new(0);
static INIT_LOCK: Mutex<()> = Mutex::new(());
static CANCELLED: AtomicU64 = AtomicU64::new(0);

pub fn runtime_pid() -> Option<u32> {
    match RUNTIME_PID.load(Ordering::Acquire) {
        0 => None,
        pid => Some(pid),
    }
}

/// Fails when called from a process other than `created_in` (a forked child).
pub fn check_pid(created_in: u32) -> BridgeResult<()> {
    let now = std::process::id();
    if created_in == now {
        Ok(())
    } else {
        Err(BridgeError::Core(Error::Other(format!(
            "dataknobs_data native runtime cannot be used after fork (created in pid \
             {created_in}, called from pid {now}); create the database in the child process"
        ))))
    }
}

/// The shared runtime, created on first use.
pub fn runtime() -> BridgeResult<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        check_pid(RUNTIME_PID.load(Ordering::Acquire))?;
        return Ok(rt);
    }
    // A poisoned lock only means another thread panicked while building; the state it guards
    // (the OnceLock) is still consistent, so carry on.
    let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = RUNTIME.get() {
        check_pid(RUNTIME_PID.load(Ordering::Acquire))?;
        return Ok(rt);
    }
    let built = Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .thread_name("dataknobs-native")
        .thread_stack_size(dataknobs_core::value::THREAD_STACK)
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the native tokio runtime: {e}")))?;
    RUNTIME_PID.store(std::process::id(), Ordering::Release);
    let rt = RUNTIME.get_or_init(|| built);
    // pyo3-async-runtimes would otherwise build a second runtime of its own on first use.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(rt);
    Ok(rt)
}

/// Workers of the shared runtime: `DKDATA_RUNTIME_THREADS`, else one. Python drives the calls
/// from one thread at a time, and a second worker mostly adds wake-ups between threads: on two
/// cores an awaited postgres read took 275 us with two workers and 245 us with one.
fn worker_threads() -> usize {
    std::env::var("DKDATA_RUNTIME_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Runs `job` on the blocking pool and hands Python an awaitable for its outcome. Dropping the
/// awaitable's future (task cancelled) stops waiting; a job already running finishes on its own.
pub fn spawn_blocking_awaitable<'py, T, F>(py: Python<'py>, job: F) -> PyResult<Bound<'py, PyAny>>
where
    F: FnOnce() -> BridgeResult<T> + Send + 'static,
    T: ToPython + Send + 'static,
{
    runtime().map_err(|e| e.into_pyerr(py))?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let outcome = match tokio::task::spawn_blocking(job).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => Err(BridgeError::from_panic(join.into_panic())),
            Err(join) => Err(BridgeError::Core(Error::Other(format!(
                "native task did not finish: {join}"
            )))),
        };
        Ok(Outcome(outcome))
    })
}

/// Like [`spawn_blocking_awaitable`] for a future that is already async.
pub fn future_awaitable<'py, T, Fut>(py: Python<'py>, fut: Fut) -> PyResult<Bound<'py, PyAny>>
where
    Fut: Future<Output = BridgeResult<T>> + Send + 'static,
    T: ToPython + Send + 'static,
{
    runtime().map_err(|e| e.into_pyerr(py))?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        Ok(Outcome(CatchUnwind(Box::pin(fut)).await))
    })
}

/// Runs `job` with the GIL released, turning a panic into an error.
pub fn run_detached<T, F>(py: Python<'_>, job: F) -> PyResult<T>
where
    F: FnOnce() -> BridgeResult<T> + Send,
    T: Send,
{
    py.detach(|| {
        std::panic::catch_unwind(AssertUnwindSafe(job))
            .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
    })
    .map_err(|e| e.into_pyerr(py))
}

/// A result converted to Python only when the awaitable resolves (under the GIL that
/// pyo3-async-runtimes takes for it), so errors become typed exceptions there too.
pub struct Outcome<T>(pub BridgeResult<T>);

impl<'py, T: ToPython> IntoPyObject<'py> for Outcome<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Ok(value) => value.to_python(py),
            Err(e) => Err(e.into_pyerr(py)),
        }
    }
}

/// Polls a future, turning a panic into `BridgeError::Panic`.
struct CatchUnwind<T>(std::pin::Pin<Box<dyn Future<Output = BridgeResult<T>> + Send>>);

impl<T> Future for CatchUnwind<T> {
    type Output = BridgeResult<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => std::task::Poll::Ready(Err(BridgeError::from_panic(payload))),
        }
    }
}

/// Counts `_sleep_async` futures dropped before they finished.
struct CancelProbe {
    finished: bool,
}

impl Drop for CancelProbe {
    fn drop(&mut self) {
        if !self.finished {
            CANCELLED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Diagnostics for the bridge tests: an awaitable that sleeps on the tokio runtime.
#[pyfunction]
pub fn _sleep_async(py: Python<'_>, seconds: f64) -> PyResult<Bound<'_, PyAny>> {
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|e| PyValueError::new_err(format!("invalid sleep duration {seconds}: {e}")))?;
    future_awaitable(py, async move {
        let mut probe = CancelProbe { finished: false };
        tokio::time::sleep(duration).await;
        probe.finished = true;
        Ok(())
    })
}

/// How many `_sleep_async` futures were dropped before finishing.
#[pyfunction]
pub fn _cancelled_count() -> u64 {
    CANCELLED.load(Ordering::SeqCst)
}

#[pyfunction(name = "runtime_pid")]
pub fn py_runtime_pid() -> Option<u32> {
    runtime_pid()
}
