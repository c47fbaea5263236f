"""Databases to Arrow and back: ``to_arrow``, ``stream_arrow`` and ``write_arrow``.

The methods are mixed into :class:`~dataknobs_data.database.SyncDatabase` and
:class:`~dataknobs_data.database.AsyncDatabase`. They are built in Python over pyarrow from
the pages ``stream_read`` yields, one RecordBatch per page, so memory holds one page at a
time however large the result.

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
aware datetimes                          ``timestamp[us, tz]`` (the zone when they share one
                                         ``zoneinfo`` zone, else UTC; the same instants)
dates                                    ``date32``
bytes                                    ``binary``
anything else, mixed types, no value     ``string`` of tagged JSON (field metadata
                                         ``dataknobs.type = json``), read back as the values
=======================================  ====================================

A value that does not fit the schema raises :class:`SerializationError` naming the record
and the field, so nothing is dropped or coerced silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from . import _native
from .exceptions import SerializationError
from .query import Query
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


def _is_json(field: pa.Field) -> bool:
    return bool(field.metadata) and field.metadata.get(JSON_KEY) == JSON_VALUE


def _column_type(values: Iterable[Any]) -> tuple[Any, bool]:
    """(Arrow type, is tagged JSON) for the values of one field."""
    pa = _pa()
    present = [v for v in values if v is not None]
    classes = {v.__class__ for v in present}
    if not classes:
        return pa.string(), True
    if classes == {bool}:
        return pa.bool_(), False
    if classes == {int}:
        return pa.int64(), False
    if classes <= {int, float}:
        return pa.float64(), False
    if classes == {str}:
        return pa.string(), False
    if classes == {bytes}:
        return pa.binary(), False
    if classes == {date}:
        return pa.date32(), False
    if all(issubclass(c, datetime) for c in classes):
        zones = {v.tzinfo for v in present}
        if zones == {None}:
            return pa.timestamp("us"), False
        if None not in zones:
            keys = {getattr(z, "key", None) for z in zones}
            zone = keys.pop() if len(keys) == 1 else None
            return pa.timestamp("us", tz=zone if isinstance(zone, str) else "UTC"), False
    return pa.string(), True


def infer_schema(records: Sequence[Record], columns: Sequence[str] | None = None) -> pa.Schema:
    """The schema of a table of ``records`` (see the module table); ``columns`` picks and
    orders the fields (the ``id`` column always comes first)."""
    pa = _pa()
    names: dict[str, None] = {}
    rows = [_row_of(r) for r in records]
    if columns is None:
        for _, data in rows:
            names.update(dict.fromkeys(data))
    else:
        names = dict.fromkeys(columns)
    fields = [] if ID_COLUMN in names else [pa.field(ID_COLUMN, pa.string(), nullable=False)]
    for name in names:
        if name == ID_COLUMN and not any(ID_COLUMN in data for _, data in rows):
            fields.append(pa.field(ID_COLUMN, pa.string()))
            continue
        arrow_type, is_json = _column_type(data.get(name) for _, data in rows)
        meta = {JSON_KEY: JSON_VALUE} if is_json else None
        fields.append(pa.field(name, arrow_type, metadata=meta))
    return pa.schema(fields)


def records_to_batch(records: Sequence[Record], schema: pa.Schema) -> pa.RecordBatch:
    """One RecordBatch of ``records`` in ``schema``.

    Raises:
        SerializationError: a field is not in the schema, or a value does not fit its
            column's type; the message names the record and the field.
    """
    pa = _pa()
    rows = [_row_of(r) for r in records]
    known = set(schema.names)
    for rid, data in rows:
        for name in data:
            if name not in known:
                raise SerializationError(
                    "arrow",
                    f"record {rid!r}: field {name!r} is not in the schema, which was "
                    f"inferred from the first page (pass schema= or columns=)",
                )
    arrays = []
    for field in schema:
        if field.name == ID_COLUMN and not any(ID_COLUMN in data for _, data in rows):
            values: list[Any] = [rid for rid, _ in rows]
        else:
            values = [data.get(field.name) for _, data in rows]
        if _is_json(field):
            values = [None if v is None else _native.encode_json(v) for v in values]
        arrays.append(_array(values, field, rows))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _array(values: list[Any], field: pa.Field, rows: list[tuple[str, dict[str, Any]]]) -> Any:
    pa = _pa()
    try:
        return pa.array(values, type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
        for (rid, _), value in zip(rows, values, strict=True):
            try:
                pa.array([value], type=field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
                raise SerializationError(
                    "arrow",
                    f"record {rid!r}, field {field.name!r}: {type(value).__name__} value "
                    f"{value!r:.80} does not fit {field.type}",
                ) from exc
        raise SerializationError("arrow", f"field {field.name!r}: {exc}") from exc


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


def _row_of(record: Record) -> tuple[str, dict[str, Any]]:
    values = record._values
    data = values if values is not None else record.data
    rid = record.id
    return ("" if rid is None else rid), data


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


class ArrowMixin:
    """``to_arrow``, ``stream_arrow`` and ``write_arrow`` for a sync database."""

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
        db: Any = self
        pager = _Pager(schema, columns)
        stream = db.stream_read(_project(query), StreamConfig(batch_size=batch_size))
        return pager.table([pager.batch(page) for page in _pages(stream, batch_size)])

    def write_arrow(self, data: Any, *, id_column: str = ID_COLUMN) -> list[str]:
        """Create one record per row of a Table, a RecordBatch or an iterable of batches,
        one ``create_batch`` per batch (each all or nothing); the ids in order.
        ``id_column`` holds the ids (a row without one gets a new uuid4)."""
        db: Any = self
        ids: list[str] = []
        for batch in _arrow_batches(data):
            ids.extend(db.create_batch(batch_to_records(batch, id_column)))
        return ids


class AsyncArrowMixin:
    """``to_arrow``, ``stream_arrow`` and ``write_arrow`` for an async database (awaited)."""

    async def stream_arrow(
        self,
        query: AnyQuery | None = None,
        columns: Sequence[str] | None = None,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> AsyncIterator[pa.RecordBatch]:
        """The matching records as RecordBatches, streamed (see ArrowMixin.stream_arrow)."""
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
        db: Any = self
        pager = _Pager(schema, columns)
        stream = db.stream_read(_project(query), StreamConfig(batch_size=batch_size))
        return pager.table([pager.batch(page) async for page in _apages(stream, batch_size)])

    async def write_arrow(self, data: Any, *, id_column: str = ID_COLUMN) -> list[str]:
        """Create one record per row, one ``create_batch`` per batch; the ids in order."""
        db: Any = self
        ids: list[str] = []
        for batch in _arrow_batches(data):
            ids.extend(await db.create_batch(batch_to_records(batch, id_column)))
        return ids
