"""The shared face of the backends whose storage lives in the Rust core.

A backend class only says how to open its native store (``_open_store``). Every verb converts
records to rows once per batch, calls the store (sync: GIL released; async: an awaitable over
the same Rust operation) and turns the rows it gets back into records. The sync and async
classes share all of it but the final call.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import length_hint
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .. import _native
from ..aggregation import Metrics, aggregation_spec
from ..arrow import arrow_spec, picked_fields
from ..database import (
    AnyQuery,
    AsyncDatabase,
    SyncDatabase,
    enforce_content_version,
    record_id_for_write,
    split_upsert,
)
from ..exceptions import DatabaseError
from ..observability import StreamOp, counts_itself
from ..query_logic import to_spec
from ..records import Record
from ..streaming import StreamConfig

if TYPE_CHECKING:
    import pyarrow as pa

    from ..transactions import Batch

Row = tuple[str, dict[str, Any], dict[str, Any]]
T = TypeVar("T")

#: Batches at least this large are built with the cyclic GC paused.
_GC_PAUSE_MIN = 256


def _without_gc(build: Callable[[], T], size: int) -> T:
    """``build()`` with Python's cyclic GC paused when the batch is large.

    Every dict and tuple made counts toward a collection, and while a batch of thousands is
    built the collector walks every live object several times over (100,000 rows for a write:
    0.26 s with it, 0.08 s without). The pause ends with the call, also on error, and leaves a
    collector someone else disabled alone.
    """
    if size < _GC_PAUSE_MIN or not gc.isenabled():
        return build()
    gc.disable()
    try:
        return build()
    finally:
        gc.enable()


def row_for_write(record: Record, record_id: str | None = None) -> Row:
    """The row for ``record`` stored under ``record_id`` (default: its id or a new uuid4)."""
    rid, data, metadata = record._to_row()
    if record_id is None:
        record_id = rid if rid is not None else record_id_for_write(record)
    return (record_id, data, metadata)


def rows_for_write(records: Sequence[Record]) -> list[Row]:
    """Rows for a batch; records without an id get a new uuid4."""
    return _without_gc(lambda: [row_for_write(r) for r in records], len(records))


def record_or_none(row: Row | None) -> Record | None:
    """The record for a row read back from the store (built natively, as
    ``records_from_rows`` builds a page's)."""
    record: Record | None = _native.record_or_none(Record, row)
    return record


def records_from_rows(rows: list[Row]) -> list[Record]:
    """Records for a page of rows, as ``Record._from_row`` builds them, made natively."""
    return _without_gc(lambda: _native.records_from_rows(Record, rows), len(rows))


#: Records made per native call while streaming: few enough that a consumer dropping each
#: record keeps the GC's young generation small (see ``Cursor.take_records``), enough that
#: the call is a small part of the cost.
_TAKE = 64


def record_chunks(cursor: Any, timeout: float | None) -> Iterator[list[Record]]:
    """A stream's records, a few at a time (``_TAKE``) from a native cursor, a page at a time
    from a Python one (DuckDB's)."""
    take = getattr(cursor, "take_records", None)
    if take is None:
        while (rows := cursor.next_page(timeout)) is not None:
            yield records_from_rows(rows)
        return
    while (records := take(Record, _TAKE, timeout)) is not None:
        yield records


class _NativeStoreHolder:
    """Opens the store on first use, reopens after ``connect`` and refuses use after close."""

    BACKEND_NAME: ClassVar[str]
    config: dict[str, Any]
    #: Whether the async face calls the blocking method inline: only for stores whose every
    #: operation is in-memory and short (memory), where a hop to the runtime costs more.
    ASYNC_INLINE: ClassVar[bool] = False

    _store: Any = None
    _closed: bool = False

    def _open_store(self) -> Any:
        raise NotImplementedError

    def _after_close(self) -> None:
        """Hook for backends that own temporary resources."""

    def _ensure_store(self) -> Any:
        store = self._store
        if store is None:
            if self._closed:
                raise DatabaseError(f"{self.BACKEND_NAME} database is closed")
            store = self._store = self._open_store()
        return store

    def _open(self) -> None:
        self._closed = False
        self._ensure_store()

    def supports_transactions(self) -> bool:
        """Whether the store applies a transaction's batches in one server transaction."""
        return bool(self._ensure_store().is_transactional())

    def _native_batches(self, batches: Sequence[Batch]) -> list[tuple[str, list[Any]]]:
        """A commit's batches as the store's ``apply`` takes them, records validated first
        when the database has a schema (the commit bypasses the guarded verbs)."""
        guard = getattr(self, "_schema_guard", None)
        out: list[tuple[str, list[Any]]] = []
        for kind, items in batches:
            if kind == "delete":
                out.append((kind, list(items)))
            else:
                records = guard.many(items) if guard is not None else items
                out.append((kind, rows_for_write(records)))
        return out

    def _native_writer(self, name: str) -> Any | None:
        # A validation schema checks each record in Python; DuckDB's store is Python's own.
        if getattr(self, "_schema_guard", None) is not None:
            return None
        return getattr(self._ensure_store(), name, None)

    def _shut(self) -> None:
        store, self._store = self._store, None
        if not self._closed:
            self._closed = True
            if store is not None:
                store.close()
            self._after_close()


#: The verbs of the native classes that call no other verb (observability's leaf wrappers):
#: update, delete and upsert read first with an ``expected_version``, so they are not here.
NATIVE_LEAF_VERBS = frozenset(
    {
        "create",
        "read",
        "exists",
        "search",
        "count",
        "aggregate",
        "clear",
        "all",
        "create_batch",
        "read_batch",
        "delete_batch",
        "update_batch",
        "upsert_batch",
        "_apply_batches",
    }
)


class NativeSyncDatabase(_NativeStoreHolder, SyncDatabase):
    """Sync database over a native store."""

    LEAF_VERBS: ClassVar[frozenset[str]] = NATIVE_LEAF_VERBS

    def connect(self) -> None:
        """Open the store (also done on first use)."""
        self._open()

    def close(self) -> None:
        """Close the store; idempotent."""
        self._shut()

    def _call(self, name: str, *args: Any) -> Any:
        return getattr(self._ensure_store(), name)(*args)

    def create(self, record: Record) -> str:
        """Store a copy of ``record``; return its id."""
        ids: list[str] = self._call("create_batch", [row_for_write(record)])
        return ids[0]

    def read(self, id: str) -> Record | None:
        """The record under ``id`` or None."""
        # The store's method straight, not through ``_call``: a lone read is all overhead.
        store = self._store
        if store is None:
            store = self._ensure_store()
        record: Record | None = _native.record_or_none(Record, store.read_batch([id])[0])
        return record

    def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
        """Replace the record under ``id``; False when missing (conditional on
        ``expected_version`` when given: ConcurrencyError if the token is stale)."""
        row = row_for_write(record, id)
        if expected_version is None:
            return bool(self._call("update_batch", [row])[0])
        with self._version_lock():
            current = self.read(id)
            if current is None:
                return False
            enforce_content_version(id, expected_version, current)
            return bool(self._call("update_batch", [row])[0])

    def upsert(
        self,
        id_or_record: str | Record,
        record: Record | None = None,
        *,
        expected_version: str | None = None,
    ) -> str:
        """Create or replace; return the id (with ``expected_version``: replace only)."""
        if expected_version is not None:
            return super().upsert(id_or_record, record, expected_version=expected_version)
        row = _upsert_row(id_or_record, record)
        self._call("upsert_batch", [row])
        return row[0]

    def delete(self, id: str, *, expected_version: str | None = None) -> bool:
        """Remove the record under ``id`` (conditional on ``expected_version`` when given)."""
        if expected_version is None:
            return bool(self._call("delete_batch", [id])[0])
        with self._version_lock():
            current = self.read(id)
            if current is None:
                return False
            enforce_content_version(id, expected_version, current)
            return bool(self._call("delete_batch", [id])[0])

    def exists(self, id: str) -> bool:
        """Whether ``id`` is stored."""
        store = self._store
        if store is None:
            store = self._ensure_store()
        return bool(store.exists_batch([id])[0])

    def search(self, query: AnyQuery) -> list[Record]:
        """Matching records, shaped by the query."""
        return records_from_rows(self._call("search", to_spec(query)))

    def count(self, query: AnyQuery | None = None) -> int:
        """Number of matching records (no record is built)."""
        return int(self._call("count", to_spec(query)))

    def aggregate(
        self,
        query: AnyQuery | None = None,
        group_by: str | Sequence[str] | None = None,
        metrics: Metrics | None = None,
    ) -> list[dict[str, Any]]:
        """Groups and metrics of the matching records, computed by the store (see
        ``SyncDatabase.aggregate``)."""
        result: list[dict[str, Any]] = self._call(
            "aggregate", to_spec(query), aggregation_spec(group_by, metrics)
        )
        return result

    def clear(self) -> int:
        """Remove everything; return how many were removed."""
        return int(self._call("clear"))

    def all(self) -> list[Record]:
        """Every record in storage order."""
        return records_from_rows(self._call("search", None))

    def create_batch(self, records: Sequence[Record]) -> list[str]:
        """All or nothing; a collision raises DuplicateRecordError naming the id."""
        return list(self._call("create_batch", rows_for_write(records)))

    def _create_missing(self, records: Sequence[Record]) -> list[bool]:
        return list(self._call("create_missing", rows_for_write(records)))

    def read_batch(self, ids: Sequence[str]) -> list[Record | None]:
        """Records in input order; None where missing."""
        return [record_or_none(r) for r in self._call("read_batch", list(ids))]

    def delete_batch(self, ids: Sequence[str]) -> list[bool]:
        """True where removed, in input order."""
        return list(self._call("delete_batch", list(ids)))

    def update_batch(self, updates: Sequence[tuple[str, Record]]) -> list[bool]:
        """True where replaced, in input order."""
        return list(self._call("update_batch", [row_for_write(r, i) for i, r in updates]))

    def upsert_batch(self, records: Sequence[Record]) -> list[str]:
        """Create or replace each record; ids in input order."""
        return list(self._call("upsert_batch", rows_for_write(records)))

    @counts_itself
    def stream_read(
        self, query: AnyQuery | None = None, config: StreamConfig | None = None
    ) -> Iterator[Record]:
        """Records page by page from a bounded native producer."""
        op = StreamOp(self, "stream_read")
        taken = 0
        error: BaseException | None = None
        page: Iterator[Record] = iter(())
        try:
            cfg = config or StreamConfig()
            cursor = self._call("stream", to_spec(query), cfg.batch_size, cfg.prefetch)
            try:
                for records in record_chunks(cursor, cfg.timeout):
                    taken += len(records)
                    page = iter(records)
                    yield from page
            finally:
                cursor.close()
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            # What the consumer took: the pages so far less what it left of the last.
            op.end(taken - length_hint(page), error)

    def _arrow_writer(self) -> Any | None:
        """The store's ``create_from_arrow`` (rows built from the batches in Rust)."""
        return self._native_writer("create_from_arrow")

    def _arrow_stream(
        self,
        query: AnyQuery | None,
        columns: Sequence[str] | None,
        schema: pa.Schema | None,
        batch_size: int,
    ) -> Any | None:
        """The store's cursor read into RecordBatches in Rust (``_native.ArrowStream``)."""
        picked = picked_fields(columns, schema)
        prefetch = StreamConfig().prefetch
        cursor = self._call("stream", arrow_spec(query, picked), batch_size, prefetch)
        return _arrow_stream_of(cursor, schema, picked)


class NativeAsyncDatabase(_NativeStoreHolder, AsyncDatabase):
    """Async database over a native store: each call is one await on a Rust future."""

    LEAF_VERBS: ClassVar[frozenset[str]] = NATIVE_LEAF_VERBS

    async def connect(self) -> None:
        """Open the store (also done on first use)."""
        self._open()

    async def close(self) -> None:
        """Close the store; idempotent."""
        self._shut()

    async def _call(self, name: str, *args: Any) -> Any:
        store = self._ensure_store()
        if self.ASYNC_INLINE:
            return getattr(store, name)(*args)
        return await getattr(store, name + "_async")(*args)

    async def create(self, record: Record) -> str:
        """Store a copy of ``record``; return its id."""
        ids: list[str] = await self._call("create_batch", [row_for_write(record)])
        return ids[0]

    async def read(self, id: str) -> Record | None:
        """The record under ``id`` or None."""
        store = self._store
        if store is None:
            store = self._ensure_store()
        if self.ASYNC_INLINE:
            row = store.read_batch([id])[0]
        else:
            row = (await store.read_batch_async([id]))[0]
        record: Record | None = _native.record_or_none(Record, row)
        return record

    async def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
        """Replace the record under ``id``; False when missing (conditional on
        ``expected_version`` when given: ConcurrencyError if the token is stale)."""
        row = row_for_write(record, id)
        if expected_version is None:
            return bool((await self._call("update_batch", [row]))[0])
        async with self._async_version_lock():
            current = await self.read(id)
            if current is None:
                return False
            enforce_content_version(id, expected_version, current)
            return bool((await self._call("update_batch", [row]))[0])

    async def upsert(
        self,
        id_or_record: str | Record,
        record: Record | None = None,
        *,
        expected_version: str | None = None,
    ) -> str:
        """Create or replace; return the id (with ``expected_version``: replace only)."""
        if expected_version is not None:
            return await super().upsert(id_or_record, record, expected_version=expected_version)
        row = _upsert_row(id_or_record, record)
        await self._call("upsert_batch", [row])
        return row[0]

    async def delete(self, id: str, *, expected_version: str | None = None) -> bool:
        """Remove the record under ``id`` (conditional on ``expected_version`` when given)."""
        if expected_version is None:
            return bool((await self._call("delete_batch", [id]))[0])
        async with self._async_version_lock():
            current = await self.read(id)
            if current is None:
                return False
            enforce_content_version(id, expected_version, current)
            return bool((await self._call("delete_batch", [id]))[0])

    async def exists(self, id: str) -> bool:
        """Whether ``id`` is stored."""
        return bool((await self._call("exists_batch", [id]))[0])

    async def search(self, query: AnyQuery) -> list[Record]:
        """Matching records, shaped by the query."""
        return records_from_rows(await self._call("search", to_spec(query)))

    async def count(self, query: AnyQuery | None = None) -> int:
        """Number of matching records (no record is built)."""
        return int(await self._call("count", to_spec(query)))

    async def aggregate(
        self,
        query: AnyQuery | None = None,
        group_by: str | Sequence[str] | None = None,
        metrics: Metrics | None = None,
    ) -> list[dict[str, Any]]:
        """Groups and metrics of the matching records, computed by the store (see
        ``AsyncDatabase.aggregate``)."""
        result: list[dict[str, Any]] = await self._call(
            "aggregate", to_spec(query), aggregation_spec(group_by, metrics)
        )
        return result

    async def clear(self) -> int:
        """Remove everything; return how many were removed."""
        return int(await self._call("clear"))

    async def all(self) -> list[Record]:
        """Every record in storage order."""
        return records_from_rows(await self._call("search", None))

    async def create_batch(self, records: Sequence[Record]) -> list[str]:
        """All or nothing; a collision raises DuplicateRecordError naming the id."""
        return list(await self._call("create_batch", rows_for_write(records)))

    async def _apply_batches(self, batches: Sequence[Batch]) -> int:
        """A commit's batches in one native call: all or nothing where the store is
        transactional (SQLite, PostgreSQL)."""
        return int(await self._call("apply", self._native_batches(batches)))

    async def _create_missing(self, records: Sequence[Record]) -> list[bool]:
        return list(await self._call("create_missing", rows_for_write(records)))

    async def read_batch(self, ids: Sequence[str]) -> list[Record | None]:
        """Records in input order; None where missing."""
        return [record_or_none(r) for r in await self._call("read_batch", list(ids))]

    async def delete_batch(self, ids: Sequence[str]) -> list[bool]:
        """True where removed, in input order."""
        return list(await self._call("delete_batch", list(ids)))

    async def update_batch(self, updates: Sequence[tuple[str, Record]]) -> list[bool]:
        """True where replaced, in input order."""
        rows = [row_for_write(r, i) for i, r in updates]
        return list(await self._call("update_batch", rows))

    async def upsert_batch(self, records: Sequence[Record]) -> list[str]:
        """Create or replace each record; ids in input order."""
        return list(await self._call("upsert_batch", rows_for_write(records)))

    @counts_itself
    async def stream_read(
        self, query: AnyQuery | None = None, config: StreamConfig | None = None
    ) -> AsyncIterator[Record]:
        """Records page by page from a bounded native producer; awaits one page at a time
        (an inline store's pages are taken without awaiting: they are already in memory)."""
        op = StreamOp(self, "stream_read")
        taken = 0
        error: BaseException | None = None
        page: Iterator[Record] = iter(())
        try:
            cfg = config or StreamConfig()
            # Awaited: opening may wait for a pooled connection that another stream on this
            # loop holds, and blocking the loop would keep that stream from ever finishing.
            cursor = await self._call("stream", to_spec(query), cfg.batch_size, cfg.prefetch)
            try:
                while (records := await self._next_records(cursor, cfg.timeout)) is not None:
                    taken += len(records)
                    page = iter(records)
                    for record in page:
                        yield record
            finally:
                cursor.close()
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            op.end(taken - length_hint(page), error)

    async def _next_records(self, cursor: Any, timeout: float | None) -> list[Record] | None:
        if self.ASYNC_INLINE:
            records: list[Record] | None = cursor.take_records(Record, _TAKE, timeout)
            return records
        page = await cursor.next_page_async(timeout)
        return None if page is None else records_from_rows(page.take())

    def _arrow_writer(self) -> Any | None:
        """The store's ``create_from_arrow_async`` (rows built from the batches in Rust)."""
        if not self.ASYNC_INLINE:
            return self._native_writer("create_from_arrow_async")
        write = self._native_writer("create_from_arrow")
        if write is None:
            return None

        async def inline(source: Any, id_column: str) -> list[str]:
            return list(write(source, id_column))

        return inline

    async def _arrow_stream(
        self,
        query: AnyQuery | None,
        columns: Sequence[str] | None,
        schema: pa.Schema | None,
        batch_size: int,
    ) -> Any | None:
        """The store's cursor read into RecordBatches in Rust (``_native.ArrowStream``)."""
        picked = picked_fields(columns, schema)
        prefetch = StreamConfig().prefetch
        spec = arrow_spec(query, picked)
        cursor = await self._call("stream", spec, batch_size, prefetch)
        return _arrow_stream_of(cursor, schema, picked)


def _arrow_stream_of(cursor: Any, schema: pa.Schema | None, picked: list[str] | None) -> Any:
    """An ``ArrowStream`` over a native cursor; None for a store whose cursor is Python's
    (DuckDB), whose records then take the Python path."""
    if not isinstance(cursor, _native.Cursor):
        cursor.close()
        return None
    return _native.ArrowStream(cursor, schema, picked)


def _upsert_row(id_or_record: str | Record, record: Record | None) -> Row:
    record_id, rec = split_upsert(id_or_record, record)
    return row_for_write(rec, record_id)
