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
  ``"<operation> <backend>"`` with the attributes listed in :data:`SPAN_ATTRIBUTES`, once a
  tracer provider that exports spans is set. Without the package no span code runs at all.

Only the outermost verb counts: a verb that calls another (``update`` with a version token
reads first, ``stream_write`` writes batches) records one operation, not two. Streams
(``stream_read``) record when the consumer finishes or closes them, with the number of records
it took (the native backends' streams count themselves, :func:`counts_itself`).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from . import _native

__all__ = [
    "LATENCY_BUCKETS",
    "OPERATIONS",
    "SPAN_ATTRIBUTES",
    "StreamOp",
    "counts_itself",
    "instrument_class",
    "operation_stats",
    "reset_stats",
    "runs_inline",
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

# Tracer providers that export nothing: the API's default (no SDK configured) and the no-op.
# With one of them a span would be made and dropped, at ~2 µs a call.
_SILENT_PROVIDERS: tuple[type, ...] = (
    (_otel_trace.ProxyTracerProvider, _otel_trace.NoOpTracerProvider)
    if _otel_trace is not None
    else ()
)
_UNSET: Any = object()
# A provider named by the environment is loaded at the first span; read the variable once.
_ENV_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def _spans_exported() -> bool:
    """Whether a tracer provider that exports spans is set (with the otel extra).

    ``trace.get_tracer_provider()`` costs ~1 µs (it reads the environment while no provider is
    set) and an ``isinstance`` against its ABCs as much again, so the API module's global is
    read instead when it is there: None until ``set_tracer_provider`` (or the
    ``OTEL_PYTHON_TRACER_PROVIDER`` variable, read here at import and by the API at the first
    span) sets one, once.
    """
    provider = getattr(_otel_trace, "_TRACER_PROVIDER", _UNSET)
    if provider is None:
        return _ENV_PROVIDER
    if provider is _UNSET:  # an API version without that global: ask it
        provider = _otel_trace.get_tracer_provider()
    return type(provider) not in _SILENT_PROVIDERS


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


# The operations by index, as the native counters hold them.
_OP_NAMES: tuple[str, ...] = tuple(dict.fromkeys(OPERATIONS.values()))
_OP_INDEX: dict[str, int] = {op: i for i, op in enumerate(_OP_NAMES)}

# Each database keeps its counters in one ``_native.OpCounters`` (atomics in the Rust
# extension) under this key of its ``__dict__``: one native call per operation instead of a
# handful of attribute updates and a bisect in Python, and threads share it without a lock.
_STATS_KEY = "_dkdata_op_stats"


def _new_counters() -> Any:
    return _native.OpCounters(len(_OP_NAMES), _BUCKET_NS)


def _counters_of(db: Any) -> Any:
    counters = db.__dict__.get(_STATS_KEY)
    if counters is None:
        counters = db.__dict__.setdefault(_STATS_KEY, _new_counters())
    return counters


def operation_stats(db: Any) -> dict[str, dict[str, Any]]:
    """The counters of ``db`` by operation name (what ``db.stats()`` returns).

    Each operation maps to ``calls``, ``errors`` (calls that raised), ``records`` (records
    written, read or streamed), ``total_seconds``, ``mean_seconds``, ``max_seconds`` and
    ``latency_histogram``: calls per bucket, keyed ``le_<bound>`` by the bucket's upper bound in
    seconds (:data:`LATENCY_BUCKETS`), non-cumulative, ending with ``le_inf``. Every thread
    adds to the same counters; an operation still running in another thread may be half
    counted.
    """
    counters = db.__dict__.get(_STATS_KEY)
    if counters is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for index, calls, errors, records, total_ns, max_ns, buckets in counters.snapshot():
        out[_OP_NAMES[index]] = {
            "calls": calls,
            "errors": errors,
            "records": records,
            "total_seconds": total_ns / 1e9,
            "mean_seconds": total_ns / 1e9 / calls,
            "max_seconds": max_ns / 1e9,
            "latency_histogram": dict(zip(_BUCKET_LABELS, buckets, strict=True)),
        }
    return dict(sorted(out.items()))


def reset_stats(db: Any) -> None:
    """Zero the counters of ``db`` (an operation running meanwhile in another thread may be
    counted in neither the old counts nor the new)."""
    db.__dict__[_STATS_KEY] = _new_counters()


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


def _span_for(db: Any, op: str) -> Any:
    """A started span for ``op`` on ``db``, or None when tracing is off or no tracer provider
    that exports spans is set (asked each call: an application may set one at any time)."""
    if not _tracing or not _spans_exported():
        return None
    return _start_span(db, op)


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
        counters = db.__dict__[_STATS_KEY]
    except KeyError:
        counters = _counters_of(db)
    counters.add(_OP_INDEX[op], elapsed, records, error is not None)
    if logger.isEnabledFor(_DEBUG):
        _log(db, op, elapsed, records, error)
    if span is not None:
        _end_span(span, records, error)


class StreamOp:
    """The accounting of a stream that counts itself (:func:`counts_itself`): started when
    the stream starts, ended with the number of records its consumer took.

    A backend's stream counts itself to save a generator around it: every record passing
    through one more generator frame costs more than the work of yielding it.
    """

    __slots__ = ("db", "op", "span", "start")

    def __init__(self, db: Any, op: str) -> None:
        self.db = db
        self.op = op
        self.span = _span_for(db, op)
        self.start = _clock()

    def end(self, records: int, error: BaseException | None) -> None:
        _finish(self.db, self.op, self.start, None, self.span, records, error)


def runs_inline(work: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an async leaf verb (``LEAF_VERBS``) that only returns ``work(self, ...)``, a sync
    function of the same parameters that never waits (an in-memory store's): its wrapper then
    calls ``work`` itself, so a call makes one coroutine instead of two."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, "_dkdata_inline", work)  # noqa: B010 - a marker on a function
        return fn

    return mark


def counts_itself(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn`` as doing its own accounting (with :class:`StreamOp`), so
    :func:`instrument_class` leaves it unwrapped."""
    setattr(fn, "_dkdata_wrapped", True)  # noqa: B010 - a marker on a function
    return fn


def _wrap_call(method: str, op: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    count = _COUNTERS.get(method, _count_none)

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _active.get():
            return fn(self, *args, **kwargs)
        token = _active.set(True)
        span = _span_for(self, op)
        start = _clock()
        try:
            result = fn(self, *args, **kwargs)
        except BaseException as exc:
            _finish(self, op, start, token, span, 0, exc)
            raise
        _finish(self, op, start, token, span, count(args, result), None)
        return result

    return wrapper


# The records a leaf verb moved, as an expression over its first argument after ``self``
# (``a0``) and its result: the same rules as _COUNTERS, written inline into the wrapper.
_LEAF_RECORDS: dict[str, str] = {
    "search": "len(result) if isinstance(result, list) else 0",
    "all": "len(result) if isinstance(result, list) else 0",
    "read_batch": "len(result) if isinstance(result, list) else 0",
    "create_batch": "len(a0) if hasattr(a0, '__len__') else 0",
    "update_batch": "len(a0) if hasattr(a0, '__len__') else 0",
    "delete_batch": "len(a0) if hasattr(a0, '__len__') else 0",
    "upsert_batch": "len(a0) if hasattr(a0, '__len__') else 0",
    "read": "0 if result is None else 1",
    "create": "1",
    "clear": "result if isinstance(result, int) else 0",
    "_apply_batches": "sum(len(items) for _, items in a0)",
}

_LEAF_SOURCE = """
def make(fn, inline, full, op, index, _debug_on, {defaults}):
    {kw}def wrapper({params}):
        if _active.get():
            return {aw}{call}({args})
        if (_tracing and _spans_exported()) or _debug_on(_DEBUG):
            return {await_full}full({args})
        start = _clock()
        try:
            result = {aw}{call}({args})
        except BaseException as exc:
            _finish(self, op, start, None, None, 0, exc)
            raise
        elapsed = _clock() - start
        try:
            counters = self.__dict__[_STATS_KEY]
        except KeyError:
            counters = _counters_of(self)
        counters.add(index, elapsed, {records}, False)
        return result
    return wrapper
"""


def _wrap_leaf(method: str, op: str, fn: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    """The wrapper of a verb that calls no other verb (``LEAF_VERBS``), with ``fn``'s own
    signature: nothing nested to keep from counting, so the context variable is not
    switched; while no span or log line can be wanted (tracing off, DEBUG off) it does the
    counters alone. Compiled from ``fn``'s parameters because passing ``*args, **kwargs`` on
    costs more than the rest of the wrapper (0.19 µs of a memory read's 1 µs; an exact call
    0.05 µs). A signature it cannot copy gets the general wrapper."""
    full = (_wrap_coroutine if is_async else _wrap_call)(method, op, fn)
    params = list(inspect.signature(fn).parameters.values())
    simple = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if len(params) < 1 or any(p.kind not in simple for p in params):
        return full
    defaults: dict[str, Any] = {}
    declared: list[str] = []
    passed: list[str] = []
    for p in params:
        text = p.name
        if p.default is not inspect.Parameter.empty:
            defaults[f"_default_{p.name}"] = p.default
            text += f"=_default_{p.name}"
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            if "*" not in declared:
                declared.append("*")
            passed.append(f"{p.name}={p.name}")
        else:
            passed.append(p.name)
        declared.append(text)
    first = params[1].name if len(params) > 1 else "None"
    # An async verb whose work is a sync function (``runs_inline``) is called as that
    # function: one coroutine per call, the wrapper's, instead of the wrapper's and the verb's.
    inline = getattr(fn, "_dkdata_inline", None)
    source = _LEAF_SOURCE.format(
        defaults=", ".join(defaults),
        kw="async " if is_async else "",
        aw="await " if is_async and inline is None else "",
        await_full="await " if is_async else "",
        call="fn" if inline is None else "inline",
        params=", ".join(declared),
        args=", ".join(passed),
        records=_LEAF_RECORDS.get(method, "0").replace("a0", first),
    )
    # The wrapper reads this module's globals (``_tracing`` as set_tracing leaves it).
    made: dict[str, Any] = {}
    exec(compile(source, f"<leaf wrapper of {method}>", "exec"), globals(), made)
    wrapper: Callable[..., Any] = made["make"](
        fn, inline, full, op, _OP_INDEX[op], logger.isEnabledFor, **defaults
    )
    return functools.wraps(fn)(wrapper)


def _wrap_coroutine(method: str, op: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    count = _COUNTERS.get(method, _count_none)

    @functools.wraps(fn)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _active.get():
            return await fn(self, *args, **kwargs)
        token = _active.set(True)
        span = _span_for(self, op)
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
        span = _span_for(self, op)
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
        span = _span_for(self, op)
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
    base classes call this for themselves and for every subclass.

    The verbs named in the class's own ``LEAF_VERBS`` (not inherited: a subclass's override
    may call other verbs) get the leaner leaf wrappers."""
    leaves: frozenset[str] = cls.__dict__.get("LEAF_VERBS", frozenset())
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
        elif method in leaves:
            wrapped = _wrap_leaf(method, op, fn, inspect.iscoroutinefunction(fn))
        elif inspect.iscoroutinefunction(fn):
            wrapped = _wrap_coroutine(method, op, fn)
        else:
            wrapped = _wrap_call(method, op, fn)
        setattr(wrapped, "_dkdata_wrapped", True)  # noqa: B010 - a marker on a function
        setattr(cls, method, wrapped)
