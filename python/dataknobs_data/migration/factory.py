"""Building migrations, transformers and migrators from plain configuration.

A spec is a dict (or a YAML/JSON file holding one)::

    # a Migration
    from_version: "1"
    to_version: "2"
    description: tidy names
    operations:
      - {type: rename_field, old_name: name, new_name: full_name}
      - {type: transform_field, field_name: full_name, transform: trim}
      - {type: add_field, field_name: active, default_value: true, field_type: boolean}
      - {type: remove_field, field_name: tmp, store_removed: true}
      - {type: transform_field, field_name: price, transform: {multiply: 100}}

    # a Transformer
    rules:
      - {type: map, source: email, transform: lowercase}
      - {type: rename, old_name: name, new_name: full_name}
      - {type: exclude, fields: [tmp, debug]}
      - {type: add, field_name: source, value: import}

Transforms are named, never evaluated code: ``"uppercase"``, ``"lowercase"``, ``"trim"``,
``{"multiply": k}``, ``{"divide": k}`` (in Python specs a callable works too). Values the
transform does not apply to (a number for "trim", a str for "multiply") pass unchanged.
An unknown operation, rule or transform raises ValueError naming the known ones, and a key
a spec, operation or rule does not take raises ConfigurationError (a ValueError) naming the
valid keys, so a typo in a spec never silently does nothing.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dataknobs_data.config_values import config_bool, reject_unknown_keys
from dataknobs_data.fields import FieldType

from .migration import Migration
from .migrator import Migrator
from .operations import (
    AddField,
    CompositeOperation,
    Operation,
    RemoveField,
    RenameField,
    TransformField,
)
from .transformer import Transformer

__all__ = [
    "MigrationFactory",
    "MigratorFactory",
    "TransformerFactory",
    "build_transform",
    "load_spec",
    "load_transform",
    "migration_factory",
    "migrator_factory",
    "transform_function",
    "transformer_factory",
]

ValueFn = Callable[[Any], Any]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _trim(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scale(factor: Any, divide: bool) -> ValueFn:
    if not _is_number(factor) or (divide and factor == 0):
        raise ValueError(f"transform factor must be a non-zero number, got {factor!r}")

    def scale(value: Any) -> Any:
        if not _is_number(value):
            return value
        return value / factor if divide else value * factor

    return scale


_NAMED: dict[str, ValueFn] = {"uppercase": _upper, "lowercase": _lower, "trim": _trim}
_SCALES = ("multiply", "divide")


def transform_function(spec: Any) -> ValueFn:
    """The value function a transform spec names.

    Raises:
        ValueError: an unknown or malformed spec.
    """
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    if isinstance(spec, str) and spec.lower() in _NAMED:
        return _NAMED[spec.lower()]
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((key, factor),) = spec.items()
        if key in _SCALES:
            return _scale(factor, key == "divide")
    raise ValueError(
        f"unknown transform {spec!r}; expected one of uppercase, lowercase, trim, "
        "{multiply: k}, {divide: k}"
    )


def _inverse(spec: Any) -> ValueFn | None:
    """The inverse of a scaling spec (the named string transforms lose information)."""
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((key, factor),) = spec.items()
        if key in _SCALES:
            return _scale(factor, key == "multiply")
    return None


def _field_type(value: Any) -> FieldType | None:
    if value is None or isinstance(value, FieldType):
        return value
    text = str(value)
    try:
        return FieldType(text.lower())
    except ValueError:
        names = ", ".join(t.value for t in FieldType)
        raise ValueError(f"unknown field_type {value!r}; expected one of {names}") from None


#: The keys of a Migration spec, a Transformer spec, and each operation and rule type.
MIGRATION_KEYS = ("type", "from_version", "to_version", "description", "operations")
TRANSFORMER_KEYS = ("type", "description", "rules")
OPERATION_KEYS: dict[str, tuple[str, ...]] = {
    "add_field": ("type", "field_name", "default_value", "field_type"),
    "remove_field": ("type", "field_name", "store_removed"),
    "rename_field": ("type", "old_name", "new_name"),
    "transform_field": ("type", "field_name", "transform", "reverse"),
    "composite": ("type", "operations"),
}
RULE_KEYS: dict[str, tuple[str, ...]] = {
    "map": ("type", "source", "target", "transform"),
    "rename": ("type", "old_name", "new_name"),
    "exclude": ("type", "fields"),
    "add": ("type", "field_name", "value", "field_type"),
}


def _need(config: Mapping[str, Any], kind: str, *keys: str) -> list[Any]:
    missing = [k for k in keys if not config.get(k)]
    if missing:
        raise ValueError(f"{kind} needs {', '.join(missing)}")
    return [config[k] for k in keys]


class MigrationFactory:
    """Builds a :class:`Migration` from ``from_version``, ``to_version``, ``description``
    and ``operations`` (see the module docstring for the operation specs)."""

    OPERATION_TYPES = ("add_field", "remove_field", "rename_field", "transform_field", "composite")

    def create(self, **config: Any) -> Migration:
        """A new Migration (versions default to "0.0" -> "1.0").

        Raises:
            ConfigurationError: (a ValueError) for a key not in :data:`MIGRATION_KEYS`.
        """
        reject_unknown_keys(config, MIGRATION_KEYS, "migration spec")
        migration = Migration(
            str(config.get("from_version", "0.0")),
            str(config.get("to_version", "1.0")),
            config.get("description"),
        )
        for spec in config.get("operations") or ():
            migration.add(self.create_operation(spec))
        return migration

    def create_operation(self, spec: Mapping[str, Any] | Operation) -> Operation:
        """One operation from its spec (an Operation passes through)."""
        if isinstance(spec, Operation):
            return spec
        if not isinstance(spec, Mapping):
            raise ValueError(f"an operation spec must be a mapping, got {spec!r}")
        kind = str(spec.get("type", "")).lower()
        if kind in OPERATION_KEYS:
            reject_unknown_keys(spec, OPERATION_KEYS[kind], f"{kind} operation")
        if kind == "add_field":
            (name,) = _need(spec, kind, "field_name")
            return AddField(name, spec.get("default_value"), _field_type(spec.get("field_type")))
        if kind == "remove_field":
            (name,) = _need(spec, kind, "field_name")
            return RemoveField(name, config_bool(spec, "store_removed", False))
        if kind == "rename_field":
            old, new = _need(spec, kind, "old_name", "new_name")
            return RenameField(old, new)
        if kind == "transform_field":
            name, fn_spec = _need(spec, kind, "field_name", "transform")
            reverse_spec = spec.get("reverse")
            reverse = transform_function(reverse_spec) if reverse_spec else _inverse(fn_spec)
            return TransformField(name, transform_function(fn_spec), reverse)
        if kind == "composite":
            return CompositeOperation(
                [self.create_operation(s) for s in spec.get("operations") or ()]
            )
        raise ValueError(
            f"unknown operation type {spec.get('type')!r}; expected one of "
            + ", ".join(self.OPERATION_TYPES)
        )


class TransformerFactory:
    """Builds a :class:`Transformer` from ``rules`` (map, rename, exclude, add)."""

    RULE_TYPES = ("map", "rename", "exclude", "add")

    def create(self, **config: Any) -> Transformer:
        """A new Transformer.

        Raises:
            ConfigurationError: (a ValueError) for a key not in :data:`TRANSFORMER_KEYS`.
        """
        reject_unknown_keys(config, TRANSFORMER_KEYS, "transformer spec")
        transformer = Transformer()
        for spec in config.get("rules") or ():
            self.add_rule(transformer, spec)
        return transformer

    def add_rule(self, transformer: Transformer, spec: Mapping[str, Any]) -> Transformer:
        """Add the rule ``spec`` describes to ``transformer``."""
        if not isinstance(spec, Mapping):
            raise ValueError(f"a rule spec must be a mapping, got {spec!r}")
        kind = str(spec.get("type", "")).lower()
        if kind in RULE_KEYS:
            reject_unknown_keys(spec, RULE_KEYS[kind], f"{kind} rule")
        if kind == "map":
            (source,) = _need(spec, kind, "source")
            fn = spec.get("transform")
            return transformer.map(
                source, spec.get("target"), transform_function(fn) if fn else None
            )
        if kind == "rename":
            old, new = _need(spec, kind, "old_name", "new_name")
            return transformer.rename(old, new)
        if kind == "exclude":
            fields = spec.get("fields") or []
            if isinstance(fields, str):
                fields = [fields]
            return transformer.exclude(*fields)
        if kind == "add":
            (name,) = _need(spec, kind, "field_name")
            return transformer.add(name, spec.get("value"), _field_type(spec.get("field_type")))
        raise ValueError(
            f"unknown rule type {spec.get('type')!r}; expected one of " + ", ".join(self.RULE_TYPES)
        )


class MigratorFactory:
    """Builds a :class:`Migrator` (it takes no configuration)."""

    def create(self, **config: Any) -> Migrator:
        """A new Migrator."""
        return Migrator()


migration_factory = MigrationFactory()
transformer_factory = TransformerFactory()
migrator_factory = MigratorFactory()


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a spec from a YAML or JSON file (``.json`` is parsed as JSON, anything else
    as YAML, which needs PyYAML).

    Raises:
        ValueError: the file does not hold a mapping, or does not parse.
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            try:
                # Looked up dynamically: PyYAML is optional and ships without type stubs.
                yaml = importlib.import_module("yaml")
            except ImportError as exc:
                raise ValueError(
                    f"reading {p} needs PyYAML (pip install pyyaml), or use a .json spec"
                ) from exc
            data = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"cannot parse {p}: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError and friends
        raise ValueError(f"cannot parse {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{p} must hold a mapping, got {type(data).__name__}")
    return data


def build_transform(spec: Mapping[str, Any]) -> Transformer | Migration:
    """A Transformer (spec with ``rules``) or a Migration (``operations`` or versions).

    ``type: transformer`` / ``type: migration`` may say it explicitly.
    """
    kind = str(spec.get("type", "")).lower()
    if kind == "transformer" or (not kind and "rules" in spec):
        return transformer_factory.create(**spec)
    if kind == "migration" or (
        not kind and ({"operations", "from_version", "to_version"} & spec.keys())
    ):
        return migration_factory.create(**spec)
    raise ValueError("a transform spec needs 'rules' (a Transformer) or 'operations' (a Migration)")


def load_transform(path: str | os.PathLike[str]) -> Transformer | Migration:
    """:func:`build_transform` of the spec in a YAML/JSON file."""
    return build_transform(load_spec(path))
