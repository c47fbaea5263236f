"""Type coercion: turn a value into a target type, or say why it cannot be done.

``Coercer().coerce(value, target)`` returns a :class:`ValidationResult` and never raises for a
bad value. ``target`` is a :class:`FieldType`, its value or name (``"integer"``,
``"INTEGER"``), or one of the Python types ``str``, ``int``, ``float``, ``bool``, ``datetime``,
``dict``, ``list``, ``bytes``. A value already of the target type is returned unchanged (a bool
is not an int here: ``True`` becomes ``1``).

Rules:

- to str (STRING, TEXT): bytes are decoded as UTF-8; datetimes give ``isoformat()``; dicts and
  lists give JSON text; bools give ``"true"``/``"false"``; anything else ``str(value)``.
- to int: bools give 1/0; floats and Decimals only when integral; strings are stripped, then
  read as decimal (``"1_000"``, ``"-7"``), prefixed (``"0x1f"``, ``"0o17"``, ``"0b101"``),
  integral decimal text (``"42.0"``, ``"1e3"``) or ``"true"``/``"false"``.
- to float: bools give 1.0/0.0; ints and Decimals convert (too large: error); strings are
  stripped and read as floats (``"1_000.5"``, ``"inf"``), prefixed ints or ``"true"``/``"false"``.
- to bool: strings ``true yes on 1 y t`` / ``false no off 0 n f`` (any case, stripped); the
  numbers 0 and 1; anything else is an error (``2`` is not a boolean).
- to datetime: dates become midnight; strings are ISO 8601 (``datetime.fromisoformat``, a
  trailing ``Z`` is UTC) or one of ``%Y/%m/%d`` (with ``%H:%M[:%S]``), ``%d/%m/%Y``,
  ``%m/%d/%Y``, ``%d-%m-%Y``, ``%m-%d-%Y``, ``%d.%m.%Y`` (each with optional ``%H:%M[:%S]``),
  tried in that order — an ambiguous ``01/02/2024`` is read day first (1 February), as the
  original package did; ints and floats are epoch seconds read as local time
  (``datetime.fromtimestamp``, naive, as in the original).
- to dict / list / JSON: strings are parsed as JSON and must give the right shape (JSON accepts
  a dict or a list); tuples and sets become lists, mappings dicts, lists of pairs dicts.
- to bytes (BINARY): strings are encoded as UTF-8; bytearray, memoryview and lists of ints
  convert.

Errors are worded as 0.11.0 words them: ``Cannot coerce {type} to {kind}: {reason}``, where
kind is the Python type converted to (``int``, ``str``, ``dict`` for JSON ...) and the reason is
Python's own message where 0.11.0's is (``invalid literal for int() with base 10: 'abc'``) or
one of its sentences (``String 'maybe' is not a valid boolean``, ``Could not parse datetime
from 'x'``, ``Float 3.7 cannot be losslessly converted to int``); None gives ``Cannot coerce
None to {TARGET}`` with the FieldType name (or the Python type name).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..fields import FieldType
from .result import ValidationResult

__all__ = ["Coercer", "CoercionTarget"]

CoercionTarget = FieldType | type | str

_TRUE = frozenset({"true", "yes", "on", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "off", "0", "n", "f"})

_DATE_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y %H:%M",
    "%m-%d-%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)


class _CoercionFailed(Exception):
    """Internal: the reason a conversion is impossible."""


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _CoercionFailed(f"not valid UTF-8 ({exc.reason})") from exc
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise _CoercionFailed(f"not JSON-serialisable ({exc})") from exc
    return str(value)


def _builtin_reason(convert: Callable[[Any], Any], value: Any, fallback: str) -> str:
    """The message Python's own ``int()``/``float()``/``dict()`` gives for ``value``: 0.11.0's
    errors carry those words."""
    try:
        convert(value)
    except (TypeError, ValueError, OverflowError) as exc:
        return str(exc)
    return fallback


def _integral(number: float | Decimal) -> int:
    if not (isinstance(number, float) and number.is_integer()) and not (
        isinstance(number, Decimal) and number.is_finite() and number == number.to_integral()
    ):
        if isinstance(number, float) and not math.isfinite(number):
            # Python's words: "cannot convert float NaN to integer".
            raise _CoercionFailed(_builtin_reason(int, number, f"{number} is not finite"))
        kind = "Float" if isinstance(number, float) else "Decimal"
        raise _CoercionFailed(f"{kind} {number} cannot be losslessly converted to int")
    return int(number)


def _has_radix_prefix(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body[:2].lower() in ("0x", "0o", "0b")


def _str_to_int(text: str) -> int:
    s = text.strip()
    lowered = s.lower()
    if lowered in ("true", "false"):
        return 1 if lowered == "true" else 0
    try:
        return int(s)
    except ValueError:
        pass
    reason = _builtin_reason(int, s, f"invalid integer literal {text!r}")
    if _has_radix_prefix(s):
        try:
            return int(s, 0)
        except ValueError:
            raise _CoercionFailed(reason) from None
    try:
        number = Decimal(s)
    except InvalidOperation:
        raise _CoercionFailed(reason) from None
    if not number.is_finite() or number != number.to_integral():
        raise _CoercionFailed(reason)
    return int(number)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (float, Decimal)):
        return _integral(value)
    if isinstance(value, str):
        return _str_to_int(value)
    raise _CoercionFailed(_builtin_reason(int, value, "unsupported type"))


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float, Decimal)):
        try:
            return float(value)
        except OverflowError as exc:
            raise _CoercionFailed(f"{value} is too large for a float") from exc
    if isinstance(value, str):
        s = value.strip()
        lowered = s.lower()
        if lowered in ("true", "false"):
            return 1.0 if lowered == "true" else 0.0
        try:
            return float(s)
        except ValueError:
            pass
        if _has_radix_prefix(s):
            try:
                return float(int(s, 0))
            except (ValueError, OverflowError):
                pass
        raise _CoercionFailed(_builtin_reason(float, s, f"invalid number {value!r}"))
    raise _CoercionFailed(_builtin_reason(float, value, "unsupported type"))


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        s = value.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise _CoercionFailed(f"String {value!r} is not a valid boolean")
    if isinstance(value, (int, float, Decimal)):
        if value == 1:
            return True
        if value == 0:
            return False
        raise _CoercionFailed(f"only 0 and 1 are booleans, got {value}")
    raise _CoercionFailed("unsupported type")


def _parse_datetime(text: str) -> datetime:
    s = text.strip()
    iso = s[:-1] + "+00:00" if s[-1:] in ("Z", "z") else s
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            continue
    raise _CoercionFailed(f"Could not parse datetime from {text!r}")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return _parse_datetime(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value))
        except (OverflowError, OSError, ValueError) as exc:
            raise _CoercionFailed(f"{value} is out of range for epoch seconds") from exc
    raise _CoercionFailed("unsupported type")


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _CoercionFailed(str(exc)) from exc


def _to_dict(value: Any) -> dict[Any, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        parsed = _parse_json(value)
        if isinstance(parsed, dict):
            return parsed
        raise _CoercionFailed(f"JSON text is a {type(parsed).__name__}, not an object")
    if isinstance(value, (list, tuple)) and all(
        isinstance(item, (list, tuple)) and len(item) == 2 for item in value
    ):
        return dict(value)
    raise _CoercionFailed(_builtin_reason(dict, value, "unsupported type"))


def _to_list(value: Any) -> list[Any]:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, str):
        parsed = _parse_json(value)
        if isinstance(parsed, list):
            return parsed
        raise _CoercionFailed(f"JSON text is a {type(parsed).__name__}, not an array")
    raise _CoercionFailed("unsupported type")


def _to_json(value: Any) -> Any:
    if isinstance(value, str):
        parsed = _parse_json(value)
        if isinstance(parsed, (dict, list)):
            return parsed
        raise _CoercionFailed(f"JSON text is a {type(parsed).__name__}, not an object or array")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise _CoercionFailed("unsupported type")


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        try:
            return bytes(value)
        except (TypeError, ValueError) as exc:
            raise _CoercionFailed(f"not a list of byte values ({exc})") from exc
    raise _CoercionFailed("unsupported type")


# kind -> (types taken as they are, converter for everything else)
_Converter = Callable[[Any], Any]
_KINDS: dict[str, tuple[tuple[type, ...], _Converter]] = {
    "str": ((str,), _to_str),
    "int": ((int,), _to_int),
    "float": ((float,), _to_float),
    "bool": ((bool,), _to_bool),
    "datetime": ((datetime,), _to_datetime),
    "dict": ((dict,), _to_dict),
    "list": ((list,), _to_list),
    "json": ((dict, list), _to_json),
    "bytes": ((bytes,), _to_bytes),
}

_FIELD_KINDS: dict[FieldType, str] = {
    FieldType.STRING: "str",
    FieldType.TEXT: "str",
    FieldType.INTEGER: "int",
    FieldType.FLOAT: "float",
    FieldType.BOOLEAN: "bool",
    FieldType.DATETIME: "datetime",
    FieldType.JSON: "json",
    FieldType.BINARY: "bytes",
}

_PY_KINDS: dict[type, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    datetime: "datetime",
    dict: "dict",
    list: "list",
    bytes: "bytes",
}


# How an error names the target: 0.11.0 names the Python type a FieldType converts to.
_KIND_NAMES = {"json": "dict"}


def resolve_target(target: CoercionTarget) -> tuple[str, str]:
    """(kind, display name) for a coercion target; ValueError when it is not supported."""
    if isinstance(target, FieldType):
        return _FIELD_KINDS[target], target.name
    if isinstance(target, type):
        kind = _PY_KINDS.get(target)
        if kind is None:
            raise ValueError(f"Unsupported coercion target type: {target.__name__}")
        return kind, target.__name__
    if isinstance(target, str):
        try:
            ft = FieldType(target.lower())
        except ValueError:
            raise ValueError(f"Unsupported coercion target: {target!r}") from None
        return _FIELD_KINDS[ft], ft.name
    raise ValueError(f"Unsupported coercion target: {target!r}")


class Coercer:
    """Converts values to a target type; every outcome is a :class:`ValidationResult`."""

    def coerce(self, value: Any, target_type: CoercionTarget) -> ValidationResult:
        """Coerce ``value`` to ``target_type`` (see the module docstring for the rules).

        Raises:
            ValueError: ``target_type`` itself is not a supported target (a programming error,
                unlike a value that cannot be converted, which is a failed result).
        """
        kind, name = resolve_target(target_type)
        return coerce_kind(value, kind, name)

    def coerce_many(
        self, values: Mapping[str, Any], types: Mapping[str, CoercionTarget]
    ) -> dict[str, ValidationResult]:
        """Coerce each value whose name has a target in ``types``; others pass unchanged."""
        results: dict[str, ValidationResult] = {}
        for name, value in values.items():
            target = types.get(name)
            if target is None:
                results[name] = ValidationResult(True, value)
            else:
                results[name] = self.coerce(value, target)
        return results


def coerce_kind(value: Any, kind: str, name: str) -> ValidationResult:
    """Coerce ``value`` to a resolved kind (the schema's path, resolved once per field)."""
    if value is None:
        return ValidationResult(False, None, [f"Cannot coerce None to {name}"])
    accepted, convert = _KINDS[kind]
    if isinstance(value, accepted) and not (kind == "int" and isinstance(value, bool)):
        return ValidationResult(True, value)
    try:
        converted = convert(value)
    except _CoercionFailed as exc:
        reason = str(exc)
        if reason == "unsupported type":
            reason = f"no conversion from {type(value).__name__}"
        # A failed conversion names the Python type (0.11.0's wording); only the None message
        # keeps the FieldType's name.
        shown = _KIND_NAMES.get(kind, kind)
        return ValidationResult(
            False, value, [f"Cannot coerce {type(value).__name__} to {shown}: {reason}"]
        )
    return ValidationResult(True, converted)
