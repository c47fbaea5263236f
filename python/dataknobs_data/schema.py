"""Declarative database schemas: the fields a database's records are expected to have.

A :class:`DatabaseSchema` names fields and their :class:`~dataknobs_data.fields.FieldType`
(plus ``required``/``default`` and free-form metadata). Databases carry one as ``db.schema``
(``SyncDatabase(schema=...)``, ``db.set_schema``, ``db.with_schema(name=FieldType.STRING)``);
like dataknobs-data 0.11.0's, it describes the data and does not reject writes. Validation that
rejects bad records is :mod:`dataknobs_data.validation` (a ``Schema`` in the ``schema`` config
key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .fields import FieldType

__all__ = ["DatabaseSchema", "FieldSchema"]


def _field_type(value: FieldType | str) -> FieldType:
    if isinstance(value, FieldType):
        return value
    try:
        return FieldType(value)
    except ValueError:
        known = ", ".join(t.value for t in FieldType)
        raise ValueError(f"Unknown field type {value!r}; expected one of: {known}") from None


@dataclass
class FieldSchema:
    """One field of a :class:`DatabaseSchema`.

    Args:
        name: The field name.
        type: Its :class:`FieldType` (or the type's value, e.g. ``"integer"``).
        metadata: Free-form facts about the field.
        required: Whether records are expected to have it.
        default: The value assumed when a record lacks it.
    """

    name: str
    type: FieldType
    metadata: dict[str, Any] = field(default_factory=dict)
    required: bool = False
    default: Any = None

    def __post_init__(self) -> None:
        self.type = _field_type(self.type)

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "type" (its value), "metadata", "required", "default"}``."""
        return {
            "name": self.name,
            "type": self.type.value,
            "metadata": self.metadata,
            "required": self.required,
            "default": self.default,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSchema:
        """Build from :meth:`to_dict` output (``name`` and ``type`` are needed)."""
        return cls(
            name=data["name"],
            type=_field_type(data["type"]),
            metadata=dict(data.get("metadata") or {}),
            required=bool(data.get("required", False)),
            default=data.get("default"),
        )


@dataclass
class DatabaseSchema:
    """The fields a database's records are expected to have, by name.

    Args:
        fields: name → :class:`FieldSchema`, in declaration order.
        metadata: Free-form facts about the schema.
    """

    fields: dict[str, FieldSchema] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, **field_definitions: Any) -> DatabaseSchema:
        """A schema from ``name=FieldType`` or ``name=(FieldType, options)`` keywords.

        ``options`` may hold ``required``, ``default`` and ``metadata``; other keys go into the
        field's metadata.

        Raises:
            ValueError: for a definition that is neither form.
        """
        schema = cls()
        for name, definition in field_definitions.items():
            if isinstance(definition, FieldType):
                schema.add_field(FieldSchema(name, definition))
            elif isinstance(definition, tuple) and len(definition) == 2:
                kind, options = definition
                options = dict(options or {})
                metadata = dict(options.pop("metadata", None) or {})
                required = bool(options.pop("required", False))
                default = options.pop("default", None)
                metadata.update(options)
                schema.add_field(FieldSchema(name, kind, metadata, required, default))
            else:
                raise ValueError(f"Invalid field definition for {name}: {definition!r}")
        return schema

    def add_field(self, field_schema: FieldSchema) -> DatabaseSchema:
        """Add (or replace) a field; returns the schema for chaining."""
        self.fields[field_schema.name] = field_schema
        return self

    def add_text_field(self, name: str, required: bool = False) -> DatabaseSchema:
        """Add a TEXT field; returns the schema for chaining."""
        return self.add_field(FieldSchema(name, FieldType.TEXT, required=required))

    def remove_field(self, name: str) -> bool:
        """Remove a field; False when the schema has none of that name."""
        return self.fields.pop(name, None) is not None

    def to_dict(self) -> dict[str, Any]:
        """``{"fields": {name: FieldSchema.to_dict()}, "metadata"}``."""
        return {
            "fields": {name: f.to_dict() for name, f in self.fields.items()},
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatabaseSchema:
        """Build from :meth:`to_dict` output or a short form.

        A field may be given as its type's value (``{"fields": {"age": "integer"}}``) or as a
        dict with ``type`` (and optionally ``required``, ``default``, ``metadata``; other keys
        join the metadata).
        """
        schema = cls(metadata=dict(data.get("metadata") or {}))
        for name, spec in (data.get("fields") or {}).items():
            if isinstance(spec, str | FieldType):
                schema.add_field(FieldSchema(name, _field_type(spec)))
                continue
            if not isinstance(spec, Mapping) or "type" not in spec:
                raise ValueError(f"Invalid field definition for {name}: {spec!r}")
            extra = {
                k: v
                for k, v in spec.items()
                if k not in ("name", "type", "metadata", "required", "default")
            }
            metadata = {**extra, **dict(spec.get("metadata") or {})}
            schema.add_field(
                FieldSchema(
                    name,
                    _field_type(spec["type"]),
                    metadata,
                    bool(spec.get("required", False)),
                    spec.get("default"),
                )
            )
        return schema


def is_declarative_schema(spec: Any) -> bool:
    """Whether a ``schema`` config value is a :class:`DatabaseSchema` (or its dict form)
    rather than a validation :class:`~dataknobs_data.validation.Schema` spec.

    The dict form of 0.11.0 has only ``fields`` and ``metadata`` and no field ``constraints``;
    a validation spec has a ``name`` or ``strict``, or constraints.
    """
    if isinstance(spec, DatabaseSchema):
        return True
    if not isinstance(spec, Mapping) or not set(spec) <= {"fields", "metadata"}:
        return False
    fields = spec.get("fields") or {}
    if not isinstance(fields, Mapping):
        return False
    return all(
        isinstance(f, str | FieldType) or (isinstance(f, Mapping) and "constraints" not in f)
        for f in fields.values()
    )
