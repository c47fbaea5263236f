"""Schemas: the fields a record should have, their types and their constraints.

``Schema(name).field("age", "integer", constraints=[Range(0, 150)])`` builds one fluently;
``schema.validate(record_or_dict, coerce=False)`` returns a :class:`ValidationResult` whose
value, when valid, is a new :class:`~dataknobs_data.records.Record`: the input's fields in
order, coerced values in place, defaults filled in for missing fields, same id and metadata.
In non-strict mode fields the schema does not know are kept unchanged.

Type rules: STRING/TEXT need str; INTEGER an int (not a bool); FLOAT an int or float (not a
bool); BOOLEAN a bool; DATETIME a ``datetime`` (with ``coerce=True`` ISO strings, common date
formats and epoch seconds are converted — see :mod:`.coercer`); JSON a dict or list; BINARY
bytes or bytearray.

A missing field and a field whose value is None are the same here: the default fills it when
there is one (also for required fields), else a required field fails and an optional one is
left as it is (a missing optional field is not added to the result).

Error messages:

- ``Field '{name}' is required`` — a required field is missing or None (and has no default);
- ``Field '{name}' expects type {TYPE}, got {python type}`` — wrong type, no coercion asked;
- ``Field '{name}': Cannot coerce {type} to {kind}: {reason}`` — coercion failed (0.11.0's words);
- ``Field '{name}': {constraint message}`` — a constraint failed (messages in
  :mod:`.constraints`); a required field also gets ``Required()``, so it may not be empty;
- ``Unknown fields in strict mode: {names, sorted, comma separated}``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..config_values import config_bool, reject_unknown_keys
from ..exceptions import ConfigurationError
from ..fields import Field as RecordField
from ..fields import FieldType
from ..records import MISSING, Record
from .coercer import coerce_kind, resolve_target
from .constraints import Constraint, Required, as_constraint
from .result import ValidationContext, ValidationResult

__all__ = ["Field", "FieldDefinition", "Schema", "parse_field_type"]

#: One problem found while validating a record: (field name or None, public message, reason).
#: The reason is the message without the field name, for RecordValidationError.
Issue = tuple[str | None, str, str]


def parse_field_type(field_type: FieldType | str) -> FieldType:
    """A FieldType from itself, its value (``"integer"``) or its name (``"INTEGER"``).

    Raises:
        ValueError: Not a known type.
    """
    if isinstance(field_type, FieldType):
        return field_type
    if isinstance(field_type, str):
        text = field_type.strip()
        try:
            return FieldType(text.lower())
        except ValueError:
            pass
        try:
            return FieldType[text.upper()]
        except KeyError:
            pass
    raise ValueError(f"Invalid field type: {field_type}")


def _accepting(field_type: FieldType) -> tuple[tuple[type, ...], bool]:
    """(accepted types, whether bool must be excluded) for a field type."""
    if field_type in (FieldType.STRING, FieldType.TEXT):
        return (str,), False
    if field_type is FieldType.INTEGER:
        return (int,), True
    if field_type is FieldType.FLOAT:
        return (int, float), True
    if field_type is FieldType.BOOLEAN:
        return (bool,), False
    if field_type is FieldType.DATETIME:
        return (datetime,), False
    if field_type is FieldType.JSON:
        return (dict, list), False
    return (bytes, bytearray), False


def _fresh(default: Any) -> Any:
    # A mutable default must not be shared between the records it fills in.
    if isinstance(default, (dict, list, set, bytearray)):
        return copy.deepcopy(default)
    return default


class Field:
    """One field of a schema: its type, whether it is required, default and constraints.

    Not to be confused with :class:`dataknobs_data.fields.Field`, a field of a record; this
    describes what a schema expects of one. Also available as ``FieldDefinition``.

    Args:
        name: Field name.
        field_type: A FieldType, or its value or name.
        required: Whether a value must be present (a ``Required()`` constraint is added).
        default: Value used when the field is missing or None.
        constraints: Constraints the value must satisfy (not modified).
        description: Free text.
    """

    __slots__ = (
        "_accepts",
        "_exclude_bool",
        "_kind",
        "_type_name",
        "constraints",
        "default",
        "description",
        "field_type",
        "name",
        "required",
    )

    def __init__(
        self,
        name: str,
        field_type: FieldType | str,
        required: bool = False,
        default: Any = None,
        constraints: Iterable[Constraint] | None = None,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.field_type = parse_field_type(field_type)
        self.required = required
        self.default = default
        self.constraints: list[Constraint] = list(constraints or [])
        if required and not any(isinstance(c, Required) for c in self.constraints):
            self.constraints.insert(0, Required())
        self.description = description
        self._accepts, self._exclude_bool = _accepting(self.field_type)
        self._kind, self._type_name = resolve_target(self.field_type)

    def __repr__(self) -> str:
        return (
            f"Field(name={self.name!r}, field_type={self.field_type!r}, "
            f"required={self.required!r}, default={self.default!r}, "
            f"constraints={self.constraints!r}, description={self.description!r})"
        )

    def add_constraint(self, constraint: Constraint) -> Field:
        """Append a constraint; returns self for chaining."""
        self.constraints.append(constraint)
        return self

    def validate(
        self, value: Any, context: ValidationContext | None = None, coerce: bool = False
    ) -> ValidationResult:
        """Validate one value for this field; the result's value is the (coerced) value."""
        issues: list[Issue] = []
        warnings: list[str] = []
        out = self._check(value, context, coerce, issues, warnings)
        if issues:
            return ValidationResult(False, value, [i[1] for i in issues], warnings)
        return ValidationResult(True, None if out is MISSING else out, None, warnings)

    def _check(
        self,
        value: Any,
        context: ValidationContext | None,
        coerce: bool,
        issues: list[Issue],
        warnings: list[str],
    ) -> Any:
        """The value to store (MISSING: leave the field out); problems go to ``issues``."""
        name = self.name
        if value is None or value is MISSING:
            if self.default is not None:
                value = _fresh(self.default)
            elif self.required:
                issues.append((name, f"Field '{name}' is required", "value is required"))
                return value
            else:
                return value
        if (self._exclude_bool and value.__class__ is bool) or not isinstance(value, self._accepts):
            if not coerce:
                got = type(value).__name__
                reason = f"expects type {self.field_type.name}, got {got}"
                issues.append((name, f"Field '{name}' {reason}", reason))
                return value
            coerced = coerce_kind(value, self._kind, self._type_name)
            if not coerced.valid:
                for error in coerced.errors:
                    issues.append((name, f"Field '{name}': {error}", error))
                return value
            value = coerced.value
        if self.constraints:
            if context is not None:
                context.current_field = name
            for constraint in self.constraints:
                result = constraint._issues(value, context)
                if result is None:
                    continue
                if not result.valid:
                    for error in result.errors:
                        issues.append((name, f"Field '{name}': {error}", error))
                warnings.extend(result.warnings)
        return value

    def to_dict(self) -> dict[str, Any]:
        """``{"type", "required", "default", "description", "constraints": [...]}``."""
        return {
            "type": self.field_type.name,
            "required": self.required,
            "default": self.default,
            "description": self.description,
            "constraints": [c.to_dict() for c in self.constraints],
        }


FieldDefinition = Field


class Schema:
    """A named set of field definitions that records are validated against.

    Args:
        name: Schema name (used in messages).
        strict: Reject records that have fields the schema does not define.
        description: Free text.
    """

    def __init__(self, name: str, strict: bool = False, description: str | None = None) -> None:
        self.name = name
        self.strict = strict
        self.description = description
        self.fields: dict[str, Field] = {}

    def __repr__(self) -> str:
        return f"Schema(name={self.name!r}, strict={self.strict!r}, fields={list(self.fields)!r})"

    def field(
        self,
        name: str,
        field_type: FieldType | str,
        required: bool = False,
        default: Any = None,
        constraints: Iterable[Constraint] | None = None,
        description: str | None = None,
    ) -> Schema:
        """Define (or redefine) a field; returns self for chaining.

        Raises:
            ValueError: ``field_type`` is not a known type.
        """
        self.fields[name] = Field(name, field_type, required, default, constraints, description)
        return self

    def add_field(self, definition: Field) -> Schema:
        """Add a prepared :class:`Field` definition; returns self for chaining."""
        self.fields[definition.name] = definition
        return self

    def with_description(self, description: str) -> Schema:
        """Set the description; returns self for chaining."""
        self.description = description
        return self

    def validate(
        self,
        record: Record | Mapping[str, Any],
        coerce: bool = False,
        context: ValidationContext | None = None,
    ) -> ValidationResult:
        """Validate one record (or a name → value mapping).

        Valid: the result's value is the validated record (coerced when ``coerce``). Invalid:
        the value is the input as a Record and ``errors`` says why (see the module docstring).
        ``context`` carries state between records (Unique); a new one is used when None.
        """
        result, _ = self._run(record, coerce, context)
        return result

    def validate_many(
        self,
        records: Iterable[Record | Mapping[str, Any]],
        coerce: bool = False,
        stop_on_error: bool = False,
    ) -> list[ValidationResult]:
        """Validate records with one shared context (so Unique spans them all).

        With ``stop_on_error`` the list ends at the first invalid record's result.
        """
        context = ValidationContext()
        results: list[ValidationResult] = []
        for record in records:
            result, _ = self._run(record, coerce, context)
            results.append(result)
            if stop_on_error and not result.valid:
                break
        return results

    def _run(
        self,
        record: Record | Mapping[str, Any],
        coerce: bool,
        context: ValidationContext | None,
    ) -> tuple[ValidationResult, list[Issue]]:
        """The result plus the structured issues (for RecordValidationError)."""
        if context is None:
            context = ValidationContext()
        if isinstance(record, Record):
            source = record
            values = record._values
            if values is None:
                values = {n: f.value for n, f in record.fields.items()}
        else:
            values = dict(record)
            source = Record._from_row(None, values, {})
        issues: list[Issue] = []
        warnings: list[str] = []
        changed: dict[str, Any] | None = None
        get = values.get
        for name, definition in self.fields.items():
            before = get(name, MISSING)
            after = definition._check(before, context, coerce, issues, warnings)
            if after is not before and after is not MISSING:
                if changed is None:
                    changed = {}
                changed[name] = after
        if self.strict:
            unknown = [n for n in values if n not in self.fields]
            if unknown:
                ordered = sorted(unknown)
                names = ", ".join(ordered)
                reason = f"unknown field in strict schema '{self.name}'"
                if len(ordered) > 1:
                    reason = f"unknown fields in strict schema '{self.name}': {names}"
                issues.append((ordered[0], f"Unknown fields in strict mode: {names}", reason))
        if issues:
            return ValidationResult(False, source, [i[1] for i in issues], warnings), issues
        return ValidationResult(True, _rebuild(source, values, changed), None, warnings), issues

    def to_dict(self) -> dict[str, Any]:
        """A plain description, constraints included; :meth:`from_dict` reverses it."""
        return {
            "name": self.name,
            "strict": self.strict,
            "description": self.description,
            "fields": {name: d.to_dict() for name, d in self.fields.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Build a schema from :meth:`to_dict` output.

        ``fields`` may be a mapping of name → spec or a list of specs with a ``"name"``.
        A spec's ``constraints`` is a list of constraint dicts (or Constraint objects).
        """
        check_schema_keys(data)
        schema = cls(
            str(data.get("name", "unnamed")),
            config_bool(data, "strict", False),
            data.get("description"),
        )
        raw = data.get("fields") or {}
        specs: Iterable[tuple[str, Mapping[str, Any]]]
        if isinstance(raw, Mapping):
            specs = raw.items()
        else:
            specs = [(str(spec["name"]), spec) for spec in raw]
        for name, spec in specs:
            check_field_keys(spec, name)
            schema.field(
                name,
                spec.get("type", "string"),
                required=config_bool(spec, "required", False),
                default=spec.get("default"),
                constraints=_constraints_from(spec.get("constraints")),
                description=spec.get("description"),
            )
        return schema


#: The keys a schema spec may have (what :meth:`Schema.to_dict` writes).
SCHEMA_KEYS = ("name", "strict", "description", "fields")
#: The keys a field spec may have; ``name`` only where ``fields`` is a list.
FIELD_KEYS = ("name", "type", "required", "default", "description", "constraints")


def check_schema_keys(spec: Mapping[str, Any]) -> None:
    """Refuse a schema spec with a key that is not in :data:`SCHEMA_KEYS` (``feilds:``
    would otherwise give a schema without fields, which accepts every record).

    Raises:
        ConfigurationError: (also a ValueError) naming the key and the valid ones.
    """
    reject_unknown_keys(spec, SCHEMA_KEYS, "schema spec")


def check_field_keys(spec: Any, name: Any) -> None:
    """Refuse a field spec with a key that is not in :data:`FIELD_KEYS` (``requird:``
    would otherwise make the field optional).

    Raises:
        ConfigurationError: (also a ValueError) naming the key and the valid ones.
    """
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            str(name), f"a schema field spec must be a mapping, got {type(spec).__name__}"
        )
    reject_unknown_keys(spec, FIELD_KEYS, f"schema field {str(name)!r}")


def _constraints_from(raw: Any) -> list[Constraint]:
    # The original package wrote a constraint count here; there is nothing to restore from it.
    if not isinstance(raw, (list, tuple)):
        return []
    return [as_constraint(c) for c in raw]


def _rebuild(source: Record, values: dict[str, Any], changed: dict[str, Any] | None) -> Record:
    """A new record like ``source`` with ``changed`` values set (appended when new)."""
    fields = source._fields
    if fields is None:
        data = dict(values)
        if changed:
            data.update(changed)
        return Record._from_row(source._id, data, dict(source.metadata))
    # Field objects carry metadata and explicit types: keep them for unchanged fields.
    out: dict[str, RecordField] = {}
    for name, f in fields.items():
        if changed and name in changed:
            out[name] = RecordField(name, changed[name], None, dict(f.metadata))
        else:
            out[name] = RecordField(name, f.value, f.type, dict(f.metadata))
    if changed:
        for name, value in changed.items():
            if name not in out:
                out[name] = RecordField(name, value)
    return Record(out, source.metadata, id=source._id)
