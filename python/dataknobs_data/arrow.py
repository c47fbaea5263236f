"""Databases to Arrow and back: ``to_arrow``, ``stream_arrow`` and ``write_arrow``.

The methods are mixed into :class:`~dataknobs_data.database.SyncDatabase` and
:class:`~dataknobs_data.database.AsyncDatabase`. The batches are built in the Rust core
(arrow-rs), one RecordBatch per page of the store's stream with the GIL released, and reach
pyarrow through the Arrow PyCapsule interface without a copy; memory holds one page at a time
however large the result. A database whose store is not native (DuckDB) streams records and
has the same core build each batch from them.

A table has an ``id`` column (the record id; a data field called ``id`` is that column) and
one column per field. Unless a schema is given it is inferred from the first page:

=======================================  ====================================
values of the field (None aside)         Arrow type
=======================================  ====================================
bool                                     ``bool``
int                                      ``int64``
int and float                            ``float64``
str                                      ``string``
naive datetimes                          ``timestamp[us]``
aware datetimes                          ``timestamp[us, tz=UTC]`` (the same instants)
dates                                    ``date32``
bytes                                    ``binary``
anything else, mixed types, no value     ``string`` of tagged JSON (field metadata
                                         ``dataknobs.type = json``), read back as the values
=======================================  ====================================

A value that does not fit the schema raises :class:`SerializationError` naming the record
and the field, so nothing is dropped or coerced silently.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import _native
from .exceptions import DatabaseOperationError, DataknobsDataError
from .query import Query
from .query_logic import to_spec
from .records import Record
from .streaming import StreamConfig

if TYPE_CHECKING:
    import pyarrow as pa

    from .query_logic import ComplexQuery

    AnyQuery = Query | ComplexQuery

__all__ = ["ArrowMixin", "AsyncArrowMixin", "infer_schema", "records_to_batch"]

#: Field metadata marking a column of tagged JSON text.
JSON_KEY = b"dataknobs.type"
JSON_VALUE = b"json"
ID_COLUMN = "id"
#: Records per RecordBatch unless the caller says otherwise.
DEFAULT_BATCH_SIZE = 10_000


def _pa() -> Any:
    import pyarrow

    return pyarrow


def _polars() -> Any:
    try:
        import polars
    except ImportError as exc:
        raise ImportError("to_polars needs polars: pip install 'dataknobs-data[polars]'") from exc
    return polars


def table_to_pandas(table: pa.Table) -> Any:
    """``table.to_pandas()`` with int and bool columns as pandas' nullable ``Int64`` and
    ``boolean`` (NumPy's would turn a column with a null into floats or objects)."""
    import pandas as pd

    pa = _pa()
    nullable = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=nullable.get)


def _is_json(field: pa.Field) -> bool:
    return bool(field.metadata) and field.metadata.get(JSON_KEY) == JSON_VALUE


def infer_schema(records: Sequence[Record], columns: Sequence[str] | None = None) -> pa.Schema:
    """The schema of a table of ``records`` (see the module table; the rule lives in the Rust
    core, ``dataknobs_core::arrow``); ``columns`` picks and orders the fields (the ``id``
    column always comes first unless ``columns`` places it)."""
    rows = [_row_of(r) for r in records]
    return _pa().schema(_native.arrow_schema(rows, None if columns is None else list(columns)))


def records_to_batch(records: Sequence[Record], schema: pa.Schema) -> pa.RecordBatch:
    """One RecordBatch of ``records`` in ``schema``, built in the Rust core.

    Raises:
        SerializationError: a field is not in the schema, or a value does not fit its
            column's type; the message names the record and the field.
    """
    rows = [_row_of(r) for r in records]
    return _pa().record_batch(_native.rows_to_arrow(rows, schema))


def batch_to_records(batch: pa.RecordBatch | pa.Table, id_column: str = ID_COLUMN) -> list[Record]:
    """Records for the rows of ``batch``: ``id_column`` gives the ids, tagged-JSON columns
    their values back, nulls are None fields."""
    schema = batch.schema
    json_columns = [f.name for f in schema if _is_json(f)]
    columns = {name: batch.column(name).to_pylist() for name in schema.names}
    for name in json_columns:
        columns[name] = [None if v is None else _native.decode_json(v) for v in columns[name]]
    ids = columns.get(id_column)
    keep_id_field = False
    if ids is not None:
        keep_id_field = id_column != ID_COLUMN or _is_data_id(schema.field(id_column))
        if not keep_id_field:
            del columns[id_column]
    names = list(columns)
    make = Record._from_row
    records = []
    for i, row in enumerate(zip(*columns.values(), strict=True)):
        rid = None if ids is None or ids[i] is None else str(ids[i])
        records.append(make(rid, dict(zip(names, row, strict=True)), {}))
    return records


def _is_data_id(field: pa.Field) -> bool:
    # to_arrow writes the record id as a non-nullable string column; a data field named
    # "id" is nullable or of another type, and stays a field.
    return bool(field.nullable) or str(field.type) != "string"


def _row_of(record: Record) -> tuple[str, dict[str, Any], dict[str, Any]]:
    values = record._values
    data = values if values is not None else record.data
    rid = record.id
    return ("" if rid is None else rid), data, {}


def _project(query: AnyQuery | None) -> AnyQuery:
    return query if query is not None else Query()


class _Pager:
    """Cuts a record stream into pages and makes each a RecordBatch."""

    def __init__(self, schema: pa.Schema | None, columns: Sequence[str] | None) -> None:
        self.schema = schema
        # A given schema picks the fields, as columns= does.
        self.columns = columns if columns is not None or schema is None else list(schema.names)

    def batch(self, page: list[Record]) -> pa.RecordBatch:
        if self.schema is None:
            self.schema = infer_schema(page, self.columns)
        if self.columns is not None:
            wanted = set(self.columns) | {ID_COLUMN}
            page = [r.project([n for n in r.field_names() if n in wanted]) for r in page]
        return records_to_batch(page, self.schema)

    def table(self, batches: list[pa.RecordBatch]) -> pa.Table:
        pa = _pa()
        schema = self.schema if self.schema is not None else infer_schema([], self.columns)
        return pa.Table.from_batches(batches, schema=schema)


def _arrow_batches(data: Any) -> Iterator[Any]:
    pa = _pa()
    if isinstance(data, pa.Table):
        yield from data.to_batches()
    elif isinstance(data, pa.RecordBatch):
        yield data
    else:
        yield from data


def arrow_source(data: Any) -> Any | None:
    """``data`` as an object with ``__arrow_c_stream__`` (None when it holds no batches):
    a Table, RecordBatch or reader as it is, an iterable of batches as a reader that pulls
    them one at a time (so a generator of batches is never held whole)."""
    if hasattr(data, "__arrow_c_stream__"):
        return data
    pa = _pa()
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    batches = iter(data)
    first = next(batches, None)
    if first is None:
        return None
    return pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], batches))


def write_failed(
    error: Exception, ids: list[str], batches: int, records: list[Record]
) -> Exception:
    """What a ``write_arrow`` that failed at batch ``batches + 1`` (of ``records``, when they
    were built) raises, as the native writers do (``dataknobs_core::arrow::ArrowWrite``): the
    error itself when nothing was stored, else a ``DatabaseOperationError`` whose ``written``
    lists the ids the batches before it stored and ``not_written`` the failed batch's (the
    rest of the stream stored nothing)."""
    if not ids:
        return error
    failed = DatabaseOperationError(
        "write_arrow",
        f"Arrow batch {batches + 1} failed: {error}; {len(ids)} records of the {batches} "
        "batches before it stored, the rest of the stream not stored (see .written and "
        ".not_written)",
    )
    failed.written = ids  # type: ignore[attr-defined]
    failed.not_written = [r.id for r in records]  # type: ignore[attr-defined]
    return failed


def _pages(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    page: list[Record] = []
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


async def _apages(records: AsyncIterator[Record], size: int) -> AsyncIterator[list[Record]]:
    page: list[Record] = []
    async for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def picked_fields(columns: Sequence[str] | None, schema: pa.Schema | None) -> list[str] | None:
    # A given schema picks the fields, as columns= does.
    if columns is not None:
        return list(columns)
    return None if schema is None else list(schema.names)


def arrow_spec(query: AnyQuery | None, picked: list[str] | None) -> Any:
    """The store's spec for ``query``, reading only the picked fields when the query does not
    select its own (the store may then skip decoding the rest)."""
    spec = to_spec(_project(query))
    if picked is not None and spec is not None and not spec.get("fields"):
        spec = {**spec, "fields": picked}
    return spec


class ArrowMixin:
    """``to_arrow``, ``stream_arrow`` and ``write_arrow`` for a sync database."""

    def _arrow_stream(
        self,
        query: AnyQuery | None,
        columns: Sequence[str] | None,
        schema: pa.Schema | None,
        batch_size: int,
    ) -> Any | None:
        """A native ``ArrowStream`` over the store's cursor, or None when the database has no
        native store (its records then go through :func:`records_to_batch`)."""
        return None

    def stream_arrow(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Iterator[pa.RecordBatch]:
        """The matching records as RecordBatches of up to ``batch_size`` rows, streamed
        (memory holds one page). ``schema`` is inferred from the first page unless given;
        ``columns`` picks the fields."""
        native = self._arrow_stream(query, columns, schema, batch_size)
        if native is not None:
            yield from _native_batches(native)
            return
        db: Any = self
        pager = _Pager(schema, columns)
        stream = db.stream_read(_project(query), StreamConfig(batch_size=batch_size))
        for page in _pages(stream, batch_size):
            yield pager.batch(page)

    def to_arrow(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> pa.Table:
        """The matching records as one ``pyarrow.Table`` (see :meth:`stream_arrow`)."""
        native = self._arrow_stream(query, columns, schema, batch_size)
        if native is not None:
            batches = list(_native_batches(native))
            return _pa().Table.from_batches(batches, schema=_pa().schema(native))
        db: Any = self
        pager = _Pager(schema, columns)
        stream = db.stream_read(_project(query), StreamConfig(batch_size=batch_size))
        return pager.table([pager.batch(page) for page in _pages(stream, batch_size)])

    def to_pandas(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Any:
        """The matching records as a ``pandas.DataFrame``: :meth:`to_arrow`'s table, with
        nullable ``Int64`` / ``boolean`` columns so a null never turns ints into floats."""
        table = self.to_arrow(query, columns, schema=schema, batch_size=batch_size)
        return table_to_pandas(table)

    def to_polars(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Any:
        """The matching records as a ``polars.DataFrame`` over :meth:`to_arrow`'s buffers.

        Raises:
            ImportError: polars is not installed (``pip install dataknobs-data[polars]``).
        """
        pl = _polars()
        return pl.from_arrow(self.to_arrow(query, columns, schema=schema, batch_size=batch_size))

    def write_arrow(self, data: Any, *, id_column: str = ID_COLUMN) -> list[str]:
        """Create one record per row of a Table, a RecordBatch or an iterable of batches,
        one ``create_batch`` per batch (each all or nothing); the ids in order.
        ``id_column`` holds the ids (a row without one gets a new uuid4)."""
        native = self._arrow_writer()
        if native is not None:
            source = arrow_source(data)
            return [] if source is None else list(native(source, id_column))
        db: Any = self
        ids: list[str] = []
        for done, batch in enumerate(_arrow_batches(data)):
            records: list[Record] = []
            try:
                records = batch_to_records(batch, id_column)
                ids.extend(db.create_batch(records))
            except DataknobsDataError as exc:
                raise write_failed(exc, ids, done, records) from exc
        return ids

    def _arrow_writer(self) -> Any | None:
        """The store's ``create_from_arrow`` (rows built in Rust, one ``create_batch`` per
        batch), or None where records must pass through Python (no native store, or a
        validation schema to check them against)."""
        return None


def _native_batches(native: Any) -> Iterator[pa.RecordBatch]:
    record_batch = _pa().record_batch
    try:
        while (batch := native.next_batch()) is not None:
            yield record_batch(batch)
    finally:
        native.close()


class AsyncArrowMixin:
    """``to_arrow``, ``stream_arrow`` and ``write_arrow`` for an async database (awaited)."""

    async def _arrow_stream(
        self,
        query: AnyQuery | None,
        columns: Sequence[str] | None,
        schema: pa.Schema | None,
        batch_size: int,
    ) -> Any | None:
        """A native ``ArrowStream`` over the store's cursor, or None (see ArrowMixin)."""
        return None

    async def stream_arrow(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> AsyncIterator[pa.RecordBatch]:
        """The matching records as RecordBatches, streamed (see ArrowMixin.stream_arrow)."""
        native = await self._arrow_stream(query, columns, schema, batch_size)
        if native is not None:
            async for batch in _anative_batches(native):
                yield batch
            return
        db: Any = self
        pager = _Pager(schema, columns)
        stream = db.stream_read(_project(query), StreamConfig(batch_size=batch_size))
        async for page in _apages(stream, batch_size):
            yield pager.batch(page)

    async def to_arrow(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> pa.Table:
        """The matching records as one ``pyarrow.Table``."""
        native = await self._arrow_stream(query, columns, schema, batch_size)
        if native is not None:
            batches = [b async for b in _anative_batches(native)]
            return _pa().Table.from_batches(batches, schema=_pa().schema(native))
        db: Any = self
        pager = _Pager(schema, columns)
        stream = db.stream_read(_project(query), StreamConfig(batch_size=batch_size))
        return pager.table([pager.batch(page) async for page in _apages(stream, batch_size)])

    async def to_pandas(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Any:
        """The matching records as a ``pandas.DataFrame`` (see ArrowMixin.to_pandas)."""
        table = await self.to_arrow(query, columns, schema=schema, batch_size=batch_size)
        return table_to_pandas(table)

    async def to_polars(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Any:
        """The matching records as a ``polars.DataFrame`` (see ArrowMixin.to_polars).

        Raises:
            ImportError: polars is not installed (``pip install dataknobs-data[polars]``).
        """
        pl = _polars()
        table = await self.to_arrow(query, columns, schema=schema, batch_size=batch_size)
        return pl.from_arrow(table)

    async def write_arrow(self, data: Any, *, id_column: str = ID_COLUMN) -> list[str]:
        """Create one record per row, one ``create_batch`` per batch; the ids in order."""
        native = self._arrow_writer()
        if native is not None:
            source = arrow_source(data)
            return [] if source is None else list(await native(source, id_column))
        db: Any = self
        ids: list[str] = []
        for done, batch in enumerate(_arrow_batches(data)):
            records: list[Record] = []
            try:
                records = batch_to_records(batch, id_column)
                ids.extend(await db.create_batch(records))
            except DataknobsDataError as exc:
                raise write_failed(exc, ids, done, records) from exc
        return ids

    def _arrow_writer(self) -> Any | None:
        """The store's ``create_from_arrow_async``, or None (see ArrowMixin)."""
        return None


async def _anative_batches(native: Any) -> AsyncIterator[pa.RecordBatch]:
    record_batch = _pa().record_batch
    try:
        while (batch := await native.next_batch_async()) is not None:
            yield record_batch(batch)
    finally:
        native.close()
