"""The database ABCs: one surface, sync and async (API.md §4, §7).

`AsyncDatabase` and `SyncDatabase` declare the five verbs a backend must implement (create,
read, update, delete, search) and give every other verb a default built on them, so a user
subclass works with only those five. Our own backends override the defaults with native batch
operations.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import threading
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Container,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from . import _native
from .aggregation import Metrics, aggregation_spec
from .arrow import ArrowMixin, AsyncArrowMixin
from .exceptions import CapabilityNotSupportedError as CapabilityNotSupportedError
from .exceptions import (
    ConcurrencyError,
    ConfigurationError,
    DuplicateRecordError,
)
from .observability import instrument_class, operation_stats
from .query import Query
from .query_logic import ComplexQuery, to_spec
from .records import Record
from .schema import DatabaseSchema, FieldSchema, is_declarative_schema
from .streaming import (
    ConflictPolicy,
    StreamConfig,
    StreamResult,
    async_write_stream,
    resolve_conflict_write,
    write_stream,
)

if TYPE_CHECKING:
    from .transactions import Batch, BufferedTransaction
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


def _stored_ids(batch: Sequence[Record], stored: Sequence[bool]) -> list[str]:
    """The ids of the records a skip-existing bulk write stored (the rest were skipped)."""
    return [str(record.id) for record, kept in zip(batch, stored, strict=True) if kept]


def hash_record_version(record: Record) -> str:
    """The content-hash version token of a stored record (sha256 of its structured form).

    It changes whenever the record's fields, metadata or id change, so a conditional write can
    tell that the record was modified since the token was read. Being a pure content hash, an
    A -> B -> A change gives the first token back.
    """
    payload = json.dumps(
        record.to_dict(include_metadata=True, flatten=False), sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def version_conflict_error(
    id: str, expected_version: str | None, actual_version: str | None
) -> ConcurrencyError:
    """The error of a conditional write whose token is stale (or whose record is gone)."""
    return ConcurrencyError(
        "record was modified concurrently",
        context={"id": id, "expected_version": expected_version, "actual_version": actual_version},
    )


def enforce_content_version(
    id: str, expected_version: str | None, current_record: Record | None
) -> None:
    """Raise the conflict error unless ``current_record``'s token is ``expected_version``.

    ``expected_version=None`` is an unconditional write: nothing to check. A missing record has
    no token, so it never matches one.
    """
    if expected_version is None:
        return
    actual = None if current_record is None else hash_record_version(current_record)
    if actual != expected_version:
        raise version_conflict_error(id, expected_version, actual)


def prepare_atomic_batch(
    records: Iterable[Record],
    existing: Container[str],
    prepare: Callable[[Record], tuple[Record, str]],
) -> list[tuple[Record, str]]:
    """Prepare a ``create_batch`` that fails closed: ``(prepared record, id)`` pairs.

    Raises DuplicateRecordError, before anything is written, for the first id that is already
    in ``existing`` or appears twice in the batch.
    """
    prepared: list[tuple[Record, str]] = []
    seen: set[str] = set()
    for record in records:
        rec, rid = prepare(record)
        if rid in seen or rid in existing:
            raise DuplicateRecordError(rid)
        seen.add(rid)
        prepared.append((rec, rid))
    return prepared


def extract_schema_from_config(schema_config: Any) -> DatabaseSchema | None:
    """The DatabaseSchema a ``schema`` value names: itself, one built from its dict form, or
    None for anything else."""
    if isinstance(schema_config, DatabaseSchema):
        return schema_config
    if isinstance(schema_config, Mapping):
        return DatabaseSchema.from_dict(schema_config)
    return None


def config_mapping(config: Any) -> dict[str, Any]:
    """A typed backend config (``backends.config``) as the dict a backend reads.

    Only the fields set to something other than their default are kept: the backend applies
    its own defaults (the same values), and a set field it has no key for makes its key check
    name what it cannot honour.
    """
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            if value != default:
                out[f.name] = value
        return out
    raise ConfigurationError(
        "config", f"expected a mapping or a backend config object, got {type(config).__name__}"
    )


#: Capabilities every database here has: writes conditional on a version token.
CONDITIONAL_WRITE = "conditional_write"


class _Configured:
    """Configuration shared by both database faces: accepted keys, schemas, version tokens."""

    #: Config keys the backend accepts; None accepts any (for user subclasses).
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = None
    #: The typed config class of the backend (``backends.config``), when it has one.
    CONFIG_CLS: ClassVar[type | None] = None
    BACKEND_NAME: ClassVar[str] = "custom"
    #: What the database can do beyond the basics (0.11.0's ``Capability`` values).
    SUPPORTED_CAPABILITIES: ClassVar[frozenset[str]] = frozenset({CONDITIONAL_WRITE})
    _IS_ASYNC: ClassVar[bool]
    #: Validates written records when the config has ``schema`` (see attach_schema).
    _schema_guard: SchemaGuard | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every verb a database class defines is timed and counted (and traced with the otel
        # extra): the base classes and each backend, ours and users' alike.
        super().__init_subclass__(**kwargs)
        instrument_class(cls)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters and latency histograms of this database's operations, by operation name
        (see :func:`dataknobs_data.observability.operation_stats`)."""
        return operation_stats(self)

    def __init__(
        self,
        config: Mapping[str, Any] | Any | None = None,
        schema: DatabaseSchema | None = None,
        **kwargs: Any,
    ) -> None:
        merged = config_mapping(config)
        merged.update(kwargs)
        spec = merged.get("schema")
        if (
            isinstance(spec, str)
            and self.CONFIG_KEYS is not None
            and "schema_name" in self.CONFIG_KEYS
        ):
            # 0.11.0's SQL backends read a string ``schema`` as the database schema's name.
            merged["schema_name"] = merged.pop("schema")
            spec = None
        if spec is not None and is_declarative_schema(spec):
            # 0.11.0's declarative schema; a validation Schema goes to attach_schema instead.
            del merged["schema"]
            if schema is None:
                schema = extract_schema_from_config(spec)
        #: The declared fields of this database's records (descriptive; see ``schema``).
        self.schema: DatabaseSchema = schema if schema is not None else DatabaseSchema()
        self.config: dict[str, Any] = merged
        attach_schema(self, self.config, is_async=self._IS_ASYNC)
        check_config(self.BACKEND_NAME, self.CONFIG_KEYS, self.config)

    def set_schema(self, schema: DatabaseSchema) -> None:
        """Replace the declared schema."""
        self.schema = schema

    def with_schema(self, **field_definitions: Any) -> Self:
        """Declare the schema from ``name=FieldType`` / ``name=(FieldType, options)``; returns
        the database for chaining (see :meth:`DatabaseSchema.create`)."""
        self.schema = DatabaseSchema.create(**field_definitions)
        return self

    def add_field_schema(self, field_schema: FieldSchema) -> None:
        """Add one field to the declared schema."""
        self.schema.add_field(field_schema)

    def supports_transactions(self) -> bool:
        """Whether a transaction's commit is all or nothing here: a server transaction spans
        its batches (SQLite, PostgreSQL, DuckDB). Elsewhere batches apply one by one."""
        return False

    def _version_lock(self) -> threading.RLock:
        # One per database: a conditional write's compare and write run under it, so two
        # conditional writers on this object cannot both pass the compare.
        lock: threading.RLock | None = self.__dict__.get("_cas_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_cas_lock", threading.RLock())
        return lock

    def _async_version_lock(self) -> asyncio.Lock:
        locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        locks = self.__dict__.setdefault("_cas_async_locks", weakref.WeakKeyDictionary())
        loop = asyncio.get_running_loop()
        lock = locks.get(loop)
        if lock is None:
            lock = locks[loop] = asyncio.Lock()
        return lock

    @property
    def validation_schema(self) -> Schema | None:
        """The schema every written record is validated against (config key ``schema``)."""
        guard = self._schema_guard
        return None if guard is None else guard.schema

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> Self:
        """Build an instance from a config mapping (not yet connected)."""
        return cls(config)


class AsyncDatabase(_Configured, AsyncArrowMixin, ABC):
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
    async def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
        """Replace the record under ``id``; False when there is none.

        With ``expected_version`` (a token from :meth:`get_version`) the write happens only if
        the stored record still has that token; otherwise ConcurrencyError.
        """

    @abstractmethod
    async def delete(self, id: str, *, expected_version: str | None = None) -> bool:
        """Remove the record under ``id``; False when there is none (``expected_version`` as
        for :meth:`update`)."""

    async def get_version(self, id: str) -> str | None:
        """An opaque token of the stored record's current content, or None when missing.

        Pass it as ``expected_version`` to update/upsert/delete to make the write conditional.
        """
        current = await self.read(id)
        return None if current is None else hash_record_version(current)

    @abstractmethod
    async def search(self, query: AnyQuery) -> list[Record]:
        """Records matching ``query``, shaped by its sort, offset, limit and projection."""

    async def exists(self, id: str) -> bool:
        """Whether a record is stored under ``id``."""
        return await self.read(id) is not None

    async def upsert(
        self,
        id_or_record: str | Record,
        record: Record | None = None,
        *,
        expected_version: str | None = None,
    ) -> str:
        """Write ``record`` under the id, creating or replacing it; return the id.

        With ``expected_version`` it only replaces a record that still has that token (a
        missing record is a conflict too): ConcurrencyError otherwise.
        """
        record_id, rec = split_upsert(id_or_record, record)
        if expected_version is not None:
            if await self.update(record_id, rec, expected_version=expected_version):
                return record_id
            raise version_conflict_error(record_id, expected_version, None)
        if not await self.update(record_id, rec):
            await self.create(with_id(rec, record_id))
        return record_id

    async def count(self, query: AnyQuery | None = None) -> int:
        """How many records match ``query`` (all when None)."""
        return len(await self.search(query if query is not None else Query()))

    async def aggregate(
        self,
        query: AnyQuery | None = None,
        group_by: str | Sequence[str] | None = None,
        metrics: Metrics | None = None,
    ) -> list[dict[str, Any]]:
        """Group the records matching ``query`` and compute metrics per group.

        Args:
            query: which records take part (its sort, offset, limit and projection play no
                part); None means every record.
            group_by: a field name or a list of them (dot paths as queries use them; ``"id"``
                is the record id); None gives one row over every match.
            metrics: ``{"name": (op, field)}`` with op one of count, sum, avg, min, max,
                cardinality; ``("count", None)`` counts records, ``("count", "f")`` the
                records where ``f`` is present and not None. None means
                ``{"count": ("count", None)}``.

        Returns:
            One dict per group, sorted by the group values in ``sort_by``'s order (None
            last): the group fields by their given names, then the metrics. A missing field
            and None are one group (None). Groups are exact values (``1``, ``1.0`` and
            ``True`` are three). ``sum`` and ``avg`` take numbers only (bool, str and the rest
            are skipped); ``sum`` of ints is an exact int, any float makes it the correctly
            rounded float sum; ``avg`` is ``float(sum) / n``. ``min``/``max`` follow
            ``sort_by``'s order over every non-None value; ``cardinality`` counts distinct
            non-None values exactly. Without ``group_by`` there is exactly one row, also
            when nothing matched (counts 0, the other metrics None). docs/aggregations.md
            has the details.

        Raises:
            QueryError: a malformed ``group_by`` or ``metrics`` (naming it), or a bad query.
        """
        # A database without a native store feeds its records to the core's accumulators,
        # which apply the query's condition themselves.
        acc = _native.Aggregator(to_spec(query), aggregation_spec(group_by, metrics), "")
        async for batch in _row_batches_async(self.stream_read(None)):
            acc.feed_rows(batch)
        return acc.finish()

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

    async def begin_transaction(self, *, policy: str = "strict") -> BufferedTransaction:
        """A transaction to stage writes on; the caller commits or rolls it back.

        ``policy="strict"`` (the default) refuses a backend whose commit is not atomic with
        ``CapabilityNotSupportedError``; ``"emulate"`` accepts it (writes are still deferred).
        """
        from .exceptions import CapabilityNotSupportedError
        from .transactions import VALID_TRANSACTION_POLICIES, BufferedTransaction

        if policy not in VALID_TRANSACTION_POLICIES:
            raise ConfigurationError(
                "policy",
                f"unknown transaction policy {policy!r}; use one of "
                f"{', '.join(VALID_TRANSACTION_POLICIES)}",
            )
        if policy == "strict" and not self.supports_transactions():
            raise CapabilityNotSupportedError("transactions", self)
        return BufferedTransaction(self, policy=policy)

    @asynccontextmanager
    async def transaction(self, *, policy: str = "strict") -> AsyncIterator[BufferedTransaction]:
        """``async with db.transaction() as tx:`` commits on a clean exit, discards on error."""
        tx = await self.begin_transaction(policy=policy)
        try:
            yield tx
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()

    async def _apply_batches(self, batches: Sequence[Batch]) -> int:
        """A commit's batches in order, each through its batch verb; how many records they
        wrote or removed. Backends with server transactions apply them in one instead."""
        affected = 0
        for kind, items in batches:
            if kind == "create":
                affected += len(await self.create_batch(items))
            elif kind == "upsert":
                affected += len(await self.upsert_batch(items))
            else:
                affected += sum(await self.delete_batch(items))
        return affected

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

    async def stream_write(
        self,
        records: Iterable[Record] | AsyncIterable[Record],
        config: StreamConfig | None = None,
    ) -> StreamResult:
        """Write records in batches with the bulk path; a failed batch is retried record by
        record, each failure counted with its global index (``config.on_error`` says whether
        to go on)."""
        cfg = config or StreamConfig()
        if cfg.on_conflict == ConflictPolicy.SKIP:

            async def create_missing(batch: list[Record]) -> list[str]:
                return _stored_ids(batch, await self._create_missing(batch))

            return await async_write_stream(
                records,
                create_missing,
                self.create,
                cfg,
                skip_on_duplicate=True,
                shortfall_is_skipped=True,
            )
        bulk, single, _ = resolve_conflict_write(
            cfg.on_conflict,
            insert_batch_func=self.create_batch,
            single_create_func=self.create,
            upsert_func=self.upsert,
            upsert_batch_func=self.upsert_batch,
        )
        return await async_write_stream(records, bulk, single, cfg)

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


class SyncDatabase(_Configured, ArrowMixin, ABC):
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
    def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
        """Replace the record under ``id``; False when there is none.

        With ``expected_version`` (a token from :meth:`get_version`) the write happens only if
        the stored record still has that token; otherwise ConcurrencyError.
        """

    @abstractmethod
    def delete(self, id: str, *, expected_version: str | None = None) -> bool:
        """Remove the record under ``id``; False when there is none (``expected_version`` as
        for :meth:`update`)."""

    def get_version(self, id: str) -> str | None:
        """An opaque token of the stored record's current content, or None when missing.

        Pass it as ``expected_version`` to update/upsert/delete to make the write conditional.
        """
        current = self.read(id)
        return None if current is None else hash_record_version(current)

    @abstractmethod
    def search(self, query: AnyQuery) -> list[Record]:
        """Records matching ``query``, shaped by its sort, offset, limit and projection."""

    def exists(self, id: str) -> bool:
        """Whether a record is stored under ``id``."""
        return self.read(id) is not None

    def upsert(
        self,
        id_or_record: str | Record,
        record: Record | None = None,
        *,
        expected_version: str | None = None,
    ) -> str:
        """Write ``record`` under the id, creating or replacing it; return the id.

        With ``expected_version`` it only replaces a record that still has that token (a
        missing record is a conflict too): ConcurrencyError otherwise.
        """
        record_id, rec = split_upsert(id_or_record, record)
        if expected_version is not None:
            if self.update(record_id, rec, expected_version=expected_version):
                return record_id
            raise version_conflict_error(record_id, expected_version, None)
        if not self.update(record_id, rec):
            self.create(with_id(rec, record_id))
        return record_id

    def count(self, query: AnyQuery | None = None) -> int:
        """How many records match ``query`` (all when None)."""
        return len(self.search(query if query is not None else Query()))

    def aggregate(
        self,
        query: AnyQuery | None = None,
        group_by: str | Sequence[str] | None = None,
        metrics: Metrics | None = None,
    ) -> list[dict[str, Any]]:
        """Group the records matching ``query`` and compute metrics per group.

        Args:
            query: which records take part (its sort, offset, limit and projection play no
                part); None means every record.
            group_by: a field name or a list of them (dot paths as queries use them; ``"id"``
                is the record id); None gives one row over every match.
            metrics: ``{"name": (op, field)}`` with op one of count, sum, avg, min, max,
                cardinality; ``("count", None)`` counts records, ``("count", "f")`` the
                records where ``f`` is present and not None. None means
                ``{"count": ("count", None)}``.

        Returns:
            One dict per group, sorted by the group values in ``sort_by``'s order (None
            last): the group fields by their given names, then the metrics. A missing field
            and None are one group (None). Groups are exact values (``1``, ``1.0`` and
            ``True`` are three). ``sum`` and ``avg`` take numbers only (bool, str and the rest
            are skipped); ``sum`` of ints is an exact int, any float makes it the correctly
            rounded float sum; ``avg`` is ``float(sum) / n``. ``min``/``max`` follow
            ``sort_by``'s order over every non-None value; ``cardinality`` counts distinct
            non-None values exactly. Without ``group_by`` there is exactly one row, also
            when nothing matched (counts 0, the other metrics None). docs/aggregations.md
            has the details.

        Raises:
            QueryError: a malformed ``group_by`` or ``metrics`` (naming it), or a bad query.
        """
        acc = _native.Aggregator(to_spec(query), aggregation_spec(group_by, metrics), "")
        for batch in _row_batches(self.stream_read(None)):
            acc.feed_rows(batch)
        return acc.finish()

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

    def stream_write(
        self, records: Iterable[Record], config: StreamConfig | None = None
    ) -> StreamResult:
        """Write records in batches with the bulk path; a failed batch is retried record by
        record, each failure counted with its global index (``config.on_error`` says whether
        to go on)."""
        cfg = config or StreamConfig()
        if cfg.on_conflict == ConflictPolicy.SKIP:

            def create_missing(batch: list[Record]) -> list[str]:
                return _stored_ids(batch, self._create_missing(batch))

            return write_stream(
                records,
                create_missing,
                self.create,
                cfg,
                skip_on_duplicate=True,
                shortfall_is_skipped=True,
            )
        bulk, single, _ = resolve_conflict_write(
            cfg.on_conflict,
            insert_batch_func=self.create_batch,
            single_create_func=self.create,
            upsert_func=self.upsert,
            upsert_batch_func=self.upsert_batch,
        )
        return write_stream(records, bulk, single, cfg)

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


#: Records fed to the core's accumulators per crossing (`aggregate` without a native store).
_AGG_BATCH = 1000

_Row = tuple[str, dict[str, Any], dict[str, Any]]


def _row_of(record: Record) -> _Row:
    rid, data, metadata = record._to_row()
    return (record.id or rid or "", data, metadata)


def _row_batches(records: Iterable[Record]) -> Iterator[list[_Row]]:
    """Records as rows, a batch at a time (one crossing into the core per batch)."""
    batch: list[_Row] = []
    for record in records:
        batch.append(_row_of(record))
        if len(batch) >= _AGG_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _row_batches_async(records: AsyncIterable[Record]) -> AsyncIterator[list[_Row]]:
    """As `_row_batches`, over an async iterator."""
    batch: list[_Row] = []
    async for record in records:
        batch.append(_row_of(record))
        if len(batch) >= _AGG_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _upsert_config(cfg: StreamConfig) -> StreamConfig:
    return StreamConfig(
        batch_size=cfg.batch_size,
        prefetch=cfg.prefetch,
        timeout=cfg.timeout,
        on_error=cfg.on_error,
        on_conflict=ConflictPolicy.UPSERT,
    )
