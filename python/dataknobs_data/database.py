"""The database ABCs: one surface, sync and async (API.md §4, §7).

`AsyncDatabase` and `SyncDatabase` declare the five verbs a backend must implement (create,
read, update, delete, search) and give every other verb a default built on them, so a user
subclass works with only those five. Our own backends override the defaults with native batch
operations.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from .exceptions import ConfigurationError, DuplicateRecordError
from .query import Query
from .query_logic import ComplexQuery
from .records import Record
from .streaming import ConflictPolicy, StreamConfig, StreamResult, aiterate

if TYPE_CHECKING:
    from .validation.guard import SchemaGuard
    from .validation.schema import Schema

AnyQuery = Query | ComplexQuery
_AsyncSelf = TypeVar("_AsyncSelf", bound="AsyncDatabase")
_SyncSelf = TypeVar("_SyncSelf", bound="SyncDatabase")


def check_config(owner: str, accepted: frozenset[str] | None, config: Mapping[str, Any]) -> None:
    """Raise ConfigurationError for the first key of ``config`` that ``accepted`` lacks.

    ``accepted=None`` means the backend takes any key (user subclasses that predate the check).
    """
    if accepted is None:
        return
    for key in config:
        if key not in accepted:
            names = ", ".join(sorted(accepted)) if accepted else "none"
            raise ConfigurationError(
                key, f"unknown option for the {owner} backend; accepted keys: {names}"
            )


def attach_schema(db: _Configured, config: dict[str, Any], is_async: bool) -> None:
    """Handle the ``schema`` and ``schema_coerce`` keys every backend accepts.

    They are taken out of ``config`` (so backends never see them); with a schema, the
    database's write verbs validate every record first (``validation.guard``).
    """
    if "schema" in config or "schema_coerce" in config:
        # Imported here: databases without a schema never load the validation package.
        from .validation.guard import attach_schema as attach

        attach(db, config, is_async)


def record_id_for_write(record: Record) -> str:
    """The id a new record is stored under: its own, or a fresh uuid4."""
    return record.id if record.id is not None else str(uuid.uuid4())


def with_id(record: Record, record_id: str) -> Record:
    """A copy of ``record`` whose id is ``record_id`` (the caller's record is not mutated)."""
    copy = record.copy(deep=True)
    copy.id = record_id
    return copy


def split_upsert(id_or_record: str | Record, record: Record | None) -> tuple[str, Record]:
    """Normalise ``upsert(record)`` and ``upsert(id, record)`` to (id, record)."""
    if isinstance(id_or_record, Record):
        return record_id_for_write(id_or_record), id_or_record
    if record is None:
        raise TypeError("upsert(id, record) needs a record when the first argument is an id")
    return id_or_record, record


def _duplicate_in(records: Sequence[Record]) -> str | None:
    seen: set[str] = set()
    for record in records:
        rid = record.id
        if rid is None:
            continue
        if rid in seen:
            return rid
        seen.add(rid)
    return None


class _WriteTally:
    """Bookkeeping for stream_write: counts, per-record errors with global indices, stop rule."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.result = StreamResult()
        self.started = time.perf_counter()
        self.stopped = False

    def batch_written(self, size: int) -> None:
        self.result.total_processed += size
        self.result.successful += size

    def batch_skipped(self, stored: Sequence[bool]) -> None:
        self.result.total_processed += len(stored)
        kept = sum(1 for ok in stored if ok)
        self.result.successful += kept
        self.result.skipped += len(stored) - kept

    def record_ok(self) -> None:
        self.result.total_processed += 1
        self.result.successful += 1

    def record_failed(self, record: Record, index: int, exc: BaseException) -> None:
        self.result.total_processed += 1
        self.result.failed += 1
        self.result.add_error(record.id, exc, index)
        handler = self.config.on_error
        if handler is None or not handler(exc, record):
            self.stopped = True

    def finish(self) -> StreamResult:
        self.result.duration = time.perf_counter() - self.started
        return self.result


# One database call of a write plan: (method name, its single argument).
_Step = tuple[str, Any]
_Plan = Generator[_Step, Any, None]


def _write_batch_plan(batch: list[Record], first_index: int, tally: _WriteTally) -> _Plan:
    """How stream_write stores one batch, written once for the sync and async databases.

    The plan yields the calls to make; the driver sends back each result, or the exception
    the call raised. A failed bulk call is retried record by record so every failure is
    counted with its global index.
    """
    policy = tally.config.on_conflict
    if policy == ConflictPolicy.SKIP:
        bulk, single = "_create_missing", "create"
    elif policy == ConflictPolicy.UPSERT:
        bulk, single = "upsert_batch", "upsert"
    else:
        bulk, single = "create_batch", "create"
    outcome = yield (bulk, batch)
    tally.result.total_batches += 1
    if not isinstance(outcome, BaseException) and len(outcome) == len(batch):
        if policy == ConflictPolicy.SKIP:
            tally.batch_skipped(outcome)
        else:
            tally.batch_written(len(batch))
        return
    for offset, record in enumerate(batch):
        outcome = yield (single, record)
        if isinstance(outcome, BaseException):
            tally.record_failed(record, first_index + offset, outcome)
            if tally.stopped:
                return
        else:
            tally.record_ok()


def _advance(plan: _Plan, outcome: Any) -> _Step | None:
    try:
        return plan.send(outcome)
    except StopIteration:
        return None


class _Configured:
    """Configuration shared by both database faces: accepted keys, the optional schema."""

    #: Config keys the backend accepts; None accepts any (for user subclasses).
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = None
    BACKEND_NAME: ClassVar[str] = "custom"
    _IS_ASYNC: ClassVar[bool]
    #: Validates written records when the config has ``schema`` (see attach_schema).
    _schema_guard: SchemaGuard | None = None

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        attach_schema(self, self.config, is_async=self._IS_ASYNC)
        check_config(self.BACKEND_NAME, self.CONFIG_KEYS, self.config)

    @property
    def validation_schema(self) -> Schema | None:
        """The schema every written record is validated against (config key ``schema``)."""
        guard = self._schema_guard
        return None if guard is None else guard.schema

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> Self:
        """Build an instance from a config mapping (not yet connected)."""
        return cls(config)


class AsyncDatabase(_Configured, ABC):
    """Asynchronous database: every method is awaited (``async with`` connects and closes)."""

    _IS_ASYNC = True

    @classmethod
    async def from_backend(
        cls, backend: str, config: Mapping[str, Any] | None = None
    ) -> AsyncDatabase:
        """Build the named backend (``"sqlite"``, ``"memory"``...) and connect it."""
        from .factory import async_database_factory

        db = async_database_factory.create(backend=backend, **dict(config or {}))
        await db.connect()
        return db

    async def connect(self) -> None:  # optional hook
        """Open connections or files; a no-op by default."""

    async def close(self) -> None:  # optional hook
        """Release resources; idempotent."""

    async def disconnect(self) -> None:
        """Alias of :meth:`close`."""
        await self.close()

    async def __aenter__(self: _AsyncSelf) -> _AsyncSelf:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def create(self, record: Record) -> str:
        """Store a copy of ``record``; return its id. An existing id raises DuplicateRecordError."""

    @abstractmethod
    async def read(self, id: str) -> Record | None:
        """The record stored under ``id`` (a copy), or None."""

    @abstractmethod
    async def update(self, id: str, record: Record) -> bool:
        """Replace the record under ``id``; False when there is none."""

    @abstractmethod
    async def delete(self, id: str) -> bool:
        """Remove the record under ``id``; False when there is none."""

    @abstractmethod
    async def search(self, query: AnyQuery) -> list[Record]:
        """Records matching ``query``, shaped by its sort, offset, limit and projection."""

    async def exists(self, id: str) -> bool:
        """Whether a record is stored under ``id``."""
        return await self.read(id) is not None

    async def upsert(self, id_or_record: str | Record, record: Record | None = None) -> str:
        """Write ``record`` under the id, creating or replacing it; return the id."""
        record_id, rec = split_upsert(id_or_record, record)
        if not await self.update(record_id, rec):
            await self.create(with_id(rec, record_id))
        return record_id

    async def count(self, query: AnyQuery | None = None) -> int:
        """How many records match ``query`` (all when None)."""
        return len(await self.search(query if query is not None else Query()))

    async def all(self) -> list[Record]:
        """Every record, in storage order."""
        return await self.search(Query())

    async def clear(self) -> int:
        """Remove every record; return how many were removed."""
        removed = 0
        for record in await self.all():
            if record.id is not None and await self.delete(record.id):
                removed += 1
        return removed

    async def create_batch(self, records: Sequence[Record]) -> list[str]:
        """Create all or nothing: any id collision raises before anything is written."""
        dup = _duplicate_in(records)
        if dup is not None:
            raise DuplicateRecordError(dup)
        for record in records:
            if record.id is not None and await self.exists(record.id):
                raise DuplicateRecordError(record.id)
        return [await self.create(record) for record in records]

    async def read_batch(self, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids``, in input order (None where missing)."""
        return [await self.read(i) for i in ids]

    async def delete_batch(self, ids: Sequence[str]) -> list[bool]:
        """Delete each id; True where something was removed."""
        return [await self.delete(i) for i in ids]

    async def update_batch(self, updates: Sequence[tuple[str, Record]]) -> list[bool]:
        """Replace each ``(id, record)``; False where the id is missing."""
        return [await self.update(i, r) for i, r in updates]

    async def upsert_batch(self, records: Sequence[Record]) -> list[str]:
        """Upsert each record under its id (a new uuid4 when it has none)."""
        return [await self.upsert(r) for r in records]

    async def _create_missing(self, records: Sequence[Record]) -> list[bool]:
        """Create the records whose id is absent (ConflictPolicy.SKIP)."""
        stored: list[bool] = []
        for record in records:
            if record.id is not None and await self.exists(record.id):
                stored.append(False)
            else:
                await self.create(record)
                stored.append(True)
        return stored

    async def stream_read(
        self, query: AnyQuery | None = None, config: StreamConfig | None = None
    ) -> AsyncIterator[Record]:
        """Yield matching records page by page."""
        for record in await self.search(query if query is not None else Query()):
            yield record

    async def _write_batch(self, batch: list[Record], first_index: int, tally: _WriteTally) -> None:
        plan = _write_batch_plan(batch, first_index, tally)
        step = next(plan, None)
        while step is not None:
            name, arg = step
            try:
                outcome: Any = await getattr(self, name)(arg)
            except Exception as exc:  # handed to the plan, which reports it
                outcome = exc
            step = _advance(plan, outcome)

    async def stream_write(
        self,
        records: Iterable[Record] | AsyncIterable[Record],
        config: StreamConfig | None = None,
    ) -> StreamResult:
        """Write records in batches with the bulk path; failed batches retry record by record."""
        tally = _WriteTally(config or StreamConfig())
        size = tally.config.batch_size
        batch: list[Record] = []
        index = 0
        async for record in aiterate(records):
            batch.append(record)
            if len(batch) >= size:
                await self._write_batch(batch, index, tally)
                index += len(batch)
                batch = []
                if tally.stopped:
                    return tally.finish()
        if batch:
            await self._write_batch(batch, index, tally)
        return tally.finish()

    async def stream_transform(
        self,
        query: AnyQuery | None = None,
        transform: Callable[[Record], Record | None] | None = None,
        config: StreamConfig | None = None,
    ) -> StreamResult:
        """Rewrite each matching record with ``transform`` (None drops it from the write).

        The transformed records are upserted back under their ids, batch by batch.
        """
        cfg = config or StreamConfig()
        rewrite = _Rewrite(transform)
        source = self.stream_read(query, cfg)
        outcome = await self.stream_write(rewrite.apply_async(source), _upsert_config(cfg))
        return rewrite.finish(outcome)


class SyncDatabase(_Configured, ABC):
    """Synchronous database: the same surface as :class:`AsyncDatabase`, returning values."""

    _IS_ASYNC = False

    @classmethod
    def from_backend(cls, backend: str, config: Mapping[str, Any] | None = None) -> SyncDatabase:
        """Build the named backend (``"sqlite"``, ``"memory"``...) and connect it."""
        from .factory import database_factory

        db = database_factory.create(backend=backend, **dict(config or {}))
        db.connect()
        return db

    def connect(self) -> None:  # optional hook
        """Open connections or files; a no-op by default."""

    def close(self) -> None:  # optional hook
        """Release resources; idempotent."""

    def disconnect(self) -> None:
        """Alias of :meth:`close`."""
        self.close()

    def __enter__(self: _SyncSelf) -> _SyncSelf:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def create(self, record: Record) -> str:
        """Store a copy of ``record``; return its id. An existing id raises DuplicateRecordError."""

    @abstractmethod
    def read(self, id: str) -> Record | None:
        """The record stored under ``id`` (a copy), or None."""

    @abstractmethod
    def update(self, id: str, record: Record) -> bool:
        """Replace the record under ``id``; False when there is none."""

    @abstractmethod
    def delete(self, id: str) -> bool:
        """Remove the record under ``id``; False when there is none."""

    @abstractmethod
    def search(self, query: AnyQuery) -> list[Record]:
        """Records matching ``query``, shaped by its sort, offset, limit and projection."""

    def exists(self, id: str) -> bool:
        """Whether a record is stored under ``id``."""
        return self.read(id) is not None

    def upsert(self, id_or_record: str | Record, record: Record | None = None) -> str:
        """Write ``record`` under the id, creating or replacing it; return the id."""
        record_id, rec = split_upsert(id_or_record, record)
        if not self.update(record_id, rec):
            self.create(with_id(rec, record_id))
        return record_id

    def count(self, query: AnyQuery | None = None) -> int:
        """How many records match ``query`` (all when None)."""
        return len(self.search(query if query is not None else Query()))

    def all(self) -> list[Record]:
        """Every record, in storage order."""
        return self.search(Query())

    def clear(self) -> int:
        """Remove every record; return how many were removed."""
        return sum(1 for r in self.all() if r.id is not None and self.delete(r.id))

    def create_batch(self, records: Sequence[Record]) -> list[str]:
        """Create all or nothing: any id collision raises before anything is written."""
        dup = _duplicate_in(records)
        if dup is not None:
            raise DuplicateRecordError(dup)
        for record in records:
            if record.id is not None and self.exists(record.id):
                raise DuplicateRecordError(record.id)
        return [self.create(record) for record in records]

    def read_batch(self, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids``, in input order (None where missing)."""
        return [self.read(i) for i in ids]

    def delete_batch(self, ids: Sequence[str]) -> list[bool]:
        """Delete each id; True where something was removed."""
        return [self.delete(i) for i in ids]

    def update_batch(self, updates: Sequence[tuple[str, Record]]) -> list[bool]:
        """Replace each ``(id, record)``; False where the id is missing."""
        return [self.update(i, r) for i, r in updates]

    def upsert_batch(self, records: Sequence[Record]) -> list[str]:
        """Upsert each record under its id (a new uuid4 when it has none)."""
        return [self.upsert(r) for r in records]

    def _create_missing(self, records: Sequence[Record]) -> list[bool]:
        """Create the records whose id is absent (ConflictPolicy.SKIP)."""
        stored: list[bool] = []
        for record in records:
            if record.id is not None and self.exists(record.id):
                stored.append(False)
            else:
                self.create(record)
                stored.append(True)
        return stored

    def stream_read(
        self, query: AnyQuery | None = None, config: StreamConfig | None = None
    ) -> Iterator[Record]:
        """Yield matching records page by page."""
        yield from self.search(query if query is not None else Query())

    def _write_batch(self, batch: list[Record], first_index: int, tally: _WriteTally) -> None:
        plan = _write_batch_plan(batch, first_index, tally)
        step = next(plan, None)
        while step is not None:
            name, arg = step
            try:
                outcome: Any = getattr(self, name)(arg)
            except Exception as exc:  # handed to the plan, which reports it
                outcome = exc
            step = _advance(plan, outcome)

    def stream_write(
        self, records: Iterable[Record], config: StreamConfig | None = None
    ) -> StreamResult:
        """Write records in batches with the bulk path; failed batches retry record by record."""
        tally = _WriteTally(config or StreamConfig())
        size = tally.config.batch_size
        batch: list[Record] = []
        index = 0
        for record in records:
            batch.append(record)
            if len(batch) >= size:
                self._write_batch(batch, index, tally)
                index += len(batch)
                batch = []
                if tally.stopped:
                    return tally.finish()
        if batch:
            self._write_batch(batch, index, tally)
        return tally.finish()

    def stream_transform(
        self,
        query: AnyQuery | None = None,
        transform: Callable[[Record], Record | None] | None = None,
        config: StreamConfig | None = None,
    ) -> StreamResult:
        """Rewrite each matching record with ``transform`` (None drops it from the write).

        The transformed records are upserted back under their ids, batch by batch.
        """
        cfg = config or StreamConfig()
        rewrite = _Rewrite(transform)
        outcome = self.stream_write(
            rewrite.apply(self.stream_read(query, cfg)), _upsert_config(cfg)
        )
        return rewrite.finish(outcome)


class _Rewrite:
    """stream_transform's record step: transform, count the dropped, keep the source id."""

    def __init__(self, transform: Callable[[Record], Record | None] | None) -> None:
        self.transform = transform
        self.dropped = 0

    def one(self, record: Record) -> Record | None:
        out = self.transform(record) if self.transform is not None else record
        if out is None:
            self.dropped += 1
            return None
        if out.id is None:
            out = with_id(out, record.id or record_id_for_write(out))
        return out

    def apply(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            out = self.one(record)
            if out is not None:
                yield out

    async def apply_async(self, records: AsyncIterable[Record]) -> AsyncIterator[Record]:
        async for record in records:
            out = self.one(record)
            if out is not None:
                yield out

    def finish(self, written: StreamResult) -> StreamResult:
        written.total_processed += self.dropped
        written.skipped += self.dropped
        return written


def _upsert_config(cfg: StreamConfig) -> StreamConfig:
    return StreamConfig(
        batch_size=cfg.batch_size,
        prefetch=cfg.prefetch,
        timeout=cfg.timeout,
        on_error=cfg.on_error,
        on_conflict=ConflictPolicy.UPSERT,
    )
