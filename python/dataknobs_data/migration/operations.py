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

from ._records import Work, make_entry, renamed, replace_value, typed_entries, value_of

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


def run_step(operation: Operation, work: Work, backward: bool) -> None:
    """Apply (or reverse) ``operation`` to ``work``.

    The built-in operations change the Work in place; any other operation, or a subclass
    that overrides ``apply``/``reverse``, goes through its public method.
    """
    cls = type(operation)
    if backward:
        if cls.reverse in _FAST_REVERSE:
            operation._backward(work)  # type: ignore[attr-defined]
            return
        work.reset(operation.reverse(work.snapshot()))
    else:
        if cls.apply in _FAST_APPLY:
            operation._forward(work)  # type: ignore[attr-defined]
            return
        work.reset(operation.apply(work.snapshot()))


class _InPlace(Operation):
    """Built-in operations: ``apply``/``reverse`` wrap in-place steps on a Work."""

    def apply(self, record: Record) -> Record:
        """Return a new record with this operation applied; ``record`` is left as it was."""
        work = Work(record)
        self._forward(work)
        return work.record()

    def reverse(self, record: Record) -> Record:
        """Return a new record with this operation undone; ``record`` is left as it was."""
        work = Work(record)
        self._backward(work)
        return work.record()

    def _forward(self, work: Work) -> None:
        raise NotImplementedError

    def _backward(self, work: Work) -> None:
        raise NotImplementedError


@dataclass
class AddField(_InPlace):
    """Add ``field_name`` with ``default_value`` when the record lacks it.

    Args:
        field_name: The field to add.
        default_value: Its value.
        field_type: Its type (detected from the value when None).
    """

    field_name: str
    default_value: Any = None
    field_type: FieldType | None = None

    def _forward(self, work: Work) -> None:
        if self.field_name not in work.data:
            if self.field_type is not None:
                work.data, work.typed = typed_entries(work.data, work.typed), True
            work.data[self.field_name], work.typed = make_entry(
                self.field_name, self.default_value, work.typed, self.field_type
            )

    def _backward(self, work: Work) -> None:
        work.data.pop(self.field_name, None)

    def affected_fields(self) -> set[str]:
        """The added field."""
        return {self.field_name}


def removed_key(field_name: str) -> str:
    """The metadata key under which :class:`RemoveField` keeps a removed value."""
    return f"_removed_{field_name}"


@dataclass
class RemoveField(_InPlace):
    """Remove ``field_name``.

    Args:
        field_name: The field to remove.
        store_removed: Keep the removed value in the record metadata (key
            ``_removed_<field_name>``) so :meth:`reverse` can restore it.
    """

    field_name: str
    store_removed: bool = False

    def _forward(self, work: Work) -> None:
        if self.field_name in work.data:
            entry = work.data.pop(self.field_name)
            if self.store_removed:
                work.metadata[removed_key(self.field_name)] = value_of(entry, work.typed)

    def _backward(self, work: Work) -> None:
        key = removed_key(self.field_name)
        if self.store_removed and key in work.metadata:
            value = work.metadata.pop(key)
            work.data[self.field_name], work.typed = make_entry(self.field_name, value, work.typed)

    def affected_fields(self) -> set[str]:
        """The removed field."""
        return {self.field_name}

    def is_reversible(self) -> bool:
        """Only a stored value can be restored."""
        return self.store_removed


def rename_in(work: Work, old: str, new: str) -> None:
    """Rename ``old`` to ``new`` in place of it; an existing ``new`` field is replaced."""
    data = work.data
    if old not in data or old == new:
        return
    typed = work.typed
    out = {}
    for name, entry in data.items():
        if name == old:
            out[new] = renamed(entry, new, typed)
        elif name != new:
            out[name] = entry
    work.data = out


@dataclass
class RenameField(_InPlace):
    """Rename ``old_name`` to ``new_name`` (the field keeps its place, type and metadata)."""

    old_name: str
    new_name: str

    def _forward(self, work: Work) -> None:
        rename_in(work, self.old_name, self.new_name)

    def _backward(self, work: Work) -> None:
        rename_in(work, self.new_name, self.old_name)

    def affected_fields(self) -> set[str]:
        """Both names."""
        return {self.old_name, self.new_name}


def transform_error_key(field_name: str) -> str:
    """The metadata key recording why a :class:`TransformField` function failed."""
    return f"_transform_error_{field_name}"


def reverse_error_key(field_name: str) -> str:
    """The metadata key recording why a :class:`TransformField` reverse function failed."""
    return f"_reverse_error_{field_name}"


def transform_in(work: Work, field_name: str, fn: Callable[[Any], Any], error_key: str) -> None:
    """Replace the value of ``field_name`` with ``fn(value)``; on error keep it and say why."""
    data = work.data
    if field_name in data:
        entry = data[field_name]
        try:
            value = fn(value_of(entry, work.typed))
        except Exception as exc:
            # A value the function cannot handle stays as it was; the reason travels with the
            # record so one odd record does not abort a whole migration.
            work.metadata[error_key] = str(exc)
        else:
            data[field_name] = replace_value(entry, value, work.typed)


@dataclass
class TransformField(_InPlace):
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

    def _forward(self, work: Work) -> None:
        transform_in(work, self.field_name, self.transform_fn, transform_error_key(self.field_name))

    def _backward(self, work: Work) -> None:
        if self.reverse_fn is None:
            return
        work.metadata.pop(transform_error_key(self.field_name), None)
        transform_in(work, self.field_name, self.reverse_fn, reverse_error_key(self.field_name))

    def affected_fields(self) -> set[str]:
        """The transformed field."""
        return {self.field_name}

    def is_reversible(self) -> bool:
        """Only with a reverse function."""
        return self.reverse_fn is not None


@dataclass
class CompositeOperation(_InPlace):
    """Several operations applied in order and reversed in reverse order."""

    operations: list[Operation] = field(default_factory=list)

    def _forward(self, work: Work) -> None:
        for operation in self.operations:
            run_step(operation, work, backward=False)

    def _backward(self, work: Work) -> None:
        for operation in reversed(self.operations):
            run_step(operation, work, backward=True)

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


_FAST_APPLY = frozenset({_InPlace.apply})
_FAST_REVERSE = frozenset({_InPlace.reverse})
