"""Typed key-value stores over a database: your own objects in, your own objects out.

A keyed store keeps each value as one record whose id is its key. ``serializer(value)`` gives
the record's ``(data, metadata)``; ``deserializer(record)`` turns a stored record back into a
value. Listing and counting filter by equality on data fields (``filter_data``) and on
metadata keys (``filter_metadata``), through the database's own query semantics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .query import Filter, Operator, Query, SortSpec
from .records import Record

if TYPE_CHECKING:
    from .database import AsyncDatabase, SyncDatabase
    from .streaming import StreamConfig

__all__ = ["AsyncKeyedRecordStore", "SyncKeyedRecordStore"]

T = TypeVar("T")
Serializer = Callable[[T], tuple[dict[str, Any], dict[str, Any]]]


def _equality_query(
    filter_data: Mapping[str, Any] | None,
    filter_metadata: Mapping[str, Any] | None,
    sort: list[SortSpec] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Query:
    query = Query()
    for name, value in (filter_data or {}).items():
        query.filter(Filter(name, Operator.EQ, value))
    for name, value in (filter_metadata or {}).items():
        query.filter(Filter(f"metadata.{name}", Operator.EQ, value))
    for spec in sort or []:
        query.sort_specs.append(spec)
    return query.limit(limit).offset(offset)


class _KeyedBase(Generic[T]):
    def __init__(self, serializer: Serializer[T], deserializer: Callable[[Record], T]) -> None:
        self._serializer = serializer
        self._deserializer = deserializer

    def _record(self, key: str, value: T) -> Record:
        data, metadata = self._serializer(value)
        return Record(data=dict(data), metadata=dict(metadata), storage_id=key)

    def _value(self, record: Record | None) -> T | None:
        return None if record is None else self._deserializer(record)


class SyncKeyedRecordStore(_KeyedBase[T]):
    """Values of type ``T`` under string keys in a :class:`SyncDatabase`."""

    def __init__(
        self,
        db: SyncDatabase,
        *,
        serializer: Serializer[T],
        deserializer: Callable[[Record], T],
    ) -> None:
        super().__init__(serializer, deserializer)
        self._db = db

    @property
    def db(self) -> SyncDatabase:
        """The database the values live in."""
        return self._db

    def put(self, key: str, value: T) -> None:
        """Store ``value`` under ``key`` (replacing what was there)."""
        self._db.upsert(key, self._record(key, value))

    def get(self, key: str) -> T | None:
        """The value under ``key``, or None."""
        return self._value(self._db.read(key))

    def exists(self, key: str) -> bool:
        """Whether a value is stored under ``key``."""
        return self._db.exists(key)

    def delete(self, key: str) -> bool:
        """Remove the value under ``key``; False when there was none."""
        return self._db.delete(key)

    def put_batch(self, items: Mapping[str, T]) -> None:
        """Store every ``key: value`` (one bulk upsert)."""
        self._db.upsert_batch([self._record(k, v) for k, v in items.items()])

    def get_batch(self, keys: Sequence[str]) -> list[T | None]:
        """Values for ``keys`` in order (None where missing)."""
        return [self._value(r) for r in self._db.read_batch(list(keys))]

    def delete_batch(self, keys: Sequence[str]) -> int:
        """Remove the values under ``keys``; how many there were."""
        return sum(1 for removed in self._db.delete_batch(list(keys)) if removed)

    def clear(self) -> int:
        """Remove every value; how many there were."""
        return self._db.clear()

    def list(
        self,
        *,
        filter_data: Mapping[str, Any] | None = None,
        filter_metadata: Mapping[str, Any] | None = None,
        sort: list[SortSpec] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[T]:
        """Values whose data/metadata equal the given ones, sorted and paged."""
        query = _equality_query(filter_data, filter_metadata, sort, limit, offset)
        return [self._deserializer(r) for r in self._db.search(query)]

    def count(
        self,
        *,
        filter_data: Mapping[str, Any] | None = None,
        filter_metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """How many values match (all when no filter is given)."""
        return self._db.count(_equality_query(filter_data, filter_metadata))

    def stream(
        self,
        *,
        filter_data: Mapping[str, Any] | None = None,
        filter_metadata: Mapping[str, Any] | None = None,
        config: StreamConfig | None = None,
    ) -> Iterator[T]:
        """Matching values, page by page (bounded memory)."""
        query = _equality_query(filter_data, filter_metadata)
        for record in self._db.stream_read(query, config):
            yield self._deserializer(record)

    def search(self, query: Query) -> Sequence[Record]:
        """The stored records for any query (as records, not values)."""
        return self._db.search(query)


class AsyncKeyedRecordStore(_KeyedBase[T]):
    """Values of type ``T`` under string keys in an :class:`AsyncDatabase`."""

    def __init__(
        self,
        db: AsyncDatabase,
        *,
        serializer: Serializer[T],
        deserializer: Callable[[Record], T],
    ) -> None:
        super().__init__(serializer, deserializer)
        self._db = db

    @property
    def db(self) -> AsyncDatabase:
        """The database the values live in."""
        return self._db

    async def put(self, key: str, value: T) -> None:
        """Store ``value`` under ``key`` (replacing what was there)."""
        await self._db.upsert(key, self._record(key, value))

    async def get(self, key: str) -> T | None:
        """The value under ``key``, or None."""
        return self._value(await self._db.read(key))

    async def exists(self, key: str) -> bool:
        """Whether a value is stored under ``key``."""
        return await self._db.exists(key)

    async def delete(self, key: str) -> bool:
        """Remove the value under ``key``; False when there was none."""
        return await self._db.delete(key)

    async def put_batch(self, items: Mapping[str, T]) -> None:
        """Store every ``key: value`` (one bulk upsert)."""
        await self._db.upsert_batch([self._record(k, v) for k, v in items.items()])

    async def get_batch(self, keys: Sequence[str]) -> list[T | None]:
        """Values for ``keys`` in order (None where missing)."""
        return [self._value(r) for r in await self._db.read_batch(list(keys))]

    async def delete_batch(self, keys: Sequence[str]) -> int:
        """Remove the values under ``keys``; how many there were."""
        return sum(1 for removed in await self._db.delete_batch(list(keys)) if removed)

    async def clear(self) -> int:
        """Remove every value; how many there were."""
        return await self._db.clear()

    async def list(
        self,
        *,
        filter_data: Mapping[str, Any] | None = None,
        filter_metadata: Mapping[str, Any] | None = None,
        sort: list[SortSpec] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[T]:
        """Values whose data/metadata equal the given ones, sorted and paged."""
        query = _equality_query(filter_data, filter_metadata, sort, limit, offset)
        return [self._deserializer(r) for r in await self._db.search(query)]

    async def count(
        self,
        *,
        filter_data: Mapping[str, Any] | None = None,
        filter_metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """How many values match (all when no filter is given)."""
        return await self._db.count(_equality_query(filter_data, filter_metadata))

    async def stream(
        self,
        *,
        filter_data: Mapping[str, Any] | None = None,
        filter_metadata: Mapping[str, Any] | None = None,
        config: StreamConfig | None = None,
    ) -> AsyncIterator[T]:
        """Matching values, page by page (bounded memory)."""
        query = _equality_query(filter_data, filter_metadata)
        async for record in self._db.stream_read(query, config):
            yield self._deserializer(record)

    async def search(self, query: Query) -> Sequence[Record]:
        """The stored records for any query (as records, not values)."""
        return await self._db.search(query)
