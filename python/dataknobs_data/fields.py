"""Typed fields: the named values a :class:`~dataknobs_data.records.Record` is made of."""

from __future__ import annotations

import copy as _copy
from datetime import datetime
from enum import Enum
from typing import Any

__all__ = ["Field", "FieldType", "detect_type"]

# Strings longer than this are detected as TEXT rather than STRING.
TEXT_THRESHOLD = 1000


class FieldType(Enum):
    """The storage type of a field value."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    JSON = "json"
    BINARY = "binary"
    TEXT = "text"


# Exact-type lookup first: it is the hot path when records are built from storage rows.
_EXACT_TYPES: dict[type, FieldType] = {
    type(None): FieldType.STRING,
    bool: FieldType.BOOLEAN,
    int: FieldType.INTEGER,
    float: FieldType.FLOAT,
    datetime: FieldType.DATETIME,
    dict: FieldType.JSON,
    list: FieldType.JSON,
    bytes: FieldType.BINARY,
}


def detect_type(value: Any) -> FieldType:
    """Return the :class:`FieldType` detected for ``value``.

    First match wins: None→STRING, bool→BOOLEAN, int→INTEGER, float→FLOAT, datetime→DATETIME,
    dict/list→JSON, bytes→BINARY, str longer than 1000 characters→TEXT, other str→STRING,
    anything else→JSON.
    """
    cls = value.__class__
    if cls is str:
        return FieldType.TEXT if len(value) > TEXT_THRESHOLD else FieldType.STRING
    found = _EXACT_TYPES.get(cls)
    if found is not None:
        return found
    # Subclasses (IntEnum, OrderedDict, ...) take the slow path, in the documented order.
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.INTEGER
    if isinstance(value, float):
        return FieldType.FLOAT
    if isinstance(value, datetime):
        return FieldType.DATETIME
    if isinstance(value, (dict, list)):
        return FieldType.JSON
    if isinstance(value, bytes):
        return FieldType.BINARY
    if isinstance(value, str):
        return FieldType.TEXT if len(value) > TEXT_THRESHOLD else FieldType.STRING
    return FieldType.JSON


_TRUE_STRINGS = frozenset({"true", "1", "yes"})


class Field:
    """A named, typed value with optional metadata.

    Behaves like a dataclass with the attributes ``name``, ``value``, ``type`` and
    ``metadata``: equality compares all four. When ``type`` is None it is detected from the
    value (see :func:`detect_type`).

    Args:
        name: Field name.
        value: Field value.
        type: Field type; detected from ``value`` when None. A type's string value
            (e.g. ``"integer"``) is accepted too.
        metadata: Free-form metadata about the field.
    """

    __slots__ = ("metadata", "name", "type", "value")

    name: str
    value: Any
    type: FieldType
    metadata: dict[str, Any]

    def __init__(
        self,
        name: str,
        value: Any = None,
        type: FieldType | str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.value = value
        if type is None:
            self.type = detect_type(value)
        elif isinstance(type, FieldType):
            self.type = type
        else:
            self.type = FieldType(type)
        self.metadata = {} if metadata is None else metadata

    @classmethod
    def _make(cls, name: str, value: Any) -> Field:
        """Build a field without argument handling (the database layer's fast path)."""
        f = object.__new__(cls)
        f.name = name
        f.value = value
        f.type = detect_type(value)
        f.metadata = {}
        return f

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Field)
        return (
            self.name == other.name
            and self.value == other.value
            and self.type is other.type
            and self.metadata == other.metadata
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like a non-frozen dataclass

    def __repr__(self) -> str:
        return (
            f"Field(name={self.name!r}, value={self.value!r}, type={self.type!r}, "
            f"metadata={self.metadata!r})"
        )

    def __getstate__(self) -> tuple[str, Any, FieldType, dict[str, Any]]:
        return (self.name, self.value, self.type, self.metadata)

    def __setstate__(self, state: tuple[str, Any, FieldType, dict[str, Any]]) -> None:
        self.name, self.value, self.type, self.metadata = state

    def validate(self) -> bool:
        """Return True when the value fits the field type (None always fits)."""
        v = self.value
        if v is None:
            return True
        t = self.type
        if t is FieldType.STRING or t is FieldType.TEXT:
            return isinstance(v, str)
        if t is FieldType.INTEGER:
            return isinstance(v, int) and not isinstance(v, bool)
        if t is FieldType.FLOAT:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if t is FieldType.BOOLEAN:
            return isinstance(v, bool)
        if t is FieldType.DATETIME:
            return isinstance(v, datetime)
        if t is FieldType.BINARY:
            return isinstance(v, (bytes, bytearray))
        # JSON holds anything that is not one of the scalar types above (detection sends
        # "anything else" there), so an auto-detected field always validates.
        return True

    def convert_to(self, target_type: FieldType | str) -> Field:
        """Return this field converted to ``target_type``.

        Returns ``self`` when the type already matches. Supported conversions:
        INTEGER↔STRING/FLOAT, FLOAT→STRING/INTEGER, BOOLEAN→STRING ("true"/"false")/INTEGER,
        STRING→INTEGER/FLOAT/BOOLEAN (true for "true", "1", "yes"), STRING↔TEXT.

        Raises:
            ValueError: The conversion is not supported or the value cannot be converted;
                the message names the field and both types.
        """
        target = target_type if isinstance(target_type, FieldType) else FieldType(target_type)
        if target is self.type:
            return self
        src = self.type
        v = self.value
        prefix = f"Cannot convert field '{self.name}' from {src.value} to {target.value}"
        converter = _CONVERTERS.get((src, target))
        if converter is None:
            raise ValueError(f"{prefix}: unsupported conversion")
        if v is None:
            new_value: Any = None
        else:
            try:
                new_value = converter(v)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"{prefix}: {exc}") from exc
        return Field(self.name, new_value, target, dict(self.metadata))

    def copy(self) -> Field:
        """Return a deep copy (value and metadata are copied too)."""
        return Field(
            self.name, _copy.deepcopy(self.value), self.type, _copy.deepcopy(self.metadata)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name", "value", "type", "metadata"}`` with the type as its string value."""
        return {
            "name": self.name,
            "value": self.value,
            "type": self.type.value,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Field:
        """Build a field from :meth:`to_dict` output (``type`` and ``metadata`` optional)."""
        type_value = data.get("type")
        return cls(
            name=data["name"],
            value=data.get("value"),
            type=FieldType(type_value) if type_value is not None else None,
            metadata=dict(data.get("metadata") or {}),
        )


def _str_to_bool(v: Any) -> bool:
    return str(v).strip().lower() in _TRUE_STRINGS


def _to_int(v: Any) -> int:
    if isinstance(v, str):
        return int(v.strip())
    return int(v)


def _bool_to_str(v: Any) -> str:
    return "true" if v else "false"


def _identity_str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected str, got {type(v).__name__}")
    return v


_CONVERTERS: dict[tuple[FieldType, FieldType], Any] = {
    (FieldType.INTEGER, FieldType.STRING): str,
    (FieldType.INTEGER, FieldType.FLOAT): float,
    (FieldType.FLOAT, FieldType.STRING): str,
    (FieldType.FLOAT, FieldType.INTEGER): int,
    (FieldType.BOOLEAN, FieldType.STRING): _bool_to_str,
    (FieldType.BOOLEAN, FieldType.INTEGER): int,
    (FieldType.STRING, FieldType.INTEGER): _to_int,
    (FieldType.STRING, FieldType.FLOAT): float,
    (FieldType.STRING, FieldType.BOOLEAN): _str_to_bool,
    (FieldType.STRING, FieldType.TEXT): _identity_str,
    (FieldType.TEXT, FieldType.STRING): _identity_str,
}
