"""Keeping record ids, record metadata and field metadata alongside a DataFrame.

A DataFrame has no place for a record's metadata or a field's metadata. The
:class:`MetadataHandler` puts them in ``df.attrs`` (ATTRS), in prefixed columns (COLUMNS) or
in a second column level holding each field's type (MULTI_INDEX), and reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import pandas as pd

from .columns import column_array, python_values

if TYPE_CHECKING:
    from dataknobs_data.records import Record

__all__ = ["MetadataConfig", "MetadataHandler", "MetadataStrategy"]


class MetadataStrategy(Enum):
    """Where metadata goes in a DataFrame."""

    NONE = "none"
    ATTRS = "attrs"
    COLUMNS = "columns"
    MULTI_INDEX = "multi_index"


@dataclass
class MetadataConfig:
    """What the :class:`MetadataHandler` keeps, and where.

    Args:
        strategy: Where metadata goes.
        include_record_metadata: Keep each record's ``metadata`` dict.
        include_field_metadata: Keep each field's ``metadata`` (the first non-empty one seen
            per field name).
        metadata_prefix: Prefix of the metadata columns (COLUMNS strategy).
        preserve_record_ids: Keep the record ids in ``attrs["record_ids"]`` (ATTRS strategy).
    """

    strategy: MetadataStrategy = MetadataStrategy.ATTRS
    include_record_metadata: bool = True
    include_field_metadata: bool = True
    metadata_prefix: str = "_meta_"
    preserve_record_ids: bool = True


class MetadataHandler:
    """Moves metadata between records and DataFrames by the configured strategy."""

    def __init__(self, config: MetadataConfig | None = None) -> None:
        self.config = config or MetadataConfig()

    def extract_metadata_from_records(self, records: list[Record]) -> dict[str, Any]:
        """A summary of ``records``: count, whether all have ids, field names (sorted), the
        type of each field (first typed occurrence) and, as configured, record and field
        metadata."""
        field_types: dict[str, str] = {}
        names: set[str] = set()
        for record in records:
            for name, field in record.fields.items():
                names.add(name)
                if name not in field_types and field.type is not None:
                    field_types[name] = field.type.value
        summary: dict[str, Any] = {
            "record_count": len(records),
            "has_record_ids": all(r.id for r in records),
            "field_names": sorted(names),
            "field_types": field_types,
        }
        if self.config.include_record_metadata:
            summary["record_metadata"] = [dict(r.metadata) if r.metadata else {} for r in records]
        if self.config.include_field_metadata:
            field_metadata: dict[str, dict[str, Any]] = {}
            for record in records:
                for name, field in record.fields.items():
                    if field.metadata and name not in field_metadata:
                        field_metadata[name] = dict(field.metadata)
            summary["field_metadata"] = field_metadata
        return summary

    def apply_metadata_to_dataframe(
        self, df: pd.DataFrame, metadata: dict[str, Any], records: list[Record] | None = None
    ) -> pd.DataFrame:
        """Store ``metadata`` in ``df`` (changed in place and returned).

        ATTRS updates ``df.attrs`` (plus ``record_ids`` from ``records``); COLUMNS adds one
        ``{prefix}{key}`` column per record-metadata key of ``records``; MULTI_INDEX makes the
        columns ``(field_name, field_type)`` pairs; NONE leaves ``df`` alone.
        """
        strategy = self.config.strategy
        if strategy is MetadataStrategy.ATTRS:
            df.attrs.update(metadata)
            if records and self.config.preserve_record_ids:
                df.attrs["record_ids"] = [r.id for r in records]
        elif strategy is MetadataStrategy.COLUMNS:
            if records and self.config.include_record_metadata:
                for key, values in _metadata_columns(records).items():
                    df[f"{self.config.metadata_prefix}{key}"] = column_array(values)
        elif strategy is MetadataStrategy.MULTI_INDEX and "field_types" in metadata:
            types = metadata["field_types"]
            df.columns = pd.MultiIndex.from_arrays(
                [list(df.columns), [types.get(c, "unknown") for c in df.columns]],
                names=["field_name", "field_type"],
            )
        return df

    def extract_metadata_from_dataframe(self, df: pd.DataFrame) -> dict[str, Any]:
        """The metadata the configured strategy stored in ``df``."""
        strategy = self.config.strategy
        found: dict[str, Any] = {}
        if strategy is MetadataStrategy.ATTRS:
            found = {str(k): v for k, v in df.attrs.items() if k is not None}
        elif strategy is MetadataStrategy.COLUMNS:
            prefix = self.config.metadata_prefix
            for column in df.columns:
                if isinstance(column, str) and column.startswith(prefix):
                    found[column[len(prefix) :]] = python_values(df[column])
        elif strategy is MetadataStrategy.MULTI_INDEX and isinstance(df.columns, pd.MultiIndex):
            found["field_names"] = df.columns.get_level_values(0).tolist()
            if df.columns.nlevels > 1:
                found["field_types"] = df.columns.get_level_values(1).tolist()
        return found

    def create_records_with_metadata(
        self, df: pd.DataFrame, base_records: list[Record], metadata: dict[str, Any] | None = None
    ) -> list[Record]:
        """Give ``base_records`` (converted from ``df``) back their ids, record metadata and
        field metadata, from ``metadata`` or else from what ``df`` holds. Changed in place."""
        if not metadata:
            metadata = self.extract_metadata_from_dataframe(df)
        ids = metadata.get("record_ids")
        if isinstance(ids, list) and len(ids) == len(base_records):
            for record, record_id in zip(base_records, ids, strict=True):
                if record_id:
                    record.id = record_id
        record_metadata = metadata.get("record_metadata")
        if isinstance(record_metadata, list):
            for record, meta in zip(base_records, record_metadata, strict=False):
                if meta:
                    record.metadata = dict(meta)
        field_metadata = metadata.get("field_metadata")
        if isinstance(field_metadata, dict):
            for record in base_records:
                for name, field in record.fields.items():
                    if name in field_metadata:
                        field.metadata = dict(field_metadata[name])
        return base_records

    def clean_dataframe_columns(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` without what the strategy added: COLUMNS drops the metadata columns (a new
        frame); MULTI_INDEX keeps only the field names as columns (in place)."""
        strategy = self.config.strategy
        if strategy is MetadataStrategy.COLUMNS:
            prefix = self.config.metadata_prefix
            return df.drop(
                columns=[c for c in df.columns if isinstance(c, str) and c.startswith(prefix)]
            )
        if strategy is MetadataStrategy.MULTI_INDEX and isinstance(df.columns, pd.MultiIndex):
            df.columns = df.columns.get_level_values(0)
        return df


def _metadata_columns(records: list[Record]) -> dict[str, list[Any]]:
    # Keys in first-seen order, so the columns come out in a stable order.
    keys: dict[str, None] = {}
    for record in records:
        for key in record.metadata:
            keys.setdefault(key, None)
    return {key: [r.metadata.get(key) for r in records] for key in keys}
