"""Building derived records without touching the input (API.md §9 **Fix**).

Operations and rules never change the record they are given: they work on an *entries*
dict (name -> plain value, or name -> Field when the record carries typed fields) taken
from the input and build a new record from it. Values themselves are shared, not copied:
deep-copying every value of every record would dominate a migration's cost, and no
operation here changes a value in place.
"""

from __future__ import annotations

from typing import Any

from dataknobs_data.fields import Field, FieldType, detect_type
from dataknobs_data.records import Record

Entries = dict[str, Any]


def entries(record: Record) -> tuple[Entries, bool]:
    """A new name -> entry dict of ``record`` and whether its entries are Field objects.

    Records read from storage hold plain values (no Field objects exist yet); keeping them
    plain avoids materialising a Field per value for every migrated record.
    """
    values = record._values
    if values is not None:
        return dict(values), False
    fields = record._fields
    assert fields is not None
    return {n: Field(n, f.value, f.type, dict(f.metadata)) for n, f in fields.items()}, True


def build(
    source: Record, data: Entries, typed: bool, metadata: dict[str, Any] | None = None
) -> Record:
    """A new record of ``source``'s class with ``data``, the source id and its metadata."""
    rid = source.storage_id
    if rid is None:
        # The id may come from a data field an operation removes or renames: keep it.
        rid = source.id
    meta = dict(source.metadata) if metadata is None else metadata
    cls = type(source)
    if typed:
        return cls(data, meta, id=rid)
    return cls._from_row(rid, data, meta)


def value_of(entry: Any, typed: bool) -> Any:
    """The plain value of an entry."""
    return entry.value if typed else entry


def make_entry(
    name: str, value: Any, typed: bool, field_type: FieldType | None = None
) -> tuple[Any, bool]:
    """An entry for ``value``; a requested ``field_type`` needs Field entries."""
    if field_type is not None or typed:
        return Field(name, value, field_type), True
    return value, False


def replace_value(entry: Any, value: Any, typed: bool) -> Any:
    """``entry`` with a new value: a Field keeps its type when the value fits, and its metadata."""
    if not typed:
        return value
    new = Field(entry.name, value, entry.type, entry.metadata)
    if not new.validate():
        new.type = detect_type(value)
    return new


def typed_entries(data: Entries, typed: bool) -> Entries:
    """``data`` with Field entries (for adding a field of an explicit type)."""
    if typed:
        return data
    return {n: Field(n, v) for n, v in data.items()}


def renamed(entry: Any, new_name: str, typed: bool) -> Any:
    """``entry`` under ``new_name``."""
    if not typed:
        return entry
    return Field(new_name, entry.value, entry.type, entry.metadata)


class Work:
    """A record being rewritten by a chain of steps: one entries dict, one metadata dict.

    Built-in operations and rules change a Work in place, so a Migration or Transformer of
    k steps copies the record once and builds one result, instead of k of each.
    """

    __slots__ = ("data", "metadata", "source", "typed")

    def __init__(self, record: Record) -> None:
        self.reset(record)

    def reset(self, record: Record) -> None:
        """Start over from ``record`` (after a step that only offers ``apply``)."""
        self.data, self.typed = entries(record)
        self.metadata = dict(record.metadata)
        self.source = record

    def record(self) -> Record:
        """The result; the Work must not be changed afterwards."""
        return build(self.source, self.data, self.typed, self.metadata)

    def snapshot(self) -> Record:
        """A record of the current state that later steps will not change."""
        data = dict(self.data)
        if self.typed:
            data = {n: Field(n, f.value, f.type, dict(f.metadata)) for n, f in data.items()}
        return build(self.source, data, self.typed, dict(self.metadata))
