"""The outcome of every validation or coercion step, and the state shared between steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ValidationContext", "ValidationResult"]


@dataclass(slots=True, init=False)
class ValidationResult:
    """Whether a value passed, the value itself (possibly coerced), errors and warnings.

    ``bool(result)`` is ``result.valid``. A dataclass (``dataclasses.asdict`` works); equality
    compares all four attributes.

    Args:
        valid: Whether validation passed.
        value: The validated value (the coerced one when coercion ran).
        errors: Error messages (a failed result has at least one).
        warnings: Messages that do not affect validity.
    """

    valid: bool
    value: Any
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # Hand-written: results are created for every checked value, and this is faster than the
    # generated __init__ with default factories.
    def __init__(
        self,
        valid: bool,
        value: Any,
        errors: list[str] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.valid = valid
        self.value = value
        self.errors = [] if errors is None else errors
        self.warnings = [] if warnings is None else warnings

    def __bool__(self) -> bool:
        return self.valid

    def merge(self, other: ValidationResult) -> ValidationResult:
        """A new result: valid only if both are; errors and warnings of both, in order.

        The value is ``other``'s when ``other`` is valid (it may have been coerced further),
        else this result's.
        """
        return ValidationResult(
            self.valid and other.valid,
            other.value if other.valid else self.value,
            self.errors + other.errors,
            self.warnings + other.warnings,
        )

    def add_error(self, error: str) -> ValidationResult:
        """Record an error and mark the result invalid; returns self for chaining."""
        self.errors.append(error)
        self.valid = False
        return self

    def add_warning(self, warning: str) -> ValidationResult:
        """Record a warning (validity unchanged); returns self for chaining."""
        self.warnings.append(warning)
        return self

    @classmethod
    def success(cls, value: Any, warnings: list[str] | None = None) -> ValidationResult:
        """A passing result for ``value``."""
        return cls(True, value, None, list(warnings) if warnings else None)

    @classmethod
    def failure(
        cls, value: Any, errors: list[str], warnings: list[str] | None = None
    ) -> ValidationResult:
        """A failing result for ``value`` with the given errors."""
        return cls(False, value, list(errors), list(warnings) if warnings else None)


# No slots: custom constraints may keep their own attributes on the context.
@dataclass
class ValidationContext:
    """State shared by the validations of one batch: the values seen per field (for Unique).

    Args:
        seen_values: Initial field name → set of values already seen.
        metadata: Free-form data for custom constraints.
    """

    seen_values: dict[str, set[Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The schema field being validated; a Unique constraint without a field name of its own
    #: tracks its values under this name, so two fields never share one set.
    current_field: str | None = field(default=None, repr=False, compare=False)

    def has_seen(self, field: str, value: Any) -> bool:
        """Whether ``value`` was already marked for ``field``."""
        seen = self.seen_values.get(field)
        return seen is not None and hashable(value) in seen

    def mark_seen(self, field: str, value: Any) -> None:
        """Remember ``value`` for ``field``."""
        seen = self.seen_values.get(field)
        if seen is None:
            seen = self.seen_values[field] = set()
        seen.add(hashable(value))

    def clear(self, field: str | None = None) -> None:
        """Forget the values of ``field``, or of every field when None."""
        if field is None:
            self.seen_values.clear()
        else:
            self.seen_values.pop(field, None)

    def set_metadata(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` for later steps."""
        self.metadata[key] = value

    def get_metadata(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        return self.metadata.get(key, default)


def hashable(value: Any) -> Any:
    """A hashable stand-in for ``value``: lists, dicts and sets become tagged tuples.

    Lets Unique track JSON values, which are unhashable.
    """
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return ("$dict", tuple(sorted((repr(k), hashable(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("$list", tuple(hashable(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("$set", frozenset(hashable(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("$repr", repr(value))
    return value
