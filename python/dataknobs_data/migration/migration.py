"""A versioned migration: an ordered list of reversible operations."""

from __future__ import annotations

from collections.abc import Iterable

from dataknobs_data.records import Record

from ._records import Work
from .operations import CompositeOperation, Operation, RenameField, TransformField, run_step

__all__ = ["Migration"]


def _fields_of(operation: Operation) -> set[str]:
    if type(operation).affected_fields is not Operation.affected_fields:
        return operation.affected_fields()
    # Operations written for the original package only carry the conventional attributes.
    out: set[str] = set()
    for attr in ("field_name", "old_name", "new_name"):
        value = getattr(operation, attr, None)
        if isinstance(value, str):
            out.add(value)
    for sub in getattr(operation, "operations", None) or ():
        if isinstance(sub, Operation):
            out |= _fields_of(sub)
    return out


class Migration:
    """Migrates records from ``from_version`` to ``to_version`` (and back).

    Args:
        from_version: The version records have before the migration.
        to_version: The version they have after it.
        description: What the migration is for.

    Applying it runs each operation in order and sets ``metadata["version"]`` to
    ``to_version``; ``apply(record, reverse=True)`` undoes the operations last first and sets
    it to ``from_version``. The input record is never changed.
    """

    def __init__(self, from_version: str, to_version: str, description: str | None = None) -> None:
        self.from_version = from_version
        self.to_version = to_version
        self.description = description
        self.operations: list[Operation] = []

    def add(self, operation: Operation) -> Migration:
        """Append an operation; return self for chaining."""
        self.operations.append(operation)
        return self

    def add_many(self, operations: Iterable[Operation]) -> Migration:
        """Append several operations; return self for chaining."""
        self.operations.extend(operations)
        return self

    def apply(self, record: Record, reverse: bool = False) -> Record:
        """Return the migrated record (or, with ``reverse``, the rolled-back one)."""
        work = Work(record)
        if reverse:
            for operation in reversed(self.operations):
                run_step(operation, work, backward=True)
        else:
            for operation in self.operations:
                run_step(operation, work, backward=False)
        work.metadata["version"] = self.from_version if reverse else self.to_version
        return work.record()

    def __call__(self, record: Record) -> Record:
        return self.apply(record)

    def apply_many(self, records: Iterable[Record], reverse: bool = False) -> list[Record]:
        """Apply the migration to each record."""
        return [self.apply(record, reverse) for record in records]

    def can_reverse(self) -> bool:
        """Whether reversing restores the records: every operation must be reversible.

        A TransformField without ``reverse_fn`` or a RemoveField that does not store the
        removed value cannot give the old data back.
        """
        return all(op.is_reversible() for op in self.operations)

    def get_affected_fields(self) -> set[str]:
        """Names of every field the operations touch (composites included)."""
        out: set[str] = set()
        for operation in self.operations:
            out |= _fields_of(operation)
        return out

    def validate(self, record: Record) -> tuple[bool, list[str]]:
        """Check that ``record`` can be migrated: ``(ok, issues)``.

        Issues: a ``metadata["version"]`` other than ``from_version``, and fields that a
        rename or transform needs but the record lacks.
        """
        issues: list[str] = []
        current = record.metadata.get("version")
        if current is not None and current != self.from_version:
            issues.append(f"Record version mismatch: expected {self.from_version}, got {current}")
        self._check_fields(self.operations, record, issues)
        return not issues, issues

    def _check_fields(
        self, operations: Iterable[Operation], record: Record, issues: list[str]
    ) -> None:
        for operation in operations:
            if isinstance(operation, RenameField):
                if operation.old_name not in record:
                    issues.append(f"Field '{operation.old_name}' not found for rename operation")
            elif isinstance(operation, TransformField):
                if operation.field_name not in record:
                    issues.append(
                        f"Field '{operation.field_name}' not found for transform operation"
                    )
            elif isinstance(operation, CompositeOperation):
                self._check_fields(operation.operations, record, issues)

    def __repr__(self) -> str:
        return (
            f"Migration(from='{self.from_version}', to='{self.to_version}', "
            f"operations={len(self.operations)})"
        )

    def __str__(self) -> str:
        lines = [f"Migration {self.from_version} -> {self.to_version}"]
        if self.description:
            lines[0] += f": {self.description}"
        lines += [f"  {i}. {op!r}" for i, op in enumerate(self.operations, 1)]
        return "\n".join(lines)
