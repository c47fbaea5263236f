"""Records to DataFrames and back.

A record becomes a row and each field a column. With ``preserve_types`` (the default) each
column gets the nullable dtype of the values it holds, built straight from the values and a
missing-value mask, so a NULL is ``pd.NA``/``NaT`` and never changes the column's type:

=====================================  ==========================================
values in the column (None aside)      dtype
=====================================  ==========================================
bool                                   ``boolean``
int                                    ``Int64`` (``object`` beyond 64 bits)
int and float                          ``Float64`` (NaN stays NaN, apart from NA)
str                                    ``string``
naive datetimes                        ``datetime64[us]``
aware datetimes, one time zone         ``datetime64[us, <that zone>]``
aware datetimes, several zones         ``datetime64[us, UTC]`` (the same instants)
anything else (dict, list, bytes,      ``object``, values as they are
mixed types, no value at all)
=====================================  ==========================================

Going back, every cell becomes a plain Python value (numpy scalars, Timestamps and NA are
not left behind): missing is None, ``Int64`` gives int, datetime columns give datetimes with
their time zone, JSON cells their dicts and lists.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import pandas as pd
from pandas.api.types import is_datetime64_any_dtype

from dataknobs_data.backends.native import _without_gc
from dataknobs_data.exceptions import ConfigurationError, DataFormatError
from dataknobs_data.fields import Field, FieldType
from dataknobs_data.records import Record

from .columns import column_array, object_array, python_values
from .metadata import MetadataStrategy
from .type_mapper import TypeMapper, is_missing, to_python

__all__ = ["ConversionOptions", "DataFrameConverter"]

_NULL_POLICIES = ("preserve", "drop", "fill")
#: The index name records_to_dataframe gives the record ids (and dataframe_to_records reads).
RECORD_ID_INDEX = "record_id"
#: The column holding each record's metadata with ``include_metadata``.
METADATA_COLUMN = "_metadata"


@dataclass
class ConversionOptions:
    """How records and DataFrames convert.

    Args:
        include_metadata: records→frame: add a ``_metadata`` column holding each record's
            metadata dict; frame→records: read that column back as the metadata.
        metadata_columns: frame→records: columns that hold metadata rather than data; a dict
            cell is merged into the record's metadata, another value is stored under the
            column name without leading underscores.
        flatten_nested: records→frame: a dict value becomes one ``field.key`` column per key.
        preserve_index: records→frame: the record ids become the index (named
            ``record_id``) unless they come from a data field or all look like generated
            uuids; frame→records: an index named ``record_id`` gives the ids back.
        use_index_as_id: frame→records: the index, whatever its name, gives the record ids.
        type_mapping: records→frame: ``{column: dtype}`` casts applied at the end.
        null_handling: frame→records: "preserve" (missing cells are None fields), "drop"
            (left out of the record) or "fill" (``fill_value``).
        datetime_format: the format used when ``type_mapping`` asks for a datetime dtype on
            a column of strings.
        timezone: records→frame: datetime columns converted to this zone (naive ones are
            taken as local to it).
        preserve_types: records→frame: nullable dtypes per column (above); False leaves the
            dtypes to pandas' own inference.
        index_column: records→frame: this field becomes the index; frame→records: an index
            of that name becomes the field again.
        flatten_json: the same as ``flatten_nested``.
        metadata_strategy: the strategy :meth:`DataFrameConverter.validate_conversion` assumes.
        handle_missing: the older name of ``null_handling`` (used when that is "preserve").
        fill_value: the value of missing cells under "fill".
    """

    include_metadata: bool = False
    metadata_columns: list[str] | None = None
    flatten_nested: bool = False
    preserve_index: bool = True
    use_index_as_id: bool = False
    type_mapping: dict[str, str] | None = None
    null_handling: str = "preserve"
    datetime_format: str | None = None
    timezone: str | None = None
    preserve_types: bool = True
    index_column: str | None = None
    flatten_json: bool = False
    metadata_strategy: MetadataStrategy = MetadataStrategy.ATTRS
    handle_missing: str = "preserve"
    fill_value: Any = None

    def __post_init__(self) -> None:
        if self.metadata_columns is None:
            self.metadata_columns = []
        if self.type_mapping is None:
            self.type_mapping = {}
        for name in ("null_handling", "handle_missing"):
            value = getattr(self, name)
            if value not in _NULL_POLICIES:
                raise ConfigurationError(
                    name, f"{value!r} is not one of {', '.join(map(repr, _NULL_POLICIES))}"
                )

    @property
    def missing_policy(self) -> str:
        """The policy in force for missing cells ("preserve", "drop" or "fill")."""
        return self.null_handling if self.null_handling != "preserve" else self.handle_missing

    def merge_metadata(self, meta1: dict[str, Any], meta2: dict[str, Any]) -> dict[str, Any]:
        """``meta1`` updated by ``meta2``, merging nested dicts key by key.

        Any other value of ``meta2`` (lists too) replaces ``meta1``'s. Neither input is
        changed; the result shares their values below the merged dicts.
        """
        merged = dict(meta1)
        for key, value in meta2.items():
            current = merged.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                merged[key] = self.merge_metadata(current, value)
            else:
                merged[key] = value
        return merged


class DataFrameConverter:
    """Converts records to DataFrames and DataFrames (or Series) to records."""

    def __init__(self, type_mapper: TypeMapper | None = None) -> None:
        self.type_mapper = type_mapper or TypeMapper()

    # ------------------------------------------------------------------ records → frame

    def records_to_dataframe(
        self, records: Iterable[Record], options: ConversionOptions | None = None
    ) -> pd.DataFrame:
        """A DataFrame with one row per record and one column per field (first-seen order).

        A record that lacks a field has a missing cell there. See :class:`ConversionOptions`
        for the index, metadata and dtypes.
        """
        collector = ColumnCollector(options or ConversionOptions())
        collector.add_page(list(records))
        return collector.frame(self.type_mapper)

    # ------------------------------------------------------------------ frame → records

    def dataframe_to_records(
        self, df: pd.DataFrame, options: ConversionOptions | None = None
    ) -> list[Record]:
        """One record per row, holding plain Python values (missing cells are None).

        Raises:
            DataFormatError: two columns have the same name.
        """
        opts = options or ConversionOptions()
        names = [_column_name(c) for c in df.columns]
        _check_unique(names)
        meta_names = set(opts.metadata_columns or ())
        if opts.include_metadata and METADATA_COLUMN in names:
            meta_names.add(METADATA_COLUMN)

        data_names: list[str] = []
        data_cols: list[list[Any]] = []
        index_name = df.index.name
        if opts.index_column is not None and index_name == opts.index_column:
            if opts.index_column in names:
                raise DataFormatError(
                    "dataframe", f"index {index_name!r} is also a column of the frame"
                )
            data_names.append(opts.index_column)
            data_cols.append(python_values(pd.Series(df.index, index=pd.RangeIndex(len(df)))))
        meta_cols: list[tuple[str, list[Any]]] = []
        for position, name in enumerate(names):
            values = python_values(df.iloc[:, position])
            if name in meta_names:
                meta_cols.append((name, values))
            else:
                data_names.append(name)
                data_cols.append(values)

        ids: list[str | None] | None = None
        if opts.use_index_as_id or (opts.preserve_index and index_name == RECORD_ID_INDEX):
            ids = [_id_of(v) for v in df.index]

        rows = _rows(data_names, data_cols, len(df), opts.missing_policy, opts.fill_value)

        def build() -> list[Record]:
            records: list[Record] = []
            make = Record._from_row
            for i, data in enumerate(rows):
                metadata: dict[str, Any] = {}
                for name, values in meta_cols:
                    cell = values[i]
                    if isinstance(cell, dict):
                        metadata.update(cell)
                    elif cell is not None:
                        metadata[name.lstrip("_")] = cell
                records.append(make(None if ids is None else ids[i], data, metadata))
            return records

        # Pausing the cyclic GC: it would rescan the new dicts many times over.
        return _without_gc(build, len(df))

    # ------------------------------------------------------------------ series

    def record_to_series(self, record: Record) -> pd.Series:
        """One record as an ``object`` Series named by the record id (None is ``pd.NA``)."""
        data = {
            name: self.type_mapper.convert_value_to_pandas(f.value, f.type)
            if f.type is not None
            else f.value
            for name, f in record.fields.items()
        }
        series = pd.Series(data, dtype=object)
        if record.id:
            series.name = record.id
        return series

    def series_to_record(self, series: pd.Series, record_id: str | None = None) -> Record:
        """A record from a Series (index = field names); ``_meta_*`` entries are skipped.

        The id is ``record_id``, else the Series name.
        """
        rid = record_id
        if not rid and series.name is not None:
            rid = str(series.name)
        fields: list[Field] = []
        for column, value in series.items():
            name = _column_name(column)
            if name.startswith("_meta_"):
                continue
            field_type = self.type_mapper.infer_field_type_from_value(value)
            converted = self.type_mapper.convert_value_from_pandas(value, field_type)
            fields.append(Field(name, converted, field_type))
        return Record(fields, id=rid)

    # ------------------------------------------------------------------ checks

    def validate_conversion(
        self, records: list[Record], df: pd.DataFrame, options: ConversionOptions | None = None
    ) -> dict[str, Any]:
        """How faithfully ``df`` holds ``records``: counts, fields kept or missing, and (with
        ``preserve_types``) the columns whose dtype is not that of their field type."""
        opts = options or ConversionOptions()
        fields: set[str] = set()
        for record in records:
            fields.update(record.fields)
        columns = {_column_name(c) for c in df.columns}
        if opts.metadata_strategy is MetadataStrategy.COLUMNS:
            columns = {c for c in columns if not c.startswith("_meta_")}
        type_report: dict[str, dict[str, str]] = {}
        if opts.preserve_types:
            for name, field_type in _column_types(records[:10]).items():
                if name not in df.columns:
                    continue
                actual = df[name].dtype
                if not _dtype_fits(actual, field_type, self.type_mapper):
                    type_report[name] = {
                        "expected": str(self.type_mapper.field_type_to_pandas(field_type)),
                        "actual": str(actual),
                    }
        return {
            "record_count_match": len(records) == len(df),
            "original_record_count": len(records),
            "dataframe_row_count": len(df),
            "field_preservation": {
                "original_fields": sorted(fields),
                "dataframe_columns": sorted(columns),
                "missing_fields": sorted(fields - columns),
                "extra_columns": sorted(columns - fields),
            },
            "type_preservation": type_report,
            "value_accuracy": {},
        }


class ColumnCollector:
    """Gathers records column by column, so a frame is built without keeping the records.

    ``BatchOperations.query_as_dataframe`` feeds it a stream page by page.
    """

    def __init__(self, options: ConversionOptions, keep_ids: bool = False) -> None:
        self.options = options
        # keep_ids: the ids go in the index even when they look generated (they are needed
        # to write the rows back).
        self.keep_ids = keep_ids
        self.flatten = options.flatten_nested or options.flatten_json
        self.columns: dict[str, list[Any]] = {}
        self.ids: list[str | None] = []
        self.ids_from_fields = False
        self.metadata: list[dict[str, Any] | None] = []
        self.has_metadata = False

    def add_page(self, records: Sequence[Record]) -> None:
        """Append records as rows, a column at a time (the fast path for a page)."""
        if self.flatten or self.options.include_metadata:
            for record in records:
                self.add(record)
            return
        row = len(self.ids)
        page = [_values_of(r) for r in records]
        columns = self.columns
        names = dict.fromkeys(chain.from_iterable(page))
        for name in names:
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * row
            column.extend([values.get(name) for values in page])
        if len(names) != len(columns):
            gap = [None] * len(page)
            for name, column in columns.items():
                if name not in names:
                    column.extend(gap)
        if not self.ids_from_fields and ("id" in names or RECORD_ID_INDEX in names):
            self.ids_from_fields = True
        self.ids.extend([r.id for r in records])

    def add(self, record: Record) -> None:
        """Append one record as a row."""
        row = len(self.ids)
        values = _values_of(record)
        columns = self.columns
        complete = len(values) == len(columns)
        for name, value in values.items():
            if self.flatten and isinstance(value, dict):
                complete = False
                for key, inner in value.items():
                    self._put(f"{name}.{key}", inner, row)
                continue
            column = columns.get(name)
            if column is None:
                complete = False
                column = columns[name] = [None] * row
            if len(column) > row:  # a flattened key landed on this name already
                column[row] = value
                complete = False
            else:
                column.append(value)
        if not complete:
            for column in columns.values():
                if len(column) == row:
                    column.append(None)
        if not self.ids_from_fields and ("id" in values or RECORD_ID_INDEX in values):
            self.ids_from_fields = True
        self.ids.append(record.id)
        if self.options.include_metadata:
            if record.metadata:
                self.has_metadata = True
                self.metadata.append(copy.deepcopy(record.metadata))
            else:
                self.metadata.append(None)

    def _put(self, name: str, value: Any, row: int) -> None:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = [None] * row
        if len(column) > row:
            column[row] = value
        else:
            column.append(value)

    def frame(self, mapper: TypeMapper) -> pd.DataFrame:
        """The DataFrame of the records added so far."""
        opts = self.options
        count = len(self.ids)
        if count == 0:
            return pd.DataFrame()
        if opts.preserve_types:
            data = {name: column_array(values) for name, values in self.columns.items()}
        else:
            data = {name: values for name, values in self.columns.items()}
        if opts.include_metadata and self.has_metadata and METADATA_COLUMN not in data:
            data[METADATA_COLUMN] = object_array(self.metadata)
        df = pd.DataFrame(data, index=pd.RangeIndex(count))
        if opts.timezone:
            for name in df.columns:
                if is_datetime64_any_dtype(df[name].dtype):
                    df[name] = mapper.normalize_timezone(df[name], opts.timezone)
        if opts.type_mapping:
            df = _apply_type_mapping(df, opts.type_mapping, opts.datetime_format, mapper)
        if opts.index_column and opts.index_column in df.columns:
            return df.set_index(opts.index_column)
        if opts.preserve_index and self._ids_make_index():
            df.index = pd.Index(self.ids, dtype=object, name=RECORD_ID_INDEX)
        return df

    def _ids_make_index(self) -> bool:
        # As 0.11.0 decides it: ids carried by a data field stay a column, and generated
        # uuids (every id 36 characters with four dashes) are noise in an index.
        ids = self.ids
        if self.ids_from_fields or not any(ids):
            return False
        return self.keep_ids or not all(len(i) == 36 and i.count("-") == 4 for i in ids if i)


# ---------------------------------------------------------------------- column building


def _apply_type_mapping(
    df: pd.DataFrame, mapping: Mapping[str, str], fmt: str | None, mapper: TypeMapper
) -> pd.DataFrame:
    plain: dict[str, str] = {}
    for name, dtype in mapping.items():
        if name in df.columns and str(dtype).lower().startswith("datetime"):
            df[name] = pd.to_datetime(df[name], format=fmt, errors="coerce")
        else:
            plain[name] = dtype
    return mapper.cast_dataframe_dtypes(df, plain) if plain else df


# ---------------------------------------------------------------------- frame reading


def _rows(
    names: list[str], columns: list[list[Any]], count: int, policy: str, fill: Any
) -> Iterable[dict[str, Any]]:
    if not names:
        return ({} for _ in range(count))
    if policy == "preserve":
        return (dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True))
    if policy == "fill":
        return (
            {n: fill if v is None else v for n, v in zip(names, row, strict=True)}
            for row in zip(*columns, strict=True)
        )
    return (
        {n: v for n, v in zip(names, row, strict=True) if v is not None}
        for row in zip(*columns, strict=True)
    )


def _column_name(column: Hashable) -> str:
    if isinstance(column, str):
        return column
    if isinstance(column, tuple):  # a MultiIndex column: its non-empty levels
        return ".".join(str(p) for p in column if p is not None and p != "")
    return str(column)


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataFormatError("dataframe", f"column {name!r} appears more than once")
        seen.add(name)


def _id_of(value: Any) -> str | None:
    if is_missing(value):
        return None
    value = to_python(value)
    return value if isinstance(value, str) else str(value)


def _values_of(record: Record) -> dict[str, Any]:
    # A record read from storage holds its plain values; reading them skips building Fields.
    values = record._values
    return values if values is not None else record.data


def _column_types(records: list[Record]) -> dict[str, FieldType]:
    found: dict[str, FieldType] = {}
    for record in records:
        for name, field in record.fields.items():
            if field.value is not None and field.type is not None:
                found.setdefault(name, field.type)
    return found


def _dtype_fits(dtype: Any, field_type: FieldType, mapper: TypeMapper) -> bool:
    if field_type is FieldType.DATETIME:
        return is_datetime64_any_dtype(dtype)
    if field_type in (FieldType.STRING, FieldType.TEXT):
        return isinstance(dtype, pd.StringDtype)
    return str(dtype) == str(mapper.field_type_to_pandas(field_type))
