"""Moving records between databases: streamed, batched, optionally parallel and resumable.

Every path reads the source with ``stream_read`` and writes batches with the target's
``stream_write`` (the bulk verbs: ``create_batch``, ``upsert_batch`` or create-missing, by
conflict policy), so at most a few batches per partition are held in memory whatever the
size of the source (API.md §9 **Fix**: the original loaded the whole source).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, overload

from dataknobs_data.database import AnyQuery, AsyncDatabase, SyncDatabase, with_id
from dataknobs_data.query import Query
from dataknobs_data.records import Record
from dataknobs_data.streaming import (
    ConflictPolicy,
    StreamConfig,
    StreamResult,
    build_shortfall_error,
)

from .checkpoint import Checkpoint
from .migration import Migration
from .operations import Operation
from .progress import MigrationProgress
from .transformer import Transformer

__all__ = [
    "MigrationProgressAccountant",
    "Migrator",
    "TransformLike",
    "as_record_function",
    "partition_of",
]


class MigrationProgressAccountant:
    """A :class:`~dataknobs_data.streaming.BatchWriteAccountant` counting into a
    :class:`MigrationProgress`, with the migrator's fail-fast rule: a failure re-raises unless
    ``on_error(exc, record)`` returns True, in which case it is counted and writing goes on.
    """

    def __init__(
        self,
        progress: MigrationProgress,
        on_error: Callable[[Exception, Record | None], bool] | None = None,
    ) -> None:
        self._progress = progress
        self._on_error = on_error

    def on_batch_start(self) -> None:
        """Nothing to count: progress has no batch counter."""

    def on_batch_success(self, batch: list[Record], written_ids: list[str]) -> bool:
        for record_id in written_ids:
            self._progress.record_success(record_id)
        missing = len(batch) - len(written_ids)
        if missing <= 0:
            return True
        error = build_shortfall_error(len(written_ids), len(batch))
        self._progress.record_batch_failure(missing, str(error), error)
        if self._on_error is not None and self._on_error(error, None):
            return True
        raise error

    def on_record_success(self, record: Record) -> None:
        self._progress.record_success(record.id)

    def on_record_skip(self, record: Record) -> None:
        self._progress.record_skip("Already present in target", record.id)

    def on_record_failure(self, record: Record | None, error: Exception, local_index: int) -> bool:
        self._progress.record_failure(str(error), None if record is None else record.id, error)
        if self._on_error is not None and self._on_error(error, record):
            return True
        raise error


#: What ``transform=`` accepts.
TransformLike = Transformer | Migration | Operation | Callable[[Record], Record | None]
RecordFunction = Callable[[Record], Record | None]
ProgressCallback = Callable[[MigrationProgress], None]
ErrorHandler = Callable[[Any, Record], bool]
PathLike = str | os.PathLike[str]


def as_record_function(transform: TransformLike | None) -> RecordFunction | None:
    """The ``record -> record | None`` function behind a transform argument."""
    if transform is None:
        return None
    if isinstance(transform, Transformer):
        return transform.transform
    if isinstance(transform, Migration):
        return transform.apply
    if isinstance(transform, Operation):
        return transform.apply
    if callable(transform):
        return transform
    raise TypeError(
        "transform must be a Transformer, Migration, Operation or a function of a record, "
        f"got {type(transform).__name__}"
    )


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``key``: blake2b of its UTF-8 bytes modulo ``partitions``.

    Python's ``hash()`` of a str changes between processes; a resumed job must route every
    record to the same partition as the interrupted one did.
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def _partition_key(record: Record, partition_field: str | None) -> str:
    if partition_field is None or partition_field == "id":
        return record.id or ""
    value = record.get_value(partition_field)
    return json.dumps(value, sort_keys=True, default=str)


def _policy(value: ConflictPolicy | str) -> ConflictPolicy:
    if isinstance(value, ConflictPolicy):
        return value
    try:
        return ConflictPolicy(str(value).lower())
    except ValueError:
        raise ValueError(
            f"on_conflict must be one of insert, upsert, skip; got {value!r}"
        ) from None


def _read_config(cfg: StreamConfig) -> StreamConfig:
    return StreamConfig(batch_size=cfg.batch_size, prefetch=cfg.prefetch, timeout=cfg.timeout)


def _skip_query(query: AnyQuery | None, skip: int) -> AnyQuery | None:
    """``query`` skipping ``skip`` more records at the source, when that can be pushed down."""
    if skip <= 0:
        return query
    if query is None:
        return Query().offset(skip)
    if isinstance(query, Query) and not query.offset_value and query.limit_value is None:
        return query.copy().offset(skip)
    return None


def _check_partitions(partitions: int) -> None:
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a positive integer, got {partitions!r}")


class _Stop:
    """The write error handler: asks the user's ``on_error`` and remembers a refusal."""

    def __init__(self, on_error: ErrorHandler | None) -> None:
        self.on_error = on_error
        self.exc: BaseException | None = None

    def __call__(self, exc: Any, record: Record) -> bool:
        if self.on_error is not None and self.on_error(exc, record):
            return True
        self.exc = exc
        return False


class _Lane:
    """One partition's path to the target: transform, batch, write, commit.

    ``position`` counts the partition's source records whose outcome is final (written,
    skipped, or failed and let go by ``on_error``); it is what the checkpoint stores.
    """

    def __init__(
        self,
        index: int,
        fn: RecordFunction | None,
        cfg: StreamConfig,
        progress: MigrationProgress,
        lock: contextlib.AbstractContextManager[Any],
        checkpoint: Checkpoint | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.index = index
        self.fn = fn
        self.cfg = cfg
        self.progress = progress
        self.lock = lock
        self.checkpoint = checkpoint
        self.on_progress = on_progress
        self.position = checkpoint.committed[index] if checkpoint is not None else 0
        self.in_flight_until = checkpoint.in_flight_until[index] if checkpoint is not None else 0
        self.pending: list[Record] = []
        self.consumed = 0

    def feed(self, record: Record) -> bool:
        """Transform one source record into the pending batch; True when it is full."""
        self.consumed += 1
        try:
            out = self.fn(record) if self.fn is not None else record
        except Exception as exc:
            with self.lock:
                self.progress.record_failure(str(exc), record.id, exc)
            handler = self.cfg.on_error
            if handler is None or not handler(exc, record):
                raise
            return False
        if out is None:
            with self.lock:
                self.progress.record_skip("Filtered by transform", record.id)
            return False
        if out.id is None and record.id is not None:
            # Keyed by the source id, a re-run or a resume rewrites the same target record.
            out = with_id(out, record.id)
        self.pending.append(out)
        return len(self.pending) >= self.cfg.batch_size

    @property
    def has_work(self) -> bool:
        """Whether records were taken since the last commit."""
        return self.consumed > 0

    def take(self) -> tuple[list[Record], StreamConfig, _Stop]:
        """The pending batch and how to write it."""
        batch, self.pending = self.pending, []
        policy = self.cfg.on_conflict
        if policy == ConflictPolicy.INSERT:
            if self.position < self.in_flight_until:
                # The interrupted run may have stored part of this stretch already.
                policy = ConflictPolicy.UPSERT
            if self.checkpoint is not None and batch:
                # Only INSERT is not idempotent: a resume must know how far this batch reaches.
                self.checkpoint.begin(self.index, self.position + self.consumed)
        stop = _Stop(self.cfg.on_error)
        wcfg = StreamConfig(batch_size=max(1, len(batch)), on_error=stop, on_conflict=policy)
        return batch, wcfg, stop

    def settle(self, result: StreamResult | None, stop: _Stop) -> None:
        """Count a written batch, raise a refused failure, else commit the position."""
        with self.lock:
            progress = self.progress
            if result is not None:
                progress.processed += result.total_processed
                progress.succeeded += result.successful
                progress.failed += result.failed
                progress.skipped += result.skipped
                now = time.time()
                for err in result.errors:
                    progress.errors.append(
                        {
                            "error": err.get("error"),
                            "record_id": err.get("record_id"),
                            "timestamp": now,
                            "exception": err.get("error"),
                            "exception_type": err.get("type"),
                        }
                    )
            if stop.exc is not None:
                raise stop.exc
            self.position += self.consumed
            self.consumed = 0
            if self.checkpoint is not None:
                self.checkpoint.commit(self.index, self.position)
            if self.on_progress is not None:
                self.on_progress(progress)

    def write_sync(
        self, target: SyncDatabase, write_lock: contextlib.AbstractContextManager[Any]
    ) -> None:
        """Write the pending batch (if any) and commit."""
        batch, wcfg, stop = self.take()
        result = None
        if batch:
            with write_lock:
                result = target.stream_write(batch, wcfg)
        self.settle(result, stop)

    async def write_async(self, target: AsyncDatabase, write_lock: asyncio.Lock | None) -> None:
        """Async twin of :meth:`write_sync`."""
        batch, wcfg, stop = self.take()
        result = None
        if batch:
            if write_lock is None:
                result = await target.stream_write(batch, wcfg)
            else:
                async with write_lock:
                    result = await target.stream_write(batch, wcfg)
        self.settle(result, stop)


class _Job:
    """What every migration path sets up: config, progress, checkpoint, lanes."""

    def __init__(
        self,
        transform: TransformLike | None,
        cfg: StreamConfig,
        partitions: int,
        on_progress: ProgressCallback | None,
        checkpoint: PathLike | None,
        resume: bool,
        threaded: bool,
    ) -> None:
        _check_partitions(partitions)
        self.cfg = cfg
        self.partitions = partitions
        self.progress = MigrationProgress().start()
        self.checkpoint = (
            Checkpoint.open(checkpoint, partitions, cfg.batch_size, resume)
            if checkpoint is not None
            else None
        )
        self.lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if threaded else contextlib.nullcontext()
        )
        fn = as_record_function(transform)
        self.lanes = [
            _Lane(i, fn, cfg, self.progress, self.lock, self.checkpoint, on_progress)
            for i in range(partitions)
        ]
        self.on_progress = on_progress
        cp = self.checkpoint
        self.resumed = sum(cp.committed) if cp is not None and cp.resumed else 0
        self.already_done = cp is not None and cp.done
        self.progress.metadata["partitions"] = partitions
        if self.resumed:
            self.progress.metadata["resumed_from"] = self.resumed

    def set_total(self, count: int | None) -> None:
        if count is not None:
            self.progress.total = max(0, count - self.resumed)

    def finish(self) -> MigrationProgress:
        if self.checkpoint is not None and not self.checkpoint.done:
            self.checkpoint.finish()
        if self.already_done:
            self.progress.metadata["already_complete"] = True
        self.progress.finish()
        if self.on_progress is not None:
            self.on_progress(self.progress)
        return self.progress


def _shaped(count: int, query: AnyQuery | None) -> int:
    """How many records a stream of ``query`` yields, given ``count`` matches.

    ``count`` ignores offset and limit; the stream does not.
    """
    if query is None:
        return count
    offset = query.offset_value or 0
    limit = query.limit_value
    count = max(0, count - offset)
    return count if limit is None else min(count, limit)


def _count_sync(source: SyncDatabase, query: AnyQuery | None) -> int | None:
    try:
        return _shaped(source.count(query), query)
    except Exception:  # a total is only for progress display
        return None


async def _count_async(source: AsyncDatabase, query: AnyQuery | None) -> int | None:
    try:
        return _shaped(await source.count(query), query)
    except Exception:  # a total is only for progress display
        return None


def _require(kind: type[Any], method: str, **dbs: Any) -> None:
    for name, db in dbs.items():
        if not isinstance(db, kind):
            hint = "migrate_async" if isinstance(db, AsyncDatabase) else "migrate"
            raise TypeError(
                f"{method}() needs a {kind.__name__} as {name}, got {type(db).__name__}; "
                f"use {hint}() for it"
            )


class Migrator:
    """Streams records from a source database into a target, transforming them on the way.

    ``transform`` is a :class:`~.transformer.Transformer`, a :class:`~.migration.Migration`,
    an :class:`~.operations.Operation` or any function ``record -> record | None`` (None
    skips the record). Written records keep their source id.

    Resuming: with ``checkpoint=PATH`` the migrator records after every written batch how
    many source records are done (per partition), and ``resume=True`` continues from there.
    The source must not change in between, since the position is counted in its storage
    order. Records the interrupted batch may already have written are upserted (under
    ``ConflictPolicy.INSERT``), so the target ends with each source record exactly once.
    """

    # ----------------------------------------------------------------- sync, one stream

    def migrate(
        self,
        source: SyncDatabase,
        target: SyncDatabase,
        transform: TransformLike | None = None,
        query: AnyQuery | None = None,
        batch_size: int = 1000,
        on_progress: ProgressCallback | None = None,
        on_error: ErrorHandler | None = None,
        on_conflict: ConflictPolicy | str = ConflictPolicy.INSERT,
        *,
        checkpoint: PathLike | None = None,
        resume: bool = False,
    ) -> MigrationProgress:
        """Copy the records matching ``query`` from ``source`` to ``target``.

        Args:
            source: Database to read (streamed in pages of ``batch_size``).
            target: Database to write (in batches of ``batch_size`` with its bulk verbs).
            transform: Applied to each record on the way.
            query: Which source records (all when None).
            batch_size: Records per read page and write batch.
            on_progress: Called with the progress after every batch and at the end.
            on_error: ``on_error(exc, record) -> bool`` for a record that fails to transform
                or to be written; True goes on, False (or no handler) stops the migration by
                raising that exception.
            on_conflict: What to do with ids the target already has: INSERT (fail the
                record), UPSERT (replace) or SKIP (keep the stored one, count as skipped).
            checkpoint: JSON file recording progress after each committed batch.
            resume: Continue from ``checkpoint`` instead of starting over.

        Returns:
            The final :class:`MigrationProgress`.
        """
        cfg = StreamConfig(
            batch_size=batch_size, on_error=on_error, on_conflict=_policy(on_conflict)
        )
        return self.migrate_stream(
            source, target, transform, query, cfg, on_progress, checkpoint=checkpoint, resume=resume
        )

    def migrate_stream(
        self,
        source: SyncDatabase,
        target: SyncDatabase,
        transform: TransformLike | None = None,
        query: AnyQuery | None = None,
        config: StreamConfig | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        checkpoint: PathLike | None = None,
        resume: bool = False,
    ) -> MigrationProgress:
        """:meth:`migrate` with its settings in a StreamConfig (batch_size, prefetch,
        timeout, on_error, on_conflict)."""
        _require(SyncDatabase, "migrate_stream", source=source, target=target)
        cfg = config or StreamConfig()
        job = _Job(transform, cfg, 1, on_progress, checkpoint, resume, threaded=False)
        if job.already_done:
            return job.finish()
        job.set_total(_count_sync(source, query))
        lane = job.lanes[0]
        skip = lane.position
        pushed = _skip_query(query, skip)
        rcfg = _read_config(cfg)
        no_lock = contextlib.nullcontext()
        if pushed is not None or skip == 0:
            stream: Iterator[Record] = source.stream_read(pushed if skip else query, rcfg)
        else:
            stream = _drop(source.stream_read(query, rcfg), skip)
        for record in stream:
            if lane.feed(record):
                lane.write_sync(target, no_lock)
        if lane.has_work:
            lane.write_sync(target, no_lock)
        return job.finish()

    # ----------------------------------------------------------------- async, one stream

    async def migrate_async(
        self,
        source: AsyncDatabase,
        target: AsyncDatabase,
        transform: TransformLike | None = None,
        query: AnyQuery | None = None,
        config: StreamConfig | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        batch_size: int | None = None,
        on_error: ErrorHandler | None = None,
        on_conflict: ConflictPolicy | str | None = None,
        checkpoint: PathLike | None = None,
        resume: bool = False,
    ) -> MigrationProgress:
        """Async :meth:`migrate_stream` between async databases.

        ``batch_size``, ``on_error`` and ``on_conflict`` override the ``config`` values.
        """
        _require(AsyncDatabase, "migrate_async", source=source, target=target)
        cfg = _override(config, batch_size, on_error, on_conflict)
        job = _Job(transform, cfg, 1, on_progress, checkpoint, resume, threaded=False)
        if job.already_done:
            return job.finish()
        job.set_total(await _count_async(source, query))
        lane = job.lanes[0]
        skip = lane.position
        pushed = _skip_query(query, skip)
        rcfg = _read_config(cfg)
        if pushed is not None or skip == 0:
            stream = source.stream_read(pushed if skip else query, rcfg)
        else:
            stream = _adrop(source.stream_read(query, rcfg), skip)
        async for record in stream:
            if lane.feed(record):
                await lane.write_async(target, None)
        if lane.has_work:
            await lane.write_async(target, None)
        return job.finish()

    # ----------------------------------------------------------------- parallel

    @overload
    def migrate_parallel(
        self,
        source: SyncDatabase,
        target: SyncDatabase,
        transform: TransformLike | None = ...,
        partitions: int = ...,
        partition_field: str | None = ...,
        on_progress: ProgressCallback | None = ...,
        on_conflict: ConflictPolicy | str = ...,
        *,
        query: AnyQuery | None = ...,
        batch_size: int = ...,
        on_error: ErrorHandler | None = ...,
        checkpoint: PathLike | None = ...,
        resume: bool = ...,
    ) -> MigrationProgress: ...

    @overload
    def migrate_parallel(
        self,
        source: AsyncDatabase,
        target: AsyncDatabase,
        transform: TransformLike | None = ...,
        partitions: int = ...,
        partition_field: str | None = ...,
        on_progress: ProgressCallback | None = ...,
        on_conflict: ConflictPolicy | str = ...,
        *,
        query: AnyQuery | None = ...,
        batch_size: int = ...,
        on_error: ErrorHandler | None = ...,
        checkpoint: PathLike | None = ...,
        resume: bool = ...,
    ) -> Coroutine[Any, Any, MigrationProgress]: ...

    def migrate_parallel(
        self,
        source: SyncDatabase | AsyncDatabase,
        target: SyncDatabase | AsyncDatabase,
        transform: TransformLike | None = None,
        partitions: int = 4,
        partition_field: str | None = None,
        on_progress: ProgressCallback | None = None,
        on_conflict: ConflictPolicy | str = ConflictPolicy.INSERT,
        *,
        query: AnyQuery | None = None,
        batch_size: int = 1000,
        on_error: ErrorHandler | None = None,
        checkpoint: PathLike | None = None,
        resume: bool = False,
    ) -> MigrationProgress | Coroutine[Any, Any, MigrationProgress]:
        """Migrate in ``partitions`` concurrent partitions; every record exactly once.

        A record's partition is a stable hash (blake2b) of its id, or of the value of
        ``partition_field`` when given, modulo ``partitions`` (API.md §9 **Fix**: the
        original filtered on ``partition_field == i`` and lost every other record).

        Sync databases: one reader routes records by hash to one writer thread per
        partition. Async databases: returns a coroutine running one task per partition,
        each over its own filtered stream of the source. The other arguments are those of
        :meth:`migrate`; the checkpoint keeps one position per partition.
        """
        cfg = StreamConfig(
            batch_size=batch_size, on_error=on_error, on_conflict=_policy(on_conflict)
        )
        if isinstance(source, AsyncDatabase) and isinstance(target, AsyncDatabase):
            return self._parallel_async(
                source, target, transform, partitions, partition_field, on_progress,
                query, cfg, checkpoint, resume,
            )  # fmt: skip
        _require(SyncDatabase, "migrate_parallel", source=source, target=target)
        assert isinstance(source, SyncDatabase) and isinstance(target, SyncDatabase)
        return self._parallel_sync(
            source, target, transform, partitions, partition_field, on_progress,
            query, cfg, checkpoint, resume,
        )  # fmt: skip

    async def migrate_parallel_async(
        self,
        source: AsyncDatabase,
        target: AsyncDatabase,
        transform: TransformLike | None = None,
        partitions: int = 4,
        partition_field: str | None = None,
        on_progress: ProgressCallback | None = None,
        on_conflict: ConflictPolicy | str = ConflictPolicy.INSERT,
        *,
        query: AnyQuery | None = None,
        batch_size: int = 1000,
        on_error: ErrorHandler | None = None,
        checkpoint: PathLike | None = None,
        resume: bool = False,
    ) -> MigrationProgress:
        """:meth:`migrate_parallel` for async databases, as a coroutine function."""
        _require(AsyncDatabase, "migrate_parallel_async", source=source, target=target)
        cfg = StreamConfig(
            batch_size=batch_size, on_error=on_error, on_conflict=_policy(on_conflict)
        )
        return await self._parallel_async(
            source, target, transform, partitions, partition_field, on_progress,
            query, cfg, checkpoint, resume,
        )  # fmt: skip

    def _parallel_sync(
        self,
        source: SyncDatabase,
        target: SyncDatabase,
        transform: TransformLike | None,
        partitions: int,
        partition_field: str | None,
        on_progress: ProgressCallback | None,
        query: AnyQuery | None,
        cfg: StreamConfig,
        checkpoint: PathLike | None,
        resume: bool,
    ) -> MigrationProgress:
        job = _Job(transform, cfg, partitions, on_progress, checkpoint, resume, threaded=True)
        if job.already_done:
            return job.finish()
        job.set_total(_count_sync(source, query))
        # Backends may not take concurrent writes (the Parquet file rewrites itself from a
        # snapshot); one batch write at a time still overlaps reads and transforms.
        write_lock = threading.Lock()
        # Bounded hand-off queues keep memory at a few batches per partition.
        queues: list[queue.Queue[list[Record] | None]] = [
            queue.Queue(maxsize=2) for _ in range(partitions)
        ]
        failures: list[BaseException] = []
        abort = threading.Event()

        def work(lane: _Lane) -> None:
            q = queues[lane.index]
            while (chunk := q.get()) is not None:
                if abort.is_set():
                    continue  # keep draining so the reader never blocks on a full queue
                try:
                    for record in chunk:
                        if lane.feed(record):
                            lane.write_sync(target, write_lock)
                except BaseException as exc:
                    failures.append(exc)
                    abort.set()
            if not abort.is_set() and lane.has_work:
                try:
                    lane.write_sync(target, write_lock)
                except BaseException as exc:
                    failures.append(exc)
                    abort.set()

        threads = [
            threading.Thread(target=work, args=(lane,), name=f"dkdata-migrate-{lane.index}")
            for lane in job.lanes
        ]
        for t in threads:
            t.start()
        try:
            skip = [lane.position for lane in job.lanes]
            buffers: list[list[Record]] = [[] for _ in range(partitions)]
            size = cfg.batch_size
            for record in source.stream_read(query, _read_config(cfg)):
                if abort.is_set():
                    break
                p = partition_of(_partition_key(record, partition_field), partitions)
                if skip[p]:
                    skip[p] -= 1
                    continue
                buf = buffers[p]
                buf.append(record)
                if len(buf) >= size:
                    queues[p].put(buf)
                    buffers[p] = []
            for p, buf in enumerate(buffers):
                if buf and not abort.is_set():
                    queues[p].put(buf)
        except BaseException:
            # Interrupted reader (Ctrl-C, a source error): writers drop what is queued.
            abort.set()
            raise
        finally:
            for q in queues:
                q.put(None)
            for t in threads:
                t.join()
        if failures:
            raise failures[0]
        return job.finish()

    async def _parallel_async(
        self,
        source: AsyncDatabase,
        target: AsyncDatabase,
        transform: TransformLike | None,
        partitions: int,
        partition_field: str | None,
        on_progress: ProgressCallback | None,
        query: AnyQuery | None,
        cfg: StreamConfig,
        checkpoint: PathLike | None,
        resume: bool,
    ) -> MigrationProgress:
        job = _Job(transform, cfg, partitions, on_progress, checkpoint, resume, threaded=False)
        if job.already_done:
            return job.finish()
        job.set_total(await _count_async(source, query))
        # See _parallel_sync: one write at a time is safe for every backend.
        write_lock = asyncio.Lock()
        rcfg = _read_config(cfg)

        async def run(lane: _Lane) -> None:
            skip = lane.position
            async for record in source.stream_read(query, rcfg):
                if partition_of(_partition_key(record, partition_field), partitions) != lane.index:
                    continue
                if skip:
                    skip -= 1
                    continue
                if lane.feed(record):
                    await lane.write_async(target, write_lock)
            if lane.has_work:
                await lane.write_async(target, write_lock)

        tasks = [asyncio.ensure_future(run(lane)) for lane in job.lanes]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return job.finish()

    # ----------------------------------------------------------------- validation

    def validate_migration(
        self,
        source: SyncDatabase,
        target: SyncDatabase,
        query: AnyQuery | None = None,
        sample_size: int | None = None,
        transform: TransformLike | None = None,
    ) -> tuple[bool, list[str]]:
        """Check a finished migration: ``(ok, issues)``.

        The target must hold as many records as the source has (matching ``query`` and not
        dropped by ``transform``), and each sampled source record — the first
        ``sample_size`` in storage order, or all of them — must be stored under its id with
        the data and metadata ``transform`` makes of it. Streams both sides in batches.
        """
        fn = as_record_function(transform)
        checker = _Validator(fn, sample_size)
        for record in source.stream_read(query, StreamConfig(batch_size=_CHECK_BATCH)):
            if checker.add(record):
                checker.compare(target.read_batch(checker.ids()))
            elif checker.done and fn is None:
                break
        if checker.batch:
            checker.compare(target.read_batch(checker.ids()))
        expected = checker.expected if fn is not None else _shaped(source.count(query), query)
        return checker.result(expected, target.count())

    async def validate_migration_async(
        self,
        source: AsyncDatabase,
        target: AsyncDatabase,
        query: AnyQuery | None = None,
        sample_size: int | None = None,
        transform: TransformLike | None = None,
    ) -> tuple[bool, list[str]]:
        """Async :meth:`validate_migration`."""
        fn = as_record_function(transform)
        checker = _Validator(fn, sample_size)
        async for record in source.stream_read(query, StreamConfig(batch_size=_CHECK_BATCH)):
            if checker.add(record):
                checker.compare(await target.read_batch(checker.ids()))
            elif checker.done and fn is None:
                break
        if checker.batch:
            checker.compare(await target.read_batch(checker.ids()))
        matches = None if fn is not None else await source.count(query)
        expected = checker.expected if matches is None else _shaped(matches, query)
        return checker.result(expected, await target.count())


_CHECK_BATCH = 500
_MAX_ISSUES = 100


class _Validator:
    """Compares source records (transformed) with what the target stores, batch by batch."""

    def __init__(self, fn: RecordFunction | None, sample_size: int | None) -> None:
        self.fn = fn
        self.sample_size = sample_size
        self.expected = 0
        self.sampled = 0
        self.batch: list[Record] = []
        self.issues: list[str] = []

    @property
    def done(self) -> bool:
        return self.sample_size is not None and self.sampled >= self.sample_size

    def add(self, record: Record) -> bool:
        """Take a source record; True when a batch is ready to compare."""
        out = self.fn(record) if self.fn is not None else record
        if out is None:
            return False
        self.expected += 1
        if self.done:
            return False
        if out.id is None:
            out = with_id(out, record.id or "")
        self.batch.append(out)
        self.sampled += 1
        return len(self.batch) >= _CHECK_BATCH

    def ids(self) -> list[str]:
        return [r.id or "" for r in self.batch]

    def compare(self, stored: list[Record | None]) -> None:
        for want, got in zip(self.batch, stored, strict=True):
            if got is None:
                self._issue(f"Record {want.id} not found in target")
            elif got.data != want.data:
                self._issue(f"Record {want.id} differs in target: {_diff(want.data, got.data)}")
            elif got.metadata != want.metadata:
                self._issue(f"Record {want.id} metadata differs in target")
        self.batch = []

    def _issue(self, text: str) -> None:
        if len(self.issues) < _MAX_ISSUES:
            self.issues.append(text)

    def result(self, expected: int, actual: int) -> tuple[bool, list[str]]:
        issues = list(self.issues)
        if expected != actual:
            issues.insert(0, f"Record count mismatch: source={expected}, target={actual}")
        return not issues, issues


def _diff(want: dict[str, Any], got: dict[str, Any]) -> str:
    for name in want.keys() | got.keys():
        if name not in got:
            return f"field '{name}' missing"
        if name not in want:
            return f"unexpected field '{name}'"
        if want[name] != got[name]:
            return f"field '{name}' is {got[name]!r}, expected {want[name]!r}"
    return "field types differ"


def _drop(stream: Iterator[Record], n: int) -> Iterator[Record]:
    for record in stream:
        if n:
            n -= 1
            continue
        yield record


async def _adrop(stream: AsyncIterator[Record], n: int) -> AsyncIterator[Record]:
    async for record in stream:
        if n:
            n -= 1
            continue
        yield record


def _override(
    config: StreamConfig | None,
    batch_size: int | None,
    on_error: ErrorHandler | None,
    on_conflict: ConflictPolicy | str | None,
) -> StreamConfig:
    base = config or StreamConfig()
    return StreamConfig(
        batch_size=base.batch_size if batch_size is None else batch_size,
        prefetch=base.prefetch,
        timeout=base.timeout,
        on_error=base.on_error if on_error is None else on_error,
        on_conflict=base.on_conflict if on_conflict is None else _policy(on_conflict),
    )
