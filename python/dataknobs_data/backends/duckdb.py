"""The DuckDB backend: records in an embedded DuckDB database, a file or ``:memory:``.

Table ``id, data, metadata, created_at, updated_at`` (0.11.0's layout) with data and metadata
as tagged JSON text (docs/internals.md §3) in JSON columns. Batches cross into DuckDB as Arrow
tables that the Rust extension builds as raw buffers, and results come back as Arrow record
batches that the Rust core reads in place: what a query means is decided there, by the one
evaluator every backend uses. DuckDB's SQL only narrows the rows read (``narrow``); its
storage order, kept for a query without ``ORDER BY`` (``preserve_insertion_order``), is the
order in which ids were first created.

The async face runs each call in a worker thread, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

try:
    import duckdb
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the duckdb backend needs the duckdb package; install it with: "
        "pip install 'dataknobs-data[duckdb]'",
        name="duckdb",
    ) from exc
import pyarrow as pa

from .. import _native
from ..exceptions import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseOperationError,
    DuplicateRecordError,
)
from .config import AsyncDuckDBDatabaseConfig, SyncDuckDBDatabaseConfig
from .native import NativeAsyncDatabase, NativeSyncDatabase, Row

T = TypeVar("T")

#: Table names, and the data field names that ``narrow`` may look up with a JSON path:
#: nothing to quote or escape in either.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Rows per Arrow record batch read from DuckDB by search and count.
_READ_BATCH = 8192


def narrow(cond: Any, params: list[Any]) -> str | None:
    """SQL over the table that every row matching ``cond`` satisfies, or None for no narrowing.

    Only a superset: the core's evaluator decides every row read. So only what is cheap and
    certain is translated: ``id`` compared with str, a plain data field equal to a str (a
    stored str is JSON text that ``json_extract_string`` reads back unchanged; any other stored
    value never equals a str), and AND / OR of those. An AND keeps the members it can
    translate; an OR needs all of them; anything else reads every row.
    """
    kind = cond[0]
    if kind == "filter":
        _, field, op, value = cond
        if field == "id":
            if op == "=" and isinstance(value, str):
                params.append(value)
                return "id = ?"
            if op == "in" and isinstance(value, list | tuple | set | frozenset):
                members = [v for v in value if isinstance(v, str)]
                params.append(members)
                return "id IN (SELECT unnest(?::VARCHAR[]))"
            return None
        if op == "=" and isinstance(value, str) and _IDENTIFIER.match(field):
            params.append(value)
            return f"json_extract_string(data, '$.\"{field}\"') = ?"
        return None
    if kind == "and":
        parts = [p for p in (narrow(c, params) for c in cond[1]) if p is not None]
        return " AND ".join(f"({p})" for p in parts) if parts else None
    if kind == "or":
        mark = len(params)
        ors = [narrow(c, params) for c in cond[1]]
        if not ors or any(p is None for p in ors):
            del params[mark:]
            return None
        return " OR ".join(f"({p})" for p in ors)
    return None


def _walks_metadata(cond: Any) -> bool:
    """Whether a condition has a ``metadata.*`` path (which may read the record metadata)."""
    kind = cond[0]
    if kind == "filter":
        return str(cond[1]).startswith("metadata.")
    if kind == "not":
        return _walks_metadata(cond[1])
    return any(_walks_metadata(c) for c in cond[1])


def _arrow_rows(rows: Sequence[Row]) -> pa.Table:
    """The batch as an Arrow table (id, data, metadata) of tagged JSON text, built natively."""
    columns = _native.encode_rows_arrow(rows)
    arrays = [
        pa.Array.from_buffers(
            pa.large_string(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        for offsets, data in columns
    ]
    return pa.Table.from_arrays(arrays, names=["id", "data", "metadata"])


def _first_repeat(ids: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for rid in ids:
        if rid in seen:
            return rid
        seen.add(rid)
    return None


def _last_wins(rows: Sequence[Row]) -> list[Row]:
    """One row per id, at the place of its first occurrence, with its last value."""
    by_id: dict[str, Row] = {}
    for row in rows:
        by_id[row[0]] = row
    return list(by_id.values())


class _Page:
    """A page of rows for the async cursor (internals §2: ``Page.take``)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Row]) -> None:
        self._rows: list[Row] | None = rows

    def take(self) -> list[Row]:
        rows, self._rows = self._rows, None
        if rows is None:
            raise DatabaseError("this page was already taken")
        return rows


class DuckDBCursor:
    """Pages of a query's result, read from its own DuckDB connection in Arrow batches.

    Memory holds one batch of ``batch_size`` stored rows at a time (a sorted query holds its
    matches, which the sort needs). The stream reads the snapshot its query started on.
    """

    def __init__(self, store: DuckDBStore, spec: Any, batch_size: int) -> None:
        self._store = store
        self._batch_size = max(1, int(batch_size))
        self._shaper = _native.TextShaper(spec, store.source)
        self._sorted = bool(spec and spec.get("sort"))
        self._lock = threading.Lock()
        self._done = False
        self._pending: list[Row] = []
        self._conn: Any = store._new_cursor()
        try:
            self._reader: Any = store._reader(self._conn, spec, self._batch_size)
        except BaseException:
            self._conn.close()
            raise

    def next_page(self, timeout: float | None = None) -> list[Row] | None:
        """The next page, None at the end (``timeout`` is accepted; DuckDB reads locally)."""
        with self._lock:
            if self._store.closed:
                self._finish()
                raise DatabaseError("duckdb store is closed")
            while not self._pending and not self._done:
                self._fill()
            if not self._pending:
                return None
            page = self._pending[: self._batch_size]
            del self._pending[: self._batch_size]
            return page

    def _fill(self) -> None:
        shaper = self._shaper
        batch = None
        if shaper.wants_more:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                batch = None
            except duckdb.Error as exc:
                self._finish()
                raise DatabaseOperationError("stream_read", str(exc)) from exc
        if batch is None:
            self._pending.extend(shaper.finish())
            self._finish()
            return
        shaper.feed(batch)
        if not self._sorted:
            self._pending.extend(shaper.take())

    async def next_page_async(self, timeout: float | None = None) -> _Page | None:
        """``next_page`` in a worker thread."""
        page = await asyncio.to_thread(self.next_page, timeout)
        return None if page is None else _Page(page)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._reader = None
            self._conn.close()

    def close(self) -> None:
        """Stop the stream and release its connection; idempotent."""
        with self._lock:
            self._pending = []
            self._finish()


class DuckDBStore:
    """The native store surface (internals §2) over one DuckDB connection.

    Calls are serialised by a lock (a DuckDB connection serves one statement at a time); each
    ``*_async`` twin runs the same call in a worker thread.
    """

    def __init__(self, path: str, table: str, read_only: bool, auto_create_table: bool) -> None:
        if not _IDENTIFIER.match(table):
            raise ConfigurationError(
                "table",
                f"invalid table name {table!r}: use letters, digits and _, "
                "not starting with a digit",
            )
        self._table = f'"{table}"'
        self.source = f'duckdb table "{table}"'
        self._lock = threading.RLock()
        self._cursors: weakref.WeakSet[DuckDBCursor] = weakref.WeakSet()
        self.closed = False
        if path != ":memory:" and not read_only:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            raise DatabaseConnectionError("duckdb", f"cannot open {path!r}: {exc}") from exc
        try:
            # Storage order is the table's physical order, which DuckDB keeps for a query
            # without ORDER BY only under this setting (its default, made certain here).
            self._conn.execute("SET preserve_insertion_order = true")
            if auto_create_table and not read_only:
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table} ("
                    "id VARCHAR PRIMARY KEY, data JSON NOT NULL, metadata JSON, "
                    "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
                    "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
                )
            else:
                found = self._conn.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                    [table],
                ).fetchall()
                if not found[0][0]:
                    raise DatabaseOperationError(
                        "connect",
                        f"table {table!r} does not exist and auto_create_table is false",
                    )
        except duckdb.Error as exc:
            self._conn.close()
            raise DatabaseOperationError("connect", str(exc)) from exc
        except BaseException:
            self._conn.close()
            raise

    # -- plumbing --------------------------------------------------------------------------
    def _run(self, operation: str, work: Callable[[Any], T]) -> T:
        """``work(connection)`` under the lock, DuckDB errors as DatabaseOperationError."""
        with self._lock:
            if self.closed:
                raise DatabaseError("duckdb store is closed")
            try:
                return work(self._conn)
            except duckdb.Error as exc:
                raise DatabaseOperationError(operation, str(exc)) from exc

    def _new_cursor(self) -> Any:
        with self._lock:
            if self.closed:
                raise DatabaseError("duckdb store is closed")
            return self._conn.cursor()

    def _select(self, spec: Any, params: list[Any], metadata: bool = True) -> str:
        """The narrowed scan; ``metadata=False`` reads every row's metadata as ``{}`` (for a
        count whose condition never walks it). The JSON columns come out as Arrow strings
        as they are: a cast to VARCHAR would copy every one."""
        where = None
        cond = spec.get("where") if spec else None
        if cond is not None:
            where = narrow(cond, params)
        meta = "metadata" if metadata else "'{}'"
        sql = f"SELECT id, data, {meta} FROM {self._table}"
        return sql if where is None else f"{sql} WHERE {where}"

    def _reader(self, conn: Any, spec: Any, batch_size: int, metadata: bool = True) -> Any:
        params: list[Any] = []
        sql = self._select(spec, params, metadata)
        return conn.sql(sql, params=params or None).to_arrow_reader(batch_size)

    def _count_all(self, conn: Any) -> int:
        # fetchall, not fetchone: a result left unfinished blocks the connection's next call.
        return int(conn.execute(f"SELECT count(*) FROM {self._table}").fetchall()[0][0])

    @staticmethod
    def _id_match(ids: Sequence[str]) -> str:
        # A lone id is an index lookup; a list is joined against the table.
        return "id = ?" if len(ids) == 1 else "id IN (SELECT unnest(?::VARCHAR[]))"

    @staticmethod
    def _returned(rows: list[tuple[Any, ...]]) -> set[str]:
        """The ids of a statement's ``RETURNING id`` rows."""
        return {r[0] for r in rows}

    def _existing(self, conn: Any, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return self._returned(
            conn.execute(
                f"SELECT id FROM {self._table} WHERE {self._id_match(ids)}",
                [ids[0] if len(ids) == 1 else list(ids)],
            ).fetchall()
        )

    def _insert(self, conn: Any, rows: Sequence[Row], tail: str = "") -> list[tuple[Any, ...]]:
        """INSERT the rows (handed over as one Arrow table); the rows the statement gave."""
        conn.register("_dk_batch", _arrow_rows(rows))
        try:
            result: list[tuple[Any, ...]] = conn.execute(
                f"INSERT INTO {self._table} (id, data, metadata) "
                f"SELECT id, data, metadata FROM _dk_batch{tail}"
            ).fetchall()
            return result
        finally:
            conn.unregister("_dk_batch")

    # -- the store surface -----------------------------------------------------------------
    def _create(self, conn: Any, rows: Sequence[Row], precheck: bool = False) -> list[str]:
        """Insert all of ``rows`` or none; a collision raises DuplicateRecordError naming the
        first colliding id in input order. ``precheck`` looks the ids up before the insert:
        inside a transaction, which a failed statement aborts, there is no asking afterwards."""
        ids = [r[0] for r in rows]
        repeat = _first_repeat(ids)
        if repeat is not None:
            raise DuplicateRecordError(repeat)
        if not rows:
            return []
        if precheck:
            self._raise_if_stored(conn, ids)
        try:
            self._insert(conn, rows)
        except duckdb.ConstraintException:
            self._raise_if_stored(conn, ids)
            raise
        return ids

    def _raise_if_stored(self, conn: Any, ids: Sequence[str]) -> None:
        stored = self._existing(conn, ids)
        first = next((rid for rid in ids if rid in stored), None)
        if first is not None:
            raise DuplicateRecordError(first) from None

    def _upsert(self, conn: Any, rows: Sequence[Row]) -> list[str]:
        if rows:
            tail = (
                " ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
                "metadata = excluded.metadata, updated_at = excluded.updated_at"
            )
            self._insert(conn, _last_wins(rows), tail)
        return [r[0] for r in rows]

    def _delete(self, conn: Any, ids: Sequence[str]) -> list[bool]:
        if not ids:
            return []
        removed = self._returned(
            conn.execute(
                f"DELETE FROM {self._table} WHERE {self._id_match(ids)} RETURNING id",
                [ids[0] if len(ids) == 1 else list(ids)],
            ).fetchall()
        )
        out = []
        for rid in ids:
            out.append(rid in removed)
            removed.discard(rid)
        return out

    def create_batch(self, rows: Sequence[Row]) -> list[str]:
        """All or nothing: an id stored or repeated in ``rows`` raises DuplicateRecordError."""
        return self._run("create", lambda conn: self._create(conn, rows))

    def create_missing(self, rows: Sequence[Row]) -> list[bool]:
        """Store the rows whose id is absent (first occurrence wins); True where stored."""
        if not rows:
            return []
        first: dict[str, Row] = {}
        for row in rows:
            first.setdefault(row[0], row)

        def work(conn: Any) -> set[str]:
            return self._returned(
                self._insert(
                    conn, list(first.values()), " ON CONFLICT (id) DO NOTHING RETURNING id"
                )
            )

        stored = self._run("create", work)
        out = []
        for row in rows:
            out.append(row[0] in stored)
            stored.discard(row[0])
        return out

    def upsert_batch(self, rows: Sequence[Row]) -> list[str]:
        """Insert or replace each row; a stored id keeps its place."""
        return self._run("upsert", lambda conn: self._upsert(conn, rows))

    def update_batch(self, rows: Sequence[Row]) -> list[bool]:
        """Replace the stored rows; False where the id is missing."""
        if not rows:
            return []
        unique = _last_wins(rows)

        def work(conn: Any) -> set[str]:
            # The ids first, then a plain UPDATE, in one transaction: DuckDB carries out an
            # UPDATE ... RETURNING as delete and insert, which would move each row to the end.
            conn.execute("BEGIN TRANSACTION")
            try:
                stored = self._existing(conn, [r[0] for r in unique])
                present = [r for r in unique if r[0] in stored]
                if present:
                    conn.register("_dk_batch", _arrow_rows(present))
                    try:
                        conn.execute(
                            f"UPDATE {self._table} AS t SET data = b.data, "
                            "metadata = b.metadata, updated_at = CURRENT_TIMESTAMP "
                            "FROM _dk_batch AS b WHERE t.id = b.id"
                        ).fetchall()
                    finally:
                        conn.unregister("_dk_batch")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return stored

        updated = self._run("update", work)
        return [r[0] in updated for r in rows]

    def read_batch(self, ids: Sequence[str]) -> list[Row | None]:
        """The rows under ``ids``, in input order; None where missing."""
        ids = list(ids)
        if not ids:
            return []
        select = f"SELECT id, data, metadata FROM {self._table} WHERE "

        def one(conn: Any) -> dict[str, Row]:
            # A lone id: an index lookup and a plain fetch cost a fraction of an Arrow reader.
            found = conn.execute(select + "id = ?", ids).fetchall()
            if not found:
                return {}
            # Decoded as every stored row is (the row decoder's rules and depth limit).
            batch = pa.RecordBatch.from_arrays(
                [pa.array(list(col), pa.string()) for col in zip(*found, strict=True)],
                names=["id", "data", "metadata"],
            )
            return {r[0]: r for r in _native.rows_from_arrow(batch, self.source)}

        def many(conn: Any) -> dict[str, Row]:
            reader = conn.sql(
                select + "id IN (SELECT unnest(?::VARCHAR[]))", params=[ids]
            ).to_arrow_reader(_READ_BATCH)
            found: dict[str, Row] = {}
            for batch in reader:
                for row in _native.rows_from_arrow(batch, self.source):
                    found[row[0]] = row
            return found

        found = self._run("read", one if len(ids) == 1 else many)
        return [found.get(rid) for rid in ids]

    def exists_batch(self, ids: Sequence[str]) -> list[bool]:
        """Whether each id is stored."""
        ids = list(ids)
        stored = self._run("exists", lambda conn: self._existing(conn, ids))
        return [rid in stored for rid in ids]

    def delete_batch(self, ids: Sequence[str]) -> list[bool]:
        """Remove each id; True where it was stored (a repeated id: its first occurrence)."""
        return self._run("delete", lambda conn: self._delete(conn, list(ids)))

    def apply(self, ops: Sequence[tuple[str, Sequence[Any]]]) -> int:
        """A transaction's batches (``("create" | "upsert", rows)``, ``("delete", ids)``) in
        one DuckDB transaction: all applied, or on the first failure none. Returns how many
        records they wrote or removed."""

        def work(conn: Any) -> int:
            conn.execute("BEGIN TRANSACTION")
            try:
                affected = 0
                for kind, items in ops:
                    if kind == "create":
                        affected += len(self._create(conn, items, precheck=True))
                    elif kind == "upsert":
                        affected += len(self._upsert(conn, items))
                    elif kind == "delete":
                        affected += sum(self._delete(conn, list(items)))
                    else:
                        raise DatabaseOperationError(
                            "transaction", f"unknown batch kind {kind!r} (create, upsert, delete)"
                        )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return affected

        return self._run("transaction", work)

    def is_transactional(self) -> bool:
        """``apply`` is all or nothing (one DuckDB transaction)."""
        return True

    def search(self, spec: Any) -> list[Row]:
        """The rows the query returns, shaped by the core (internals §1)."""
        shaper = _native.TextShaper(spec, self.source)

        def work(conn: Any) -> list[Row]:
            if shaper.wants_more:
                for batch in self._reader(conn, spec, _READ_BATCH):
                    shaper.feed(batch)
                    if not shaper.wants_more:
                        break
            rows: list[Row] = shaper.finish()
            return rows

        return self._run("search", work)

    def count(self, spec: Any) -> int:
        """How many rows match the condition (offset, limit and sort ignored)."""
        cond = spec.get("where") if spec else None
        if cond is None:
            return self._run(
                "count",
                lambda conn: self._count_all(conn),
            )
        shaper = _native.TextShaper({"where": cond}, self.source)

        reader_spec = {"where": cond}
        metadata = _walks_metadata(cond)

        def work(conn: Any) -> int:
            batches = self._reader(conn, reader_spec, _READ_BATCH, metadata)
            return sum(shaper.count(b) for b in batches)

        return self._run("count", work)

    def aggregate(self, spec: Any, agg: Any) -> list[dict[str, Any]]:
        """Groups and metrics of the matching rows: DuckDB narrows the rows as for a count and
        the core's accumulators decide and aggregate them (docs/aggregations.md)."""
        cond = spec.get("where") if spec else None
        acc = _native.Aggregator({"where": cond}, agg, self.source)
        reader_spec = {"where": cond}

        def work(conn: Any) -> list[dict[str, Any]]:
            for batch in self._reader(conn, reader_spec, _READ_BATCH, acc.reads_metadata):
                acc.feed(batch)
            result: list[dict[str, Any]] = acc.finish()
            return result

        return self._run("aggregate", work)

    def clear(self) -> int:
        """Remove every row; return how many there were."""
        return self._run(
            "clear", lambda conn: int(conn.execute(f"DELETE FROM {self._table}").fetchall()[0][0])
        )

    def stream(self, spec: Any, batch_size: int, prefetch: int = 1) -> DuckDBCursor:
        """A cursor over the query's result in pages of at most ``batch_size`` rows."""
        try:
            cursor = DuckDBCursor(self, spec, batch_size)
        except duckdb.Error as exc:
            raise DatabaseOperationError("stream_read", str(exc)) from exc
        self._cursors.add(cursor)
        return cursor

    def close(self) -> None:
        """Close the connection (and every open stream); idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            for cursor in list(self._cursors):
                cursor.close()
            self._conn.close()

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_async"):
            blocking = getattr(self, name[: -len("_async")])

            async def run(*args: Any) -> Any:
                return await asyncio.to_thread(blocking, *args)

            return run
        raise AttributeError(name)


class _DuckDBConfig:
    BACKEND_NAME: ClassVar[str] = "duckdb"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset(
        {"path", "table", "timeout", "read_only", "auto_create_table"}
    )
    config: dict[str, Any]

    @property
    def db_path(self) -> str:
        """The database file, or ``:memory:``."""
        return str(self.config.get("path", ":memory:"))

    @property
    def table_name(self) -> str:
        """The records table."""
        return str(self.config.get("table", "records"))

    @property
    def timeout(self) -> float:
        """Seconds (kept for 0.11.0's configs: a local DuckDB connection waits for nothing)."""
        timeout = self.config.get("timeout", 5.0)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise ConfigurationError(
                "timeout", f"must be a non-negative number of seconds, got {timeout!r}"
            )
        return float(timeout)

    @property
    def read_only(self) -> bool:
        """Whether the database is opened read-only."""
        return _flag(self.config, "read_only", False)

    @property
    def auto_create_table(self) -> bool:
        """Whether a missing table is created on connect (else connecting fails)."""
        return _flag(self.config, "auto_create_table", True)

    def _open_store(self) -> DuckDBStore:
        _ = self.timeout  # a bad value fails the open, as every other key's does
        return DuckDBStore(self.db_path, self.table_name, self.read_only, self.auto_create_table)


def _flag(cfg: dict[str, Any], key: str, default: bool) -> bool:
    """A boolean config value; YAML or environment strings such as "false" and "0" count."""
    value = cfg.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    if isinstance(value, int):
        return bool(value)
    raise ConfigurationError(key, f"expected a boolean, got {value!r}")


class SyncDuckDBDatabase(_DuckDBConfig, NativeSyncDatabase):
    """Records in an embedded DuckDB database (``path``, default ``:memory:``)."""

    CONFIG_CLS: ClassVar[type | None] = SyncDuckDBDatabaseConfig


class AsyncDuckDBDatabase(_DuckDBConfig, NativeAsyncDatabase):
    """Records in an embedded DuckDB database, async face (calls run in worker threads).

    ``max_workers`` (0.11.0's thread-pool size) is accepted; a store runs one call at a time
    on its connection, so the calls go to asyncio's default executor.
    """

    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset(
        {"path", "table", "timeout", "read_only", "auto_create_table", "max_workers"}
    )
    CONFIG_CLS: ClassVar[type | None] = AsyncDuckDBDatabaseConfig

    @property
    def max_workers(self) -> int:
        """0.11.0's thread-pool size (default 4)."""
        return int(self.config.get("max_workers", 4))


__all__ = ["AsyncDuckDBDatabase", "DuckDBCursor", "DuckDBStore", "SyncDuckDBDatabase", "narrow"]
