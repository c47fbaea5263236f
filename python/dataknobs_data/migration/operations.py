"""Reversible operations on records: the steps a :class:`~.migration.Migration` is made of.

Every operation returns a new record (id and metadata kept) and never changes its input, so a
record can be migrated, compared with its original and rolled back (API.md §9 **Fix**: the
original package renamed Field objects shared with the input).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dataknobs_data.fields import FieldType
from dataknobs_data.records import Record

from ._records import build, entries, make_entry, renamed, replace_value, typed_entries, value_of

__all__ = [
    "AddField",
    "CompositeOperation",
    "Operation",
    "RemoveField",
    "RenameField",
    "TransformField",
]


@dataclass
class Operation(ABC):
    """A record change that can be applied forward and reversed for rollback."""

    @abstractmethod
    def apply(self, record: Record) -> Record:
        """Return a new record with this operation applied; ``record`` is left as it was."""

    @abstractmethod
    def reverse(self, record: Record) -> Record:
        """Return a new record with this operation undone; ``record`` is left as it was."""

    def affected_fields(self) -> set[str]:
        """Names of the fields this operation reads or writes."""
        return set()

    def is_reversible(self) -> bool:
        """Whether :meth:`reverse` restores what :meth:`apply` changed."""
        return True

    def __call__(self, record: Record) -> Record:
        return self.apply(record)


@dataclass
class AddField(Operation):
    """Add ``field_name`` with ``default_value`` when the record lacks it.

    Args:
        field_name: The field to add.
        default_value: Its value.
        field_type: Its type (detected from the value when None).
    """

    field_name: str
    default_value: Any = None
    field_type: FieldType | None = None

    def apply(self, record: Record) -> Record:
        """Add the field unless it exists (an existing value is kept)."""
        data, typed = entries(record)
        if self.field_name not in data:
            if self.field_type is not None:
                data, typed = typed_entries(data, typed), True
            data[self.field_name], typed = make_entry(
                self.field_name, self.default_value, typed, self.field_type
            )
        return build(record, data, typed)

    def reverse(self, record: Record) -> Record:
        """Remove the field."""
        data, typed = entries(record)
        data.pop(self.field_name, None)
        return build(record, data, typed)

    def affected_fields(self) -> set[str]:
        """The added field."""
        return {self.field_name}


def removed_key(field_name: str) -> str:
    """The metadata key under which :class:`RemoveField` keeps a removed value."""
    return f"_removed_{field_name}"


@dataclass
class RemoveField(Operation):
    """Remove ``field_name``.

    Args:
        field_name: The field to remove.
        store_removed: Keep the removed value in the record metadata (key
            ``_removed_<field_name>``) so :meth:`reverse` can restore it.
    """

    field_name: str
    store_removed: bool = False

    def apply(self, record: Record) -> Record:
        """Remove the field (keeping its value in metadata with ``store_removed``)."""
        data, typed = entries(record)
        metadata = dict(record.metadata)
        if self.field_name in data:
            entry = data.pop(self.field_name)
            if self.store_removed:
                metadata[removed_key(self.field_name)] = value_of(entry, typed)
        return build(record, data, typed, metadata)

    def reverse(self, record: Record) -> Record:
        """Restore the field from metadata when it was stored there; otherwise a plain copy."""
        data, typed = entries(record)
        metadata = dict(record.metadata)
        key = removed_key(self.field_name)
        if self.store_removed and key in metadata:
            data[self.field_name], typed = make_entry(self.field_name, metadata.pop(key), typed)
        return build(record, data, typed, metadata)

    def affected_fields(self) -> set[str]:
        """The removed field."""
        return {self.field_name}

    def is_reversible(self) -> bool:
        """Only a stored value can be restored."""
        return self.store_removed


def _rename(record: Record, old: str, new: str) -> Record:
    data, typed = entries(record)
    if old not in data or old == new:
        return build(record, data, typed)
    # The renamed field keeps its position; a field already called ``new`` is replaced.
    out = {}
    for name, entry in data.items():
        if name == old:
            out[new] = renamed(entry, new, typed)
        elif name != new:
            out[name] = entry
    return build(record, out, typed)


@dataclass
class RenameField(Operation):
    """Rename ``old_name`` to ``new_name`` (the field keeps its place, type and metadata)."""

    old_name: str
    new_name: str

    def apply(self, record: Record) -> Record:
        """Rename old -> new."""
        return _rename(record, self.old_name, self.new_name)

    def reverse(self, record: Record) -> Record:
        """Rename new -> old."""
        return _rename(record, self.new_name, self.old_name)

    def affected_fields(self) -> set[str]:
        """Both names."""
        return {self.old_name, self.new_name}


def transform_error_key(field_name: str) -> str:
    """The metadata key recording why a :class:`TransformField` function failed."""
    return f"_transform_error_{field_name}"


def reverse_error_key(field_name: str) -> str:
    """The metadata key recording why a :class:`TransformField` reverse function failed."""
    return f"_reverse_error_{field_name}"


def _transform(
    record: Record,
    field_name: str,
    fn: Callable[[Any], Any],
    error_key: str,
    clear_key: str | None,
) -> Record:
    data, typed = entries(record)
    metadata = dict(record.metadata)
    if clear_key is not None:
        metadata.pop(clear_key, None)
    if field_name in data:
        entry = data[field_name]
        try:
            value = fn(value_of(entry, typed))
        except Exception as exc:
            # A value the function cannot handle stays as it was; the reason travels with the
            # record so one odd record does not abort a whole migration.
            metadata[error_key] = str(exc)
        else:
            data[field_name] = replace_value(entry, value, typed)
    return build(record, data, typed, metadata)


@dataclass
class TransformField(Operation):
    """Replace the value of ``field_name`` with ``transform_fn(value)``.

    Args:
        field_name: The field to change (records without it are copied unchanged).
        transform_fn: Maps the old value to the new one. If it raises, the value is kept and
            the message is stored in metadata under ``_transform_error_<field_name>``.
        reverse_fn: Maps a new value back (for :meth:`reverse`); without it reverse copies
            the record unchanged.
    """

    field_name: str
    transform_fn: Callable[[Any], Any]
    reverse_fn: Callable[[Any], Any] | None = None

    def apply(self, record: Record) -> Record:
        """Transform the value."""
        return _transform(
            record, self.field_name, self.transform_fn, transform_error_key(self.field_name), None
        )

    def reverse(self, record: Record) -> Record:
        """Apply ``reverse_fn`` (a copy of the record when there is none)."""
        if self.reverse_fn is None:
            data, typed = entries(record)
            return build(record, data, typed)
        return _transform(
            record,
            self.field_name,
            self.reverse_fn,
            reverse_error_key(self.field_name),
            transform_error_key(self.field_name),
        )

    def affected_fields(self) -> set[str]:
        """The transformed field."""
        return {self.field_name}

    def is_reversible(self) -> bool:
        """Only with a reverse function."""
        return self.reverse_fn is not None


@dataclass
class CompositeOperation(Operation):
    """Several operations applied in order and reversed in reverse order."""

    operations: list[Operation] = field(default_factory=list)

    def apply(self, record: Record) -> Record:
        """Apply each operation in order."""
        result = record
        for operation in self.operations:
            result = operation.apply(result)
        if result is record:
            data, typed = entries(record)
            result = build(record, data, typed)
        return result

    def reverse(self, record: Record) -> Record:
        """Reverse each operation, last first."""
        result = record
        for operation in reversed(self.operations):
            result = operation.reverse(result)
        if result is record:
            data, typed = entries(record)
            result = build(record, data, typed)
        return result

    def add(self, operation: Operation) -> CompositeOperation:
        """Append an operation; return self for chaining."""
        self.operations.append(operation)
        return self

    def affected_fields(self) -> set[str]:
        """The fields of every operation."""
        out: set[str] = set()
        for operation in self.operations:
            out |= operation.affected_fields()
        return out

    def is_reversible(self) -> bool:
        """Whether every operation is."""
        return all(operation.is_reversible() for operation in self.operations)
