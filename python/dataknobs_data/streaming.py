"""Streaming configuration, results and helpers for processing records in batches."""

from __future__ import annotations

import inspect
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .exceptions import DuplicateRecordError, OperationError

if TYPE_CHECKING:
    from .records import Record

__all__ = [
    "BatchWriteAccountant",
    "ConflictPolicy",
    "OperationError",
    "StreamConfig",
    "StreamProcessor",
    "StreamResult",
    "StreamResultAccountant",
    "async_drive_batch_with_fallback",
    "async_process_batch_with_fallback",
    "async_run_stream_write",
    "build_shortfall_error",
    "drive_batch_with_fallback",
    "process_batch_with_fallback",
    "resolve_conflict_write",
    "run_stream_write",
]

T = TypeVar("T")
U = TypeVar("U")


class ConflictPolicy(Enum):
    """What ``stream_write`` does with a record whose id already exists."""

    INSERT = "insert"
    """Fail the record (DuplicateRecordError)."""
    UPSERT = "upsert"
    """Replace the stored record."""
    SKIP = "skip"
    """Keep the stored record and count the new one as skipped."""


@dataclass
class StreamConfig:
    """Settings of streaming reads and writes.

    Args:
        batch_size: Records per page / write batch (> 0).
        prefetch: Pages read ahead (>= 0).
        timeout: Seconds allowed per page (None: no limit; otherwise > 0).
        on_error: ``on_error(exc, record) -> bool``; True continues after a failed record.
        on_conflict: What to do with records whose id exists (see :class:`ConflictPolicy`).

    Raises:
        ValueError: an invalid setting; the message names the field.
    """

    batch_size: int = 1000
    prefetch: int = 2
    timeout: float | None = None
    # The exception is typed Any so both (Exception, ...) and (BaseException, ...) handlers fit.
    on_error: Callable[[Any, Any], bool] | None = None
    on_conflict: ConflictPolicy = ConflictPolicy.INSERT

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ValueError(f"batch_size must be an integer, got {self.batch_size!r}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int):
            raise ValueError(f"prefetch must be an integer, got {self.prefetch!r}")
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be non-negative, got {self.prefetch}")
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
                raise ValueError(f"timeout must be a number of seconds, got {self.timeout!r}")
            if not self.timeout > 0:
                raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.on_error is not None and not callable(self.on_error):
            raise ValueError("on_error must be callable")
        if not isinstance(self.on_conflict, ConflictPolicy):
            try:
                self.on_conflict = ConflictPolicy(str(self.on_conflict).lower())
            except ValueError:
                raise ValueError(
                    f"on_conflict must be one of insert, upsert, skip; got {self.on_conflict!r}"
                ) from None


@dataclass
class StreamResult:
    """Outcome of a streaming write or transform.

    ``errors`` holds one dict per failed record: ``record_id``, ``error`` (message), ``type``
    (exception class name) and ``index`` (global position in the input, or None).
    """

    total_processed: int = 0
    successful: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    total_batches: int = 0
    failed_indices: list[int] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        """Successful records as a percentage of those processed (100.0 when none were)."""
        if self.total_processed == 0:
            return 100.0
        return self.successful / self.total_processed * 100.0

    def add_error(
        self, record_id: str | None, error: BaseException | str, index: int | None = None
    ) -> None:
        """Record the details of a failure.

        Only ``errors`` (and ``failed_indices`` when ``index`` is given) change; the
        caller keeps the counters (``failed``, ``total_processed``) itself.
        """
        self.errors.append(
            {
                "record_id": record_id,
                "error": str(error),
                "type": type(error).__name__ if isinstance(error, BaseException) else "Error",
                "index": index,
            }
        )
        if index is not None:
            self.failed_indices.append(index)

    def merge(self, other: StreamResult) -> StreamResult:
        """Add ``other``'s counts, errors, batches and duration into this result; return it."""
        self.total_processed += other.total_processed
        self.successful += other.successful
        self.failed += other.failed
        self.skipped += other.skipped
        self.errors.extend(other.errors)
        self.duration += other.duration
        self.total_batches += other.total_batches
        self.failed_indices.extend(other.failed_indices)
        return self

    def __str__(self) -> str:
        return (
            f"StreamResult(processed={self.total_processed}, successful={self.successful}, "
            f"failed={self.failed}, success_rate={self.success_rate:.1f}%, "
            f"duration={self.duration:.2f}s)"
        )


def _check_batch_size(batch_size: int) -> None:
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")


async def _resolve(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def aiterate(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """Iterate a sync or async iterable asynchronously."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


class StreamProcessor:
    """Helpers for lazily batching, filtering and transforming streams of items."""

    @staticmethod
    def batch_iterator(iterator: Iterable[T], batch_size: int) -> Iterator[list[T]]:
        """Yield lists of up to ``batch_size`` items (the last may be shorter)."""
        _check_batch_size(batch_size)
        batch: list[T] = []
        for item in iterator:
            batch.append(item)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    @staticmethod
    def filter_stream(iterator: Iterable[T], predicate: Callable[[T], bool]) -> Iterator[T]:
        """Yield the items for which ``predicate`` is true."""
        for item in iterator:
            if predicate(item):
                yield item

    @staticmethod
    def transform_stream(iterator: Iterable[T], transform: Callable[[T], U | None]) -> Iterator[U]:
        """Yield ``transform(item)`` for each item, dropping None results."""
        for item in iterator:
            out = transform(item)
            if out is not None:
                yield out

    @staticmethod
    async def async_batch_iterator(
        iterator: Iterable[T] | AsyncIterable[T], batch_size: int
    ) -> AsyncIterator[list[T]]:
        """Async twin of :meth:`batch_iterator`; accepts sync or async iterables."""
        _check_batch_size(batch_size)
        batch: list[T] = []
        async for item in aiterate(iterator):
            batch.append(item)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    @staticmethod
    async def async_filter_stream(
        iterator: Iterable[T] | AsyncIterable[T],
        predicate: Callable[[T], bool | Awaitable[bool]],
    ) -> AsyncIterator[T]:
        """Async twin of :meth:`filter_stream`; the predicate may be async."""
        async for item in aiterate(iterator):
            if await _resolve(predicate(item)):
                yield item

    @staticmethod
    async def async_transform_stream(
        iterator: Iterable[T] | AsyncIterable[T],
        transform: Callable[[T], U | Awaitable[U | None] | None],
    ) -> AsyncIterator[U]:
        """Async twin of :meth:`transform_stream`; the transform may be async."""
        async for item in aiterate(iterator):
            out = await _resolve(transform(item))
            if out is not None:
                yield out

    @staticmethod
    def list_to_iterator(records: list[T]) -> Iterator[T]:
        """An iterator over a list."""
        return iter(records)

    @staticmethod
    async def list_to_async_iterator(records: list[T]) -> AsyncIterator[T]:
        """An async iterator over a list."""
        for record in records:
            yield record

    @staticmethod
    async def iterator_to_async_iterator(iterator: Iterable[T]) -> AsyncIterator[T]:
        """An async iterator over a sync one (each item as it comes)."""
        for item in iterator:
            yield item


# ------------------------------------------------------- batch writes with per-record fallback


class BatchWriteAccountant(Protocol):
    """Where :func:`drive_batch_with_fallback` reports what happened to a batch.

    The accountant decides both the bookkeeping and when to stop: a method returning False
    stops the drive after that record; raising stops it at once.
    """

    def on_batch_start(self) -> None:
        """Once per batch, before anything is written."""

    def on_batch_success(self, batch: list[Record], written_ids: list[str]) -> bool:
        """The bulk write returned ``written_ids``; fewer ids than records is a shortfall
        for the accountant to count. False stops."""
        ...

    def on_record_success(self, record: Record) -> None:
        """One record written on the per-record path."""

    def on_record_skip(self, record: Record) -> None:
        """One record left alone because its id exists (skip-on-duplicate)."""

    def on_record_failure(self, record: Record | None, error: Exception, local_index: int) -> bool:
        """One record failed (``local_index`` is its place in the batch). False stops."""
        ...


def build_shortfall_error(written: int, total: int) -> OperationError:
    """The error for a bulk write that confirmed ``written`` of ``total`` records."""
    return OperationError(
        f"batch write confirmed {written} of {total} records; {total - written} failed to write"
    )


class StreamResultAccountant:
    """A :class:`BatchWriteAccountant` that counts into a :class:`StreamResult`.

    Per-record errors are kept with their global index (``batch_index * batch_size +
    local_index``); a bulk shortfall is one aggregate error. A failure continues only when
    ``config.on_error`` returns True; otherwise the drive stops and ``on_quit_signal`` (if
    any) is called.
    """

    def __init__(
        self,
        result: StreamResult,
        config: StreamConfig,
        on_quit_signal: Callable[[], None] | None = None,
        batch_index: int = 0,
    ) -> None:
        self._result = result
        self._config = config
        self._on_quit_signal = on_quit_signal
        self._batch_index = batch_index

    def _carry_on(self, error: Exception, record: Record | None) -> bool:
        handler = self._config.on_error
        if handler is not None and handler(error, record):
            return True
        if self._on_quit_signal is not None:
            self._on_quit_signal()
        return False

    def on_batch_start(self) -> None:
        self._result.total_batches += 1

    def on_batch_success(self, batch: list[Record], written_ids: list[str]) -> bool:
        written = len(written_ids)
        self._result.total_processed += len(batch)
        self._result.successful += written
        if written >= len(batch):
            return True
        self._result.failed += len(batch) - written
        error = build_shortfall_error(written, len(batch))
        self._result.add_error(None, error)
        return self._carry_on(error, None)

    def on_record_success(self, record: Record) -> None:
        self._result.total_processed += 1
        self._result.successful += 1

    def on_record_skip(self, record: Record) -> None:
        self._result.total_processed += 1
        self._result.skipped += 1

    def on_record_failure(self, record: Record | None, error: Exception, local_index: int) -> bool:
        self._result.total_processed += 1
        self._result.failed += 1
        index = self._batch_index * self._config.batch_size + local_index
        self._result.add_error(None if record is None else record.id, error, index)
        return self._carry_on(error, record)


# One step of a drive: ("batch", records) or ("single", record); the driver sends back the
# call's result, or the exception it raised.
_DriveStep = tuple[str, Any]


def _drive_plan(
    batch: list[Record], has_batch: bool, accountant: BatchWriteAccountant, skip: bool
) -> Generator[_DriveStep, Any, bool]:
    """The batch-first, per-record-fallback decision, written once for sync and async."""
    accountant.on_batch_start()
    if has_batch:
        outcome = yield ("batch", batch)
        if not isinstance(outcome, Exception):
            return accountant.on_batch_success(batch, list(outcome))
    for index, record in enumerate(batch):
        outcome = yield ("single", record)
        if isinstance(outcome, Exception):
            if skip and isinstance(outcome, DuplicateRecordError):
                accountant.on_record_skip(record)
            elif not accountant.on_record_failure(record, outcome, index):
                return False
        else:
            accountant.on_record_success(record)
    return True


def drive_batch_with_fallback(
    batch: list[Record],
    batch_write_func: Callable[[list[Record]], list[str]] | None,
    single_write_func: Callable[[Record], Any],
    accountant: BatchWriteAccountant,
    *,
    skip_on_duplicate: bool = False,
) -> bool:
    """Write ``batch`` with ``batch_write_func``; if that raises (or there is none), write
    record by record, reporting every outcome to ``accountant``. False: stop writing."""
    plan = _drive_plan(batch, batch_write_func is not None, accountant, skip_on_duplicate)
    outcome: Any = None
    while True:
        try:
            kind, arg = plan.send(outcome)
        except StopIteration as done:
            return bool(done.value)
        func = batch_write_func if kind == "batch" else single_write_func
        assert func is not None
        try:
            outcome = func(arg)
        except Exception as exc:
            outcome = exc


async def async_drive_batch_with_fallback(
    batch: list[Record],
    batch_write_func: Callable[[list[Record]], Any] | None,
    single_write_func: Callable[[Record], Any],
    accountant: BatchWriteAccountant,
    *,
    skip_on_duplicate: bool = False,
) -> bool:
    """Async twin of :func:`drive_batch_with_fallback` (the write functions may be async)."""
    plan = _drive_plan(batch, batch_write_func is not None, accountant, skip_on_duplicate)
    outcome: Any = None
    while True:
        try:
            kind, arg = plan.send(outcome)
        except StopIteration as done:
            return bool(done.value)
        func = batch_write_func if kind == "batch" else single_write_func
        assert func is not None
        try:
            outcome = await _resolve(func(arg))
        except Exception as exc:
            outcome = exc


def process_batch_with_fallback(
    batch: list[Record],
    batch_create_func: Callable[[list[Record]], list[str]] | None,
    single_create_func: Callable[[Record], Any],
    result: StreamResult,
    config: StreamConfig,
    on_quit_signal: Callable[[], None] | None = None,
    batch_index: int = 0,
    *,
    skip_on_duplicate: bool = False,
) -> bool:
    """:func:`drive_batch_with_fallback` counting into ``result`` (a StreamResultAccountant)."""
    accountant = StreamResultAccountant(result, config, on_quit_signal, batch_index)
    return drive_batch_with_fallback(
        batch,
        batch_create_func,
        single_create_func,
        accountant,
        skip_on_duplicate=skip_on_duplicate,
    )


async def async_process_batch_with_fallback(
    batch: list[Record],
    batch_create_func: Callable[[list[Record]], Any] | None,
    single_create_func: Callable[[Record], Any],
    result: StreamResult,
    config: StreamConfig,
    on_quit_signal: Callable[[], None] | None = None,
    batch_index: int = 0,
    *,
    skip_on_duplicate: bool = False,
) -> bool:
    """Async twin of :func:`process_batch_with_fallback`."""
    accountant = StreamResultAccountant(result, config, on_quit_signal, batch_index)
    return await async_drive_batch_with_fallback(
        batch,
        batch_create_func,
        single_create_func,
        accountant,
        skip_on_duplicate=skip_on_duplicate,
    )


def resolve_conflict_write(
    on_conflict: ConflictPolicy,
    *,
    insert_batch_func: Callable[..., Any] | None,
    single_create_func: Callable[..., Any],
    upsert_func: Callable[..., Any],
    upsert_batch_func: Callable[..., Any] | None = None,
) -> tuple[Callable[..., Any] | None, Callable[..., Any], bool]:
    """(batch writer, single writer, skip on duplicate) for a conflict policy: UPSERT
    upserts, SKIP creates record by record and skips existing ids, INSERT creates."""
    if on_conflict == ConflictPolicy.UPSERT:
        return upsert_batch_func, upsert_func, False
    if on_conflict == ConflictPolicy.SKIP:
        return None, single_create_func, True
    return insert_batch_func, single_create_func, False


def run_stream_write(
    records: Iterable[Record],
    *,
    batch_write_func: Callable[..., Any] | None,
    single_write_func: Callable[..., Any],
    skip_on_duplicate: bool,
    config: StreamConfig,
) -> StreamResult:
    """Write ``records`` in batches of ``config.batch_size`` through
    :func:`process_batch_with_fallback`, stopping where it says to; the tally."""
    result = StreamResult()
    started = time.perf_counter()
    for index, batch in enumerate(StreamProcessor.batch_iterator(records, config.batch_size)):
        if not process_batch_with_fallback(
            batch,
            batch_write_func,
            single_write_func,
            result,
            config,
            batch_index=index,
            skip_on_duplicate=skip_on_duplicate,
        ):
            break
    result.duration = time.perf_counter() - started
    return result


async def async_run_stream_write(
    records: Iterable[Record] | AsyncIterable[Record],
    *,
    batch_write_func: Callable[..., Any] | None,
    single_write_func: Callable[..., Any],
    skip_on_duplicate: bool,
    config: StreamConfig,
) -> StreamResult:
    """Async twin of :func:`run_stream_write` (the write functions may be async)."""
    result = StreamResult()
    started = time.perf_counter()
    index = 0
    async for batch in StreamProcessor.async_batch_iterator(records, config.batch_size):
        if not await async_process_batch_with_fallback(
            batch,
            batch_write_func,
            single_write_func,
            result,
            config,
            batch_index=index,
            skip_on_duplicate=skip_on_duplicate,
        ):
            break
        index += 1
    result.duration = time.perf_counter() - started
    return result
