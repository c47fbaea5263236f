"""Streaming configuration, results and helpers for processing records in batches."""

from __future__ import annotations

import inspect
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

__all__ = ["ConflictPolicy", "StreamConfig", "StreamProcessor", "StreamResult"]

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
    def batch_iterator(items: Iterable[T], batch_size: int) -> Iterator[list[T]]:
        """Yield lists of up to ``batch_size`` items (the last may be shorter)."""
        _check_batch_size(batch_size)
        batch: list[T] = []
        for item in items:
            batch.append(item)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    @staticmethod
    def filter_stream(items: Iterable[T], predicate: Callable[[T], bool]) -> Iterator[T]:
        """Yield the items for which ``predicate`` is true."""
        for item in items:
            if predicate(item):
                yield item

    @staticmethod
    def transform_stream(items: Iterable[T], transform: Callable[[T], U | None]) -> Iterator[U]:
        """Yield ``transform(item)`` for each item, dropping None results."""
        for item in items:
            out = transform(item)
            if out is not None:
                yield out

    @staticmethod
    async def async_batch_iterator(
        items: Iterable[T] | AsyncIterable[T], batch_size: int
    ) -> AsyncIterator[list[T]]:
        """Async twin of :meth:`batch_iterator`; accepts sync or async iterables."""
        _check_batch_size(batch_size)
        batch: list[T] = []
        async for item in aiterate(items):
            batch.append(item)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    @staticmethod
    async def async_filter_stream(
        items: Iterable[T] | AsyncIterable[T],
        predicate: Callable[[T], bool | Awaitable[bool]],
    ) -> AsyncIterator[T]:
        """Async twin of :meth:`filter_stream`; the predicate may be async."""
        async for item in aiterate(items):
            if await _resolve(predicate(item)):
                yield item

    @staticmethod
    async def async_transform_stream(
        items: Iterable[T] | AsyncIterable[T],
        transform: Callable[[T], U | Awaitable[U | None] | None],
    ) -> AsyncIterator[U]:
        """Async twin of :meth:`transform_stream`; the transform may be async."""
        async for item in aiterate(items):
            out = await _resolve(transform(item))
            if out is not None:
                yield out
