"""Record transformers: a fluent list of mapping, exclusion and addition rules."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dataknobs_data.fields import FieldType
from dataknobs_data.records import Record

from ._records import Work, make_entry, typed_entries
from .operations import rename_in, transform_in

__all__ = ["AddRule", "ExcludeRule", "MapRule", "TransformRule", "Transformer"]


class TransformRule(ABC):
    """One step of a :class:`Transformer`."""

    @abstractmethod
    def apply(self, record: Record) -> Record | None:
        """Return a new record with the rule applied (None drops the record)."""


class _InPlaceRule(TransformRule):
    """Built-in rules: ``apply`` wraps an in-place step on a Work."""

    def apply(self, record: Record) -> Record:
        """Return a new record with the rule applied; ``record`` is left as it was."""
        work = Work(record)
        self._run(work)
        return work.record()

    def _run(self, work: Work) -> None:
        raise NotImplementedError


@dataclass
class MapRule(_InPlaceRule):
    """Move ``source`` to ``target`` (same name: in place), optionally transforming the value.

    If ``transform`` raises, the value is kept and the message is stored in metadata under
    ``_transform_error_<source>``. Records without ``source`` are copied unchanged.
    """

    source: str
    target: str
    transform: Callable[[Any], Any] | None = None

    def _run(self, work: Work) -> None:
        if self.transform is not None:
            transform_in(work, self.source, self.transform, f"_transform_error_{self.source}")
        if self.target != self.source:
            rename_in(work, self.source, self.target)


@dataclass
class ExcludeRule(_InPlaceRule):
    """Drop the named fields."""

    fields: list[str]

    def _run(self, work: Work) -> None:
        data = work.data
        for name in self.fields:
            data.pop(name, None)


@dataclass
class AddRule(_InPlaceRule):
    """Set ``field_name`` to ``value``, or to ``value(record)`` when it is callable.

    If the callable raises, the field is set to None and the message is stored in metadata
    under ``_compute_error_<field_name>``.
    """

    field_name: str
    value: Any
    field_type: FieldType | None = None

    def _run(self, work: Work) -> None:
        value = self.value
        if callable(value):
            try:
                value = value(work.snapshot())
            except Exception as exc:
                work.metadata[f"_compute_error_{self.field_name}"] = str(exc)
                value = None
        if self.field_type is not None:
            work.data, work.typed = typed_entries(work.data, work.typed), True
        work.data[self.field_name], work.typed = make_entry(
            self.field_name, value, work.typed, self.field_type
        )


@dataclass
class _FunctionRule(TransformRule):
    fn: Callable[[Record], Record | None]

    def apply(self, record: Record) -> Record | None:
        return self.fn(record)


_FAST_APPLY = frozenset({_InPlaceRule.apply})


class Transformer:
    """A reusable, stateless record transformation built fluently.

    Example::

        t = Transformer().rename("name", "full_name").map("age", transform=int).exclude("tmp")
        new = t.transform(record)   # a new record; ``record`` is unchanged

    Rules run in the order they were added. A rule (or a custom one from :meth:`add_rule`)
    returning None drops the record.
    """

    def __init__(self, rules: Iterable[TransformRule] | None = None) -> None:
        self.rules: list[TransformRule] = list(rules or ())

    def map(
        self,
        source: str,
        target: str | None = None,
        transform: Callable[[Any], Any] | None = None,
    ) -> Transformer:
        """Map ``source`` to ``target`` (default: itself), optionally transforming the value."""
        self.rules.append(MapRule(source, target or source, transform))
        return self

    def rename(self, old_name: str, new_name: str) -> Transformer:
        """Rename a field."""
        return self.map(old_name, new_name)

    def exclude(self, *fields: str) -> Transformer:
        """Drop fields."""
        self.rules.append(ExcludeRule(list(fields)))
        return self

    def add(
        self,
        field_name: str,
        value: Any,
        field_type: FieldType | None = None,
    ) -> Transformer:
        """Add a field with a fixed value or one computed by ``value(record)``."""
        self.rules.append(AddRule(field_name, value, field_type))
        return self

    def add_rule(self, rule: TransformRule | Callable[[Record], Record | None]) -> Transformer:
        """Add a custom rule (a TransformRule, or a function of the record)."""
        if not isinstance(rule, TransformRule):
            if not callable(rule):
                raise TypeError(f"a rule must be a TransformRule or callable, got {rule!r}")
            rule = _FunctionRule(rule)
        self.rules.append(rule)
        return self

    def transform(self, record: Record) -> Record | None:
        """Apply every rule; return the new record, or None when a rule dropped it."""
        work = Work(record)
        for rule in self.rules:
            if type(rule).apply in _FAST_APPLY:
                rule._run(work)  # type: ignore[attr-defined]
                continue
            out = rule.apply(work.snapshot())
            if out is None:
                return None
            work.reset(out)
        return work.record()

    def __call__(self, record: Record) -> Record | None:
        return self.transform(record)

    def transform_many(self, records: Iterable[Record]) -> list[Record]:
        """Transform each record, leaving out the dropped ones."""
        out: list[Record] = []
        for record in records:
            result = self.transform(record)
            if result is not None:
                out.append(result)
        return out

    def clear(self) -> Transformer:
        """Remove every rule."""
        self.rules.clear()
        return self

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"Transformer(rules={len(self.rules)})"
