"""Record validation: constraints, schemas, coercion (API.md §8).

>>> from dataknobs_data.validation import Schema, Range, Pattern
>>> schema = (Schema("users", strict=True)
...           .field("name", "string", required=True, constraints=[Pattern(r"^\\w+$")])
...           .field("age", "integer", constraints=[Range(min=0, max=150)]))
>>> bool(schema.validate({"name": "ada", "age": 36}))
True

A database validates every written record when built with the ``schema`` config key (a Schema
or a dict spec for :class:`SchemaFactory`) and coerces them first with ``schema_coerce=True``.

``FieldType`` is re-exported here for code that imports it from this package.
"""

from ..fields import FieldType
from .coercer import Coercer
from .constraints import (
    All,
    AnyOf,
    Constraint,
    Custom,
    Enum,
    Length,
    Not,
    Pattern,
    Range,
    Required,
    Unique,
    constraint_types,
)
from .factory import CoercerFactory, SchemaFactory, coercer_factory, schema_factory
from .result import ValidationContext, ValidationResult
from .schema import Field, FieldDefinition, Schema

__all__ = [
    "All",
    "AnyOf",
    "Coercer",
    "CoercerFactory",
    "Constraint",
    "Custom",
    "Enum",
    "Field",
    "FieldDefinition",
    "FieldType",
    "Length",
    "Not",
    "Pattern",
    "Range",
    "Required",
    "Schema",
    "SchemaFactory",
    "Unique",
    "ValidationContext",
    "ValidationResult",
    "coercer_factory",
    "constraint_types",
    "schema_factory",
]
