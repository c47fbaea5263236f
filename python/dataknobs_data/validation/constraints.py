"""Constraints: composable rules a single value must satisfy.

Every constraint has ``check(value, context=None) -> ValidationResult`` and never raises for a
bad value. ``None`` passes every constraint except :class:`Required` (use ``required=True`` or
``Required()`` to demand a value); :class:`Not` lets None through as well, so ``~c`` never
turns a missing value into an error.

Composition: ``a & b`` is :class:`All`, ``a | b`` is :class:`AnyOf`, ``~a`` is :class:`Not`.
Nested compositions of the same kind are flattened: ``(a & b) & c`` is one ``All`` of three.

Serialisation: ``c.to_dict()`` gives ``{"type": <type name>, **parameters}`` and
``Constraint.from_dict(d)`` rebuilds it through a registry keyed by type name. Subclasses
register themselves (``type_name`` class attribute, default: the class name in lower case); the
default ``to_dict`` of a user subclass takes its public attributes, which must match its
constructor's parameters. :class:`Custom` serialises its function as ``"module:qualname"`` and
can be restored only when that function is importable (not a lambda or a local function).

Error messages (the ``{...}`` parts are the checked value, a bound or a type name):

- Required: ``Value is required``; ``Value cannot be empty`` (empty str, list, dict, set, tuple
  unless ``allow_empty``).
- Range: ``Value must be a number, got {type}``; ``Value is NaN (Not a Number), which is not
  valid for range comparisons``; ``Value {v} is less than minimum {min}``; ``Value {v} must be
  greater than {min}`` (exclusive); ``Value {v} is greater than maximum {max}``;
  ``Value {v} must be less than {max}`` (exclusive). Booleans are not numbers here. Bounds that
  are not numbers (datetimes, strings) compare values of their own kind; a value that cannot be
  compared with them gets ``Value must be comparable with {bound!r}, got {type}``.
- Length: ``Value does not have a length: {type}``; ``Length {n} is less than minimum {min}``;
  ``Length {n} is greater than maximum {max}``.
- Pattern: ``Value must be a string for pattern matching, got {type}``; ``Value '{v}' does not
  match pattern '{regex}'``. Matching is ``re.match``: anchored at the start only, as in the
  original package (add ``$`` to anchor the end).
- Enum: ``Value '{v}' is not in allowed values: {repr of each, comma separated}``.
- Unique: ``Duplicate value '{v}' for field '{field}'``; without a context it passes with the
  warning ``Unique constraint requires context for tracking``.
- Custom: its ``error_message`` (default ``Custom validation failed``); ``Custom validation
  error: {exception}`` when the function raises; ``Custom validator returned unexpected type:
  {type}`` when it returns neither a bool nor a ValidationResult.
- AnyOf: ``None of the constraints passed: {errors of each, comma separated}``.
- Not: ``Value should not satisfy constraint but it does``.

These follow the texts of the original pure-Python package, so code matching on them keeps
working.
"""

from __future__ import annotations

import importlib
import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from decimal import Decimal
from numbers import Real
from typing import Any, ClassVar

from ..config_values import reject_unknown_keys
from .result import ValidationContext, ValidationResult, hashable

__all__ = [
    "All",
    "AnyOf",
    "Constraint",
    "Custom",
    "Enum",
    "Length",
    "Not",
    "Pattern",
    "Range",
    "Required",
    "Unique",
    "as_constraint",
    "constraint_types",
]

_REGISTRY: dict[str, type[Constraint]] = {}
_ALIASES = {"and": "all", "any": "any_of", "anyof": "any_of", "or": "any_of"}


def constraint_types() -> dict[str, type[Constraint]]:
    """The registered constraint classes by type name (what ``from_dict`` understands)."""
    return dict(_REGISTRY)


def _fail(value: Any, error: str) -> ValidationResult:
    return ValidationResult(False, value, [error])


class Constraint(ABC):
    """A rule one value must satisfy. Subclasses implement :meth:`check`."""

    #: The name used by ``to_dict``/``from_dict``; defaults to the class name in lower case.
    #: An explicit name registers the class even over an existing one; a default name only
    #: when it is free, so a user class called ``Range`` does not replace the built-in.
    type_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        explicit = "type_name" in cls.__dict__
        if not explicit:
            cls.type_name = cls.__name__.lower()
        name = cls.type_name
        if not name.startswith("_") and (explicit or name not in _REGISTRY):
            _REGISTRY[name] = cls

    @abstractmethod
    def check(self, value: Any, context: ValidationContext | None = None) -> ValidationResult:
        """Validate ``value``; a stateful constraint (Unique) keeps its state in ``context``."""

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        """The check result, or None when it passed without warnings (the schema's fast path)."""
        result = self.check(value, context)
        return None if result.valid and not result.warnings else result

    def __and__(self, other: Constraint) -> All:
        if not isinstance(other, Constraint):
            return NotImplemented
        return All([self, other])

    def __or__(self, other: Constraint) -> AnyOf:
        if not isinstance(other, Constraint):
            return NotImplemented
        return AnyOf([self, other])

    def __invert__(self) -> Not:
        return Not(self)

    def to_dict(self) -> dict[str, Any]:
        """``{"type": type_name, **parameters}``; :meth:`from_dict` reverses it."""
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"type": self.type_name, **params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Constraint:
        """Rebuild a constraint from :meth:`to_dict` output.

        Called on :class:`Constraint` it dispatches on ``data["type"]`` (case-insensitive;
        ``"any"``/``"or"`` mean AnyOf, ``"and"`` means All). Unknown types raise ValueError.
        """
        if cls is Constraint:
            raw = str(data.get("type", "")).lower()
            name = _ALIASES.get(raw, raw)
            target = _REGISTRY.get(name)
            if target is None:
                known = ", ".join(sorted(_REGISTRY))
                raise ValueError(f"Unknown constraint type {raw!r}; known types: {known}")
            if target is not cls:
                return target.from_dict(data)
        params = {k: v for k, v in data.items() if k != "type"}
        keys = cls._param_keys()
        if keys is not None:
            reject_unknown_keys(params, keys, f"{cls.type_name} constraint")
        return cls._from_params(params)

    #: The parameters :meth:`from_dict` reads (besides ``type``), for a class whose
    #: ``_from_params`` is its own; None: the ``__init__`` parameters, when it is not.
    PARAM_KEYS: ClassVar[tuple[str, ...] | None] = None

    @classmethod
    def _param_keys(cls) -> tuple[str, ...] | None:
        """The keys a spec of this constraint may have, or None when they cannot be known
        (a subclass reading its own parameters, or taking ``**kwargs``)."""
        if cls.PARAM_KEYS is not None:
            return cls.PARAM_KEYS
        if getattr(cls._from_params, "__func__", None) is not _default_from_params:
            return None
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return tuple(p.name for p in params if p.kind is not p.VAR_POSITIONAL)

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Constraint:
        return cls(**params)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({params})"


_default_from_params = Constraint._from_params.__func__  # type: ignore[attr-defined]


class _Builtin(Constraint):
    """Constraints whose :meth:`_issues` is the primary check (no result object on success)."""

    type_name = "_builtin"

    def check(self, value: Any, context: ValidationContext | None = None) -> ValidationResult:
        """Validate ``value``; see the module docstring for the messages."""
        result = self._issues(value, context)
        return ValidationResult(True, value) if result is None else result

    @abstractmethod
    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        """None when ``value`` passes cleanly, else the (failed or warning) result."""


def as_constraint(spec: Constraint | dict[str, Any]) -> Constraint:
    """A constraint as given, or rebuilt from its ``to_dict`` form."""
    return spec if isinstance(spec, Constraint) else Constraint.from_dict(spec)


def _flatten(kind: type[Constraint], items: Iterable[Constraint]) -> list[Constraint]:
    out: list[Constraint] = []
    for item in items:
        if not isinstance(item, Constraint):
            raise TypeError(f"expected a Constraint, got {type(item).__name__}")
        if type(item) is kind:
            out.extend(item.constraints)  # type: ignore[attr-defined]
        else:
            out.append(item)
    return out


class All(_Builtin):
    """Every constraint must pass (logical AND); reports the errors of each failing one.

    Args:
        constraints: The constraints; nested ``All`` are flattened into this one.
    """

    type_name = "all"
    PARAM_KEYS = ("constraints",)

    def __init__(self, constraints: Iterable[Constraint]) -> None:
        self.constraints: list[Constraint] = _flatten(All, constraints)

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        errors: list[str] = []
        warnings: list[str] = []
        for constraint in self.constraints:
            result = constraint._issues(value, context)
            if result is not None:
                if not result.valid:
                    errors.extend(result.errors)
                warnings.extend(result.warnings)
        if not errors and not warnings:
            return None
        return ValidationResult(not errors, value, errors, warnings)

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "all", "constraints": [...]}``."""
        return {"type": self.type_name, "constraints": [c.to_dict() for c in self.constraints]}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Constraint:
        return cls([as_constraint(c) for c in params.get("constraints", [])])


class AnyOf(_Builtin):
    """At least one constraint must pass (logical OR); checks stop at the first that passes.

    Args:
        constraints: The alternatives; nested ``AnyOf`` are flattened into this one.
    """

    type_name = "any_of"
    PARAM_KEYS = ("constraints",)

    def __init__(self, constraints: Iterable[Constraint]) -> None:
        self.constraints: list[Constraint] = _flatten(AnyOf, constraints)

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        errors: list[str] = []
        for constraint in self.constraints:
            result = constraint._issues(value, context)
            if result is None or result.valid:
                return result
            errors.extend(result.errors)
        return _fail(value, f"None of the constraints passed: {', '.join(errors)}")

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "any_of", "constraints": [...]}``."""
        return {"type": self.type_name, "constraints": [c.to_dict() for c in self.constraints]}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Constraint:
        return cls([as_constraint(c) for c in params.get("constraints", [])])


class Not(_Builtin):
    """Passes when the wrapped constraint fails (None always passes).

    Args:
        constraint: The constraint to negate.
    """

    type_name = "not"
    PARAM_KEYS = ("constraint",)

    def __init__(self, constraint: Constraint) -> None:
        if not isinstance(constraint, Constraint):
            raise TypeError(f"expected a Constraint, got {type(constraint).__name__}")
        self.constraint = constraint

    def __invert__(self) -> Constraint:  # type: ignore[override]
        # ~~c is c: keeps serialised schemas small and the rule obvious.
        return self.constraint

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        if value is None:
            return None
        result = self.constraint._issues(value, context)
        if result is None or result.valid:
            return _fail(value, "Value should not satisfy constraint but it does")
        return None

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "not", "constraint": {...}}``."""
        return {"type": self.type_name, "constraint": self.constraint.to_dict()}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Constraint:
        return cls(as_constraint(params["constraint"]))


_EMPTIABLE = (str, list, dict, set, tuple, frozenset, bytes)


class Required(_Builtin):
    """A value must be present (not None) and, unless ``allow_empty``, not empty.

    Args:
        allow_empty: Accept empty strings and collections.
    """

    type_name = "required"

    def __init__(self, allow_empty: bool = False) -> None:
        self.allow_empty = allow_empty

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        if value is None:
            return _fail(value, "Value is required")
        if not self.allow_empty and isinstance(value, _EMPTIABLE) and len(value) == 0:
            return _fail(value, "Value cannot be empty")
        return None


def _is_number(value: Any) -> bool:
    cls = value.__class__
    if cls is int or cls is float:
        return True
    if cls is bool or isinstance(value, bool):
        return False
    return isinstance(value, (Real, Decimal))


class Range(_Builtin):
    """A number within ``[min, max]``; either bound may be None or exclusive.

    Args:
        min: Lower bound (inclusive unless ``min_exclusive``).
        max: Upper bound (inclusive unless ``max_exclusive``).
        min_exclusive: The value must be greater than ``min``.
        max_exclusive: The value must be less than ``max``.

    Raises:
        ValueError: ``min`` is greater than ``max``.
    """

    type_name = "range"

    def __init__(
        self,
        min: Any = None,
        max: Any = None,
        min_exclusive: bool = False,
        max_exclusive: bool = False,
    ) -> None:
        if min is not None and max is not None:
            try:
                inverted = min > max
            except TypeError as exc:
                raise ValueError(f"min ({min!r}) and max ({max!r}) are not comparable") from exc
            if inverted:
                raise ValueError(f"min ({min}) cannot be greater than max ({max})")
        self.min = min
        self.max = max
        self.min_exclusive = min_exclusive
        self.max_exclusive = max_exclusive
        # Bounds such as datetimes make this a range over their own kind instead of numbers.
        self._numeric = all(b is None or _is_number(b) for b in (min, max))

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        if value is None:
            return None
        if _is_number(value):
            if value != value:  # NaN: every comparison would be False and let it through
                return _fail(
                    value, "Value is NaN (Not a Number), which is not valid for range comparisons"
                )
        elif self._numeric or isinstance(value, bool):
            return _fail(value, f"Value must be a number, got {type(value).__name__}")
        try:
            return self._compare(value)
        except TypeError:
            bound = self.min if self.min is not None else self.max
            return _fail(
                value, f"Value must be comparable with {bound!r}, got {type(value).__name__}"
            )

    def _compare(self, value: Any) -> ValidationResult | None:
        lo, hi = self.min, self.max
        errors: list[str] = []
        if lo is not None:
            if self.min_exclusive:
                if value <= lo:
                    errors.append(f"Value {value} must be greater than {lo}")
            elif value < lo:
                errors.append(f"Value {value} is less than minimum {lo}")
        if hi is not None:
            if self.max_exclusive:
                if value >= hi:
                    errors.append(f"Value {value} must be less than {hi}")
            elif value > hi:
                errors.append(f"Value {value} is greater than maximum {hi}")
        return ValidationResult(False, value, errors) if errors else None


class Length(_Builtin):
    """The length (``len``) of a string or collection within ``[min, max]``.

    Args:
        min: Minimum length (inclusive).
        max: Maximum length (inclusive).

    Raises:
        ValueError: A bound is negative or ``min`` is greater than ``max``.
    """

    type_name = "length"

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        if min is not None and min < 0:
            raise ValueError(f"min length cannot be negative: {min}")
        if max is not None and max < 0:
            raise ValueError(f"max length cannot be negative: {max}")
        if min is not None and max is not None and min > max:
            raise ValueError(f"min length ({min}) cannot be greater than max ({max})")
        self.min = min
        self.max = max

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        if value is None:
            return None
        try:
            n = len(value)
        except TypeError:
            return _fail(value, f"Value does not have a length: {type(value).__name__}")
        errors: list[str] = []
        if self.min is not None and n < self.min:
            errors.append(f"Length {n} is less than minimum {self.min}")
        if self.max is not None and n > self.max:
            errors.append(f"Length {n} is greater than maximum {self.max}")
        return ValidationResult(False, value, errors) if errors else None


class Pattern(_Builtin):
    """A string matching a regular expression at its start (``re.match``).

    Args:
        pattern: The regex, as text or compiled. ``regex=`` is accepted as an alias.
    """

    type_name = "pattern"
    PARAM_KEYS = ("pattern", "regex", "flags")

    def __init__(
        self, pattern: str | re.Pattern[str] | None = None, *, regex: str | None = None
    ) -> None:
        source = pattern if pattern is not None else regex
        if source is None:
            raise TypeError("Pattern needs a regular expression")
        self.regex: re.Pattern[str] = re.compile(source) if isinstance(source, str) else source
        self.pattern_str: str = self.regex.pattern
        self._match = self.regex.match

    @property
    def pattern(self) -> str:
        """The regex source text."""
        return self.pattern_str

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        if value is None:
            return None
        if value.__class__ is not str and not isinstance(value, str):
            return _fail(
                value, f"Value must be a string for pattern matching, got {type(value).__name__}"
            )
        if self._match(value) is None:
            return _fail(value, f"Value '{value}' does not match pattern '{self.pattern_str}'")
        return None

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "pattern", "pattern": <source>, "flags": <int>}`` (flags only when set)."""
        out: dict[str, Any] = {"type": self.type_name, "pattern": self.pattern_str}
        flags = self.regex.flags & ~re.UNICODE
        if flags:
            out["flags"] = flags
        return out

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Constraint:
        source = params.get("pattern", params.get("regex"))
        if source is None:
            raise ValueError("a pattern constraint needs 'pattern'")
        return cls(re.compile(str(source), int(params.get("flags", 0))))


class Enum(_Builtin):
    """A value equal to one of ``values``.

    Args:
        values: The allowed values (at least one).
        case_sensitive: With False, strings compare case-insensitively.

    Raises:
        ValueError: ``values`` is empty.
    """

    type_name = "enum"

    def __init__(self, values: Iterable[Any], case_sensitive: bool = True) -> None:
        allowed = list(values)
        if not allowed:
            raise ValueError("Enum constraint requires at least one allowed value")
        self.values = allowed
        self.case_sensitive = case_sensitive
        keys = [self._key(v) for v in allowed]
        self._allowed: frozenset[Any] = frozenset(keys)
        self._message_values = ", ".join(repr(v) for v in allowed)

    def _key(self, value: Any) -> Any:
        if not self.case_sensitive and isinstance(value, str):
            return hashable(value.casefold())
        return hashable(value)

    @property
    def allowed(self) -> set[Any]:
        """The allowed values, as compared (strings folded when not case-sensitive)."""
        return set(self._allowed)

    @property
    def allowed_lower(self) -> set[Any]:
        """The allowed values with strings lower-cased (0.11.0's case-insensitive set)."""
        return {v.lower() if isinstance(v, str) else hashable(v) for v in self.values}

    @property
    def allowed_str(self) -> str:
        """The allowed values as the error message lists them."""
        return self._message_values

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        if value is None:
            return None
        if self._key(value) in self._allowed:
            return None
        return _fail(value, f"Value '{value}' is not in allowed values: {self._message_values}")

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "enum", "values": [...], "case_sensitive": bool}``."""
        return {
            "type": self.type_name,
            "values": list(self.values),
            "case_sensitive": self.case_sensitive,
        }


class Unique(_Builtin):
    """No value may repeat within one validation context (e.g. one ``validate_many`` call).

    Args:
        field_name: The name values are tracked under. When None, a schema tracks them under
            the field being validated (so two fields never share one set of values), and a
            standalone check under ``"default"``.
    """

    type_name = "unique"

    def __init__(self, field_name: str | None = None) -> None:
        self.field_name = field_name

    def check(self, value: Any, context: ValidationContext | None = None) -> ValidationResult:
        """Validate ``value``; see the module docstring for the messages."""
        # The whole check inline: it runs once per value of every record validated.
        if value is None or context is None:
            return super().check(value, context)
        key = self.field_name or context.current_field or "default"
        seen = context.seen_values.get(key)
        if seen is None:
            seen = context.seen_values[key] = set()
        cls = value.__class__
        marker = value if cls is str or cls is int else hashable(value)
        if marker in seen:
            return _fail(value, f"Duplicate value '{value}' for field '{key}'")
        seen.add(marker)
        return ValidationResult(True, value)

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        # Fails when the value was already seen under this key in the context; else marks it.
        if value is None:
            return None
        if context is None:
            return ValidationResult(
                True, value, None, ["Unique constraint requires context for tracking"]
            )
        result = self.check(value, context)
        return None if result.valid else result


class Custom(_Builtin):
    """A value accepted by a function returning a bool or a ValidationResult.

    Args:
        validator: ``fn(value) -> bool | ValidationResult``; exceptions count as failures.
        error_message: The error reported when ``fn`` returns False.
    """

    type_name = "custom"
    PARAM_KEYS = ("function", "error_message")

    def __init__(
        self,
        validator: Callable[[Any], bool | ValidationResult],
        error_message: str = "Custom validation failed",
    ) -> None:
        if not callable(validator):
            raise TypeError(f"Custom needs a callable, got {type(validator).__name__}")
        self.validator = validator
        self.error_message = error_message

    def _issues(self, value: Any, context: ValidationContext | None) -> ValidationResult | None:
        if value is None:
            return None
        try:
            outcome = self.validator(value)
        except Exception as exc:  # a failing user function is a failed check, not a crash
            return _fail(value, f"Custom validation error: {exc}")
        if isinstance(outcome, ValidationResult):
            return None if outcome.valid and not outcome.warnings else outcome
        if isinstance(outcome, bool):
            return None if outcome else _fail(value, self.error_message)
        return _fail(value, f"Custom validator returned unexpected type: {type(outcome).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "custom", "function": "module:qualname" | None, "error_message"}``.

        ``function`` is None for lambdas and local functions, which cannot be restored.
        """
        fn = self.validator
        module = getattr(fn, "__module__", None)
        qualname = getattr(fn, "__qualname__", "")
        path = f"{module}:{qualname}" if module and qualname and "<" not in qualname else None
        return {"type": self.type_name, "function": path, "error_message": self.error_message}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Constraint:
        path = params.get("function")
        message = params.get("error_message", "Custom validation failed")
        if not path:
            raise ValueError(
                "Custom constraint cannot be restored: its function was a lambda or a local "
                "function; pass an importable function"
            )
        module_name, _, qualname = str(path).partition(":")
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
        return cls(target, message)
