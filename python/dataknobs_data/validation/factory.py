"""Factories that build schemas and coercers from plain configuration (e.g. YAML).

A schema spec::

    {"name": "users", "strict": True, "description": "...",
     "fields": [
        {"name": "username", "type": "string", "required": True,
         "constraints": [{"type": "length", "min": 3, "max": 20},
                         {"type": "pattern", "pattern": "^[a-z0-9_]+$"}]},
        {"name": "age", "type": "INTEGER", "constraints": {"range": {"min": 0, "max": 150}}},
        {"name": "role", "type": "string", "constraints": ["unique", {"enum": ["a", "b"]}]},
     ]}

``fields`` may also be a mapping of name → field spec. A constraint is a dict with ``"type"``
(what ``Constraint.to_dict`` writes; ``"any"``/``"or"`` mean AnyOf, ``"and"`` All), or a
shorthand: a bare type name (``"required"``, ``"unique"``), a one-key dict ``{type: params}``
where params is a dict of arguments (or, for enum, the list of values; for pattern, the regex),
or a mapping of such entries. A Constraint object is taken as it is. Unknown constraint types
raise ValueError; a key that is not a schema key (``SCHEMA_KEYS``) or a field key
(``FIELD_KEYS``) raises ConfigurationError naming it and the valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config_values import config_bool
from .coercer import Coercer
from .constraints import Constraint
from .schema import Schema, check_field_keys, check_schema_keys

__all__ = ["CoercerFactory", "SchemaFactory", "coercer_factory", "schema_factory"]

# For the one-key shorthand: the parameter a non-dict value stands for.
_POSITIONAL = {"enum": "values", "pattern": "pattern", "unique": "field_name"}


def build_constraint(spec: Any) -> Constraint:
    """One constraint from a dict, shorthand or Constraint (see the module docstring)."""
    if isinstance(spec, Constraint):
        return spec
    return Constraint.from_dict(_normalize(spec))


def build_constraints(specs: Any) -> list[Constraint]:
    """Constraints from a list of specs, a single spec, or a mapping of type → params."""
    if specs is None:
        return []
    if isinstance(specs, (str, Constraint)):
        return [build_constraint(specs)]
    if isinstance(specs, Mapping):
        if "type" in specs:
            return [build_constraint(specs)]
        return [build_constraint({k: v}) for k, v in specs.items()]
    return [build_constraint(s) for s in specs]


def _normalize(spec: Any) -> dict[str, Any]:
    """The ``to_dict`` form of a spec; members of composites are built already."""
    if isinstance(spec, str):
        return {"type": spec}
    if not isinstance(spec, Mapping) or not ("type" in spec or len(spec) == 1):
        raise ValueError(f"Cannot build a constraint from {spec!r}")
    if "type" in spec:
        data = dict(spec)
    else:
        ((kind, params),) = spec.items()
        data = _shorthand(str(kind).lower(), params)
    if "constraints" in data:
        data["constraints"] = build_constraints(data["constraints"])
    if "constraint" in data:
        data["constraint"] = build_constraint(data["constraint"])
    return data


def _shorthand(kind: str, params: Any) -> dict[str, Any]:
    if kind in ("all", "and", "any", "any_of", "anyof", "or"):
        return {"type": kind, "constraints": params}
    if kind == "not":
        return {"type": kind, "constraint": params}
    if isinstance(params, Mapping):
        return {"type": kind, **params}
    if params is None or params is True:
        return {"type": kind}
    key = _POSITIONAL.get(kind)
    if key is None:
        raise ValueError(f"Constraint {kind!r} needs a mapping of parameters, got {params!r}")
    return {"type": kind, key: params}


class SchemaFactory:
    """Builds a :class:`Schema` from a spec: ``SchemaFactory().create(**spec)``."""

    def create(self, **config: Any) -> Schema:
        """A schema from ``name``, ``strict``, ``description`` and ``fields`` (see module doc).

        Raises:
            ValueError: A field has no name, an unknown type or an unknown constraint;
                ConfigurationError (a ValueError) for a key that is not a schema or field key.
        """
        check_schema_keys(config)
        schema = Schema(
            str(config.get("name", "unnamed_schema")),
            config_bool(config, "strict", False),
            config.get("description"),
        )
        raw = config.get("fields") or []
        specs: list[Mapping[str, Any]]
        if isinstance(raw, Mapping):
            for name, spec in raw.items():
                check_field_keys(spec or {}, name)
            specs = [{"name": name, **(spec or {})} for name, spec in raw.items()]
        else:
            specs = list(raw)
            for spec in specs:
                check_field_keys(spec, spec.get("name") if isinstance(spec, Mapping) else "?")
        for spec in specs:
            name = spec.get("name")
            if not name:
                raise ValueError(f"schema field spec without a name: {spec!r}")
            schema.field(
                str(name),
                spec.get("type", "string"),
                required=config_bool(spec, "required", False),
                default=spec.get("default"),
                constraints=build_constraints(spec.get("constraints")),
                description=spec.get("description"),
            )
        return schema

    def build(self, spec: Schema | Mapping[str, Any]) -> Schema:
        """``spec`` itself when it is a Schema, else ``create(**spec)``."""
        if isinstance(spec, Schema):
            return spec
        return self.create(**dict(spec))


class CoercerFactory:
    """Builds :class:`Coercer` instances (they take no configuration)."""

    def create(self, **config: Any) -> Coercer:
        """A new Coercer; ``config`` is accepted for symmetry with other factories."""
        return Coercer()


schema_factory = SchemaFactory()
coercer_factory = CoercerFactory()
