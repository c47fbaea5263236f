"""What the database layer is doing: per-operation counters, latency histograms, logs, spans.

Every public verb of every database (``create`` ... ``stream_read``, ``stream_write``, the
transaction commit) is timed by a thin wrapper that the database base classes put around each
verb a class defines (:func:`instrument_class`). For each operation it

- adds to the database's counters (``db.stats()``): calls, errors, records, total seconds and a
  latency histogram with fixed bucket bounds (:data:`LATENCY_BUCKETS`);
- logs one DEBUG line on the ``dataknobs_data.observability`` logger with ``backend``,
  ``operation``, ``records``, ``outcome`` and ``seconds`` as ``extra`` fields (nothing is
  formatted unless DEBUG is enabled for it);
- when ``opentelemetry`` is importable (the ``otel`` extra), runs inside a CLIENT span named
  ``"<operation> <backend>"`` with the attributes listed in :data:`SPAN_ATTRIBUTES`. Without
  the package no span code runs at all.

Only the outermost verb counts: a verb that calls another (``update`` with a version token
reads first, ``stream_write`` writes batches) records one operation, not two. Streams
(``stream_read``) record when the consumer finishes or closes them, with the number of records
it took.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from threading import get_ident
from typing import Any

__all__ = [
    "LATENCY_BUCKETS",
    "OPERATIONS",
    "SPAN_ATTRIBUTES",
    "instrument_class",
    "operation_stats",
    "reset_stats",
    "set_tracing",
    "tracing_enabled",
]

logger = logging.getLogger(__name__)

#: The verbs that are instrumented, by method name -> the operation name reported.
OPERATIONS: Mapping[str, str] = {
    "create": "create",
    "read": "read",
    "update": "update",
    "delete": "delete",
    "exists": "exists",
    "upsert": "upsert",
    "search": "search",
    "count": "count",
    "all": "all",
    "clear": "clear",
    "get_version": "get_version",
    "create_batch": "create_batch",
    "read_batch": "read_batch",
    "update_batch": "update_batch",
    "delete_batch": "delete_batch",
    "upsert_batch": "upsert_batch",
    "stream_read": "stream_read",
    "stream_write": "stream_write",
    "stream_transform": "stream_transform",
    "aggregate": "aggregate",
    "_apply_batches": "commit",
}

#: Upper bounds (seconds) of the latency histogram's buckets; the last bucket is ``+Inf``.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00001,
    0.00005,
    0.0001,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
)
_BUCKET_NS = [int(b * 1e9) for b in LATENCY_BUCKETS]
_BUCKET_LABELS = [f"le_{format(b, 'f').rstrip('0').rstrip('.')}" for b in LATENCY_BUCKETS]
_BUCKET_LABELS.append("le_inf")

#: The attributes every span carries (``db.*`` are OpenTelemetry's semantic-convention names).
SPAN_ATTRIBUTES: tuple[str, ...] = (
    "db.system.name",
    "db.operation.name",
    "db.collection.name",
    "dataknobs.backend",
    "dataknobs.operation",
    "dataknobs.record_count",
    "dataknobs.outcome",
)

# The semantic-convention ``db.system.name`` of each backend; the rest report their own name.
_DB_SYSTEM = {"postgres": "postgresql", "sqlite": "sqlite", "duckdb": "duckdb", "s3": "aws.s3"}

_otel_trace: Any
try:  # The otel extra; without it no span code runs.
    from opentelemetry import trace as _otel_trace

    _tracer: Any = _otel_trace.get_tracer("dataknobs_data")
    _SPAN_KIND_CLIENT: Any = _otel_trace.SpanKind.CLIENT
except ImportError:  # pragma: no cover - the tests run with the extra installed
    _otel_trace = None
    _tracer = None
    _SPAN_KIND_CLIENT = None

_tracing = _tracer is not None

# Set while a verb runs, so the verbs it calls (on any database) are not counted again.
_active: contextvars.ContextVar[bool] = contextvars.ContextVar("dkdata_op_active", default=False)

# The clock of every measurement: monotonic, integer nanoseconds.
_clock = time.perf_counter_ns
_DEBUG = logging.DEBUG


def set_tracing(enabled: bool) -> None:
    """Turn spans on or off (on by default when ``opentelemetry`` is importable).

    Raises:
        RuntimeError: ``enabled`` is True but ``opentelemetry`` is not installed.
    """
    global _tracing
    if enabled and _tracer is None:
        raise RuntimeError(
            "spans need the opentelemetry package: pip install 'dataknobs-data-rs[otel]'"
        )
    _tracing = enabled


def tracing_enabled() -> bool:
    """Whether each operation runs inside an OpenTelemetry span."""
    return _tracing


class _OpStats:
    __slots__ = ("buckets", "calls", "errors", "max_ns", "records", "total_ns")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.records = 0
        self.total_ns = 0
        self.max_ns = 0
        self.buckets = [0] * (len(_BUCKET_NS) + 1)

    def add(self, other: _OpStats) -> None:
        self.calls += other.calls
        self.errors += other.errors
        self.records += other.records
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "records": self.records,
            "total_seconds": self.total_ns / 1e9,
            "mean_seconds": self.total_ns / 1e9 / self.calls if self.calls else 0.0,
            "max_seconds": self.max_ns / 1e9,
            "latency_histogram": dict(zip(_BUCKET_LABELS, self.buckets, strict=True)),
        }


# Each database keeps one ``{operation: _OpStats}`` table per thread that ran its verbs, under
# the thread's ident: a thread only ever writes its own table, so counting takes no lock, and
# ``stats()`` sums the tables. (A thread that ends leaves its table; a new thread given the same
# ident continues it, which keeps the sums right.)
_STATS_KEY = "_dkdata_op_stats"


def _thread_table(db: Any) -> dict[str, _OpStats]:
    tables: dict[int, dict[str, _OpStats]] | None = db.__dict__.get(_STATS_KEY)
    if tables is None:
        tables = db.__dict__.setdefault(_STATS_KEY, {})
    ident = get_ident()
    table = tables.get(ident)
    if table is None:
        table = tables.setdefault(ident, {})
    return table


def operation_stats(db: Any) -> dict[str, dict[str, Any]]:
    """The counters of ``db`` by operation name (what ``db.stats()`` returns).

    Each operation maps to ``calls``, ``errors`` (calls that raised), ``records`` (records
    written, read or streamed), ``total_seconds``, ``mean_seconds``, ``max_seconds`` and
    ``latency_histogram``: calls per bucket, keyed ``le_<bound>`` by the bucket's upper bound in
    seconds (:data:`LATENCY_BUCKETS`), non-cumulative, ending with ``le_inf``. The counts of
    every thread are summed; an operation still running in another thread may be half counted.
    """
    tables: dict[int, dict[str, _OpStats]] = db.__dict__.get(_STATS_KEY) or {}
    totals: dict[str, _OpStats] = {}
    # list() copies under the GIL, so threads adding tables or operations meanwhile are safe.
    for table in list(tables.values()):
        for op, entry in list(table.items()):
            total = totals.get(op)
            if total is None:
                total = totals[op] = _OpStats()
            total.add(entry)
    return {op: s.as_dict() for op, s in sorted(totals.items())}


def reset_stats(db: Any) -> None:
    """Zero the counters of ``db`` (an operation running meanwhile in another thread may be
    counted in neither the old counts nor the new)."""
    db.__dict__[_STATS_KEY] = {}


def _backend_of(db: Any) -> str:
    return str(getattr(type(db), "BACKEND_NAME", None) or type(db).__name__)


def _count_result(args: tuple[Any, ...], result: Any) -> int:
    return len(result) if isinstance(result, list) else 0


def _count_input(args: tuple[Any, ...], result: Any) -> int:
    return len(args[0]) if args and hasattr(args[0], "__len__") else 0


def _count_found(args: tuple[Any, ...], result: Any) -> int:
    return 0 if result is None else 1


def _count_one(args: tuple[Any, ...], result: Any) -> int:
    return 1


def _count_processed(args: tuple[Any, ...], result: Any) -> int:
    return int(getattr(result, "total_processed", 0))


def _count_removed(args: tuple[Any, ...], result: Any) -> int:
    return result if isinstance(result, int) else 0


def _count_staged(args: tuple[Any, ...], result: Any) -> int:
    return sum(len(items) for _, items in args[0]) if args else 0


def _count_none(args: tuple[Any, ...], result: Any) -> int:
    return 0


# Records an operation moved, by method: its input batch for writes, its result for reads.
# Picked once per wrapped method, so a call pays for one function call, not a chain of tests.
_COUNTERS: dict[str, Callable[[tuple[Any, ...], Any], int]] = {
    "search": _count_result,
    "all": _count_result,
    "read_batch": _count_result,
    "create_batch": _count_input,
    "update_batch": _count_input,
    "delete_batch": _count_input,
    "upsert_batch": _count_input,
    "read": _count_found,
    "create": _count_one,
    "update": _count_one,
    "upsert": _count_one,
    "delete": _count_one,
    "stream_write": _count_processed,
    "stream_transform": _count_processed,
    "clear": _count_removed,
    "_apply_batches": _count_staged,
}


def _log(db: Any, op: str, elapsed_ns: int, records: int, error: BaseException | None) -> None:
    backend = _backend_of(db)
    outcome = "ok" if error is None else type(error).__name__
    seconds = elapsed_ns / 1e9
    logger.debug(
        "%s %s: %d records, %s, %.6f s",
        backend,
        op,
        records,
        outcome,
        seconds,
        extra={
            "backend": backend,
            "operation": op,
            "records": records,
            "outcome": outcome,
            "seconds": seconds,
        },
    )


def _start_span(db: Any, op: str) -> Any:
    backend = _backend_of(db)
    attributes: dict[str, Any] = {
        "db.system.name": _DB_SYSTEM.get(backend, backend),
        "db.operation.name": op,
        "dataknobs.backend": backend,
        "dataknobs.operation": op,
    }
    config = getattr(db, "config", None)
    collection = None
    if isinstance(config, Mapping):
        collection = config.get("table") or config.get("bucket") or config.get("path")
    if collection is not None:
        attributes["db.collection.name"] = str(collection)
    return _tracer.start_span(f"{op} {backend}", kind=_SPAN_KIND_CLIENT, attributes=attributes)


def _end_span(span: Any, records: int, error: BaseException | None) -> None:
    span.set_attribute("dataknobs.record_count", records)
    if error is None:
        span.set_attribute("dataknobs.outcome", "ok")
    else:
        span.set_attribute("dataknobs.outcome", "error")
        span.set_attribute("error.type", type(error).__qualname__)
        span.record_exception(error)
        span.set_status(_otel_trace.Status(_otel_trace.StatusCode.ERROR, str(error)))
    span.end()


def _finish(
    db: Any,
    op: str,
    start: int,
    token: contextvars.Token[bool] | None,
    span: Any,
    records: int,
    error: BaseException | None,
) -> None:
    """The end of every instrumented call, sync or async, call or stream: the second clock
    read, the counters (and log line, when DEBUG is on), the span. Written out in one
    function because each call it makes costs as much as a counter update."""
    elapsed = _clock() - start
    if token is not None:
        _active.reset(token)
    try:
        table = db.__dict__[_STATS_KEY][get_ident()]
    except KeyError:
        table = _thread_table(db)
    entry = table.get(op)
    if entry is None:
        entry = table[op] = _OpStats()
    entry.calls += 1
    entry.records += records
    entry.total_ns += elapsed
    if elapsed > entry.max_ns:
        entry.max_ns = elapsed
    entry.buckets[bisect_left(_BUCKET_NS, elapsed)] += 1
    if error is not None:
        entry.errors += 1
    if logger.isEnabledFor(_DEBUG):
        _log(db, op, elapsed, records, error)
    if span is not None:
        _end_span(span, records, error)


# The four wrappers differ only in how they call ``fn`` (plain, awaited, iterated); what they
# do before and after is _start_span / _finish. Each is as short as it can be: with the otel
# extra absent a call costs two context-variable switches, two clock reads and _record.


def _wrap_call(method: str, op: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    count = _COUNTERS.get(method, _count_none)

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _active.get():
            return fn(self, *args, **kwargs)
        token = _active.set(True)
        span = _start_span(self, op) if _tracing else None
        start = _clock()
        try:
            result = fn(self, *args, **kwargs)
        except BaseException as exc:
            _finish(self, op, start, token, span, 0, exc)
            raise
        _finish(self, op, start, token, span, count(args, result), None)
        return result

    return wrapper


def _wrap_coroutine(method: str, op: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    count = _COUNTERS.get(method, _count_none)

    @functools.wraps(fn)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _active.get():
            return await fn(self, *args, **kwargs)
        token = _active.set(True)
        span = _start_span(self, op) if _tracing else None
        start = _clock()
        try:
            result = await fn(self, *args, **kwargs)
        except BaseException as exc:
            _finish(self, op, start, token, span, 0, exc)
            raise
        _finish(self, op, start, token, span, count(args, result), None)
        return result

    return wrapper


def _wrap_generator(op: str, fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    # A stream does not mark itself active: between its yields the consumer's own calls run,
    # and they are operations of their own.
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        span = _start_span(self, op) if _tracing else None
        start = _clock()
        records = 0
        error: BaseException | None = None
        try:
            for item in fn(self, *args, **kwargs):
                records += 1
                yield item
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            _finish(self, op, start, None, span, records, error)

    return wrapper


def _wrap_async_generator(
    op: str, fn: Callable[..., AsyncIterator[Any]]
) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        span = _start_span(self, op) if _tracing else None
        start = _clock()
        records = 0
        error: BaseException | None = None
        inner = fn(self, *args, **kwargs)
        try:
            async for item in inner:
                records += 1
                yield item
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            # Close the producer now (its cursor), not whenever the GC finds it.
            await inner.aclose()  # type: ignore[attr-defined]
            _finish(self, op, start, None, span, records, error)

    return wrapper


def instrument_class(cls: type) -> None:
    """Wrap each verb ``cls`` itself defines (see :data:`OPERATIONS`) with the counters,
    log line and span. Abstract and already-wrapped methods are left alone; the database
    base classes call this for themselves and for every subclass."""
    for method, op in OPERATIONS.items():
        fn = cls.__dict__.get(method)
        if fn is None or not inspect.isfunction(fn):
            continue
        if getattr(fn, "__isabstractmethod__", False) or getattr(fn, "_dkdata_wrapped", False):
            continue
        wrapped: Callable[..., Any]
        if inspect.isasyncgenfunction(fn):
            wrapped = _wrap_async_generator(op, fn)
        elif inspect.isgeneratorfunction(fn):
            wrapped = _wrap_generator(op, fn)
        elif inspect.iscoroutinefunction(fn):
            wrapped = _wrap_coroutine(method, op, fn)
        else:
            wrapped = _wrap_call(method, op, fn)
        setattr(wrapped, "_dkdata_wrapped", True)  # noqa: B010 - a marker on a function
        setattr(cls, method, wrapped)
