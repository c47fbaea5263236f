"""Reading plain configuration (dicts from YAML, JSON, URLs or the environment).

Two rules every backend and spec loader follows, kept here so they are the same everywhere:

- A boolean setting may arrive as text from a file: ``"false"``, ``"0"``, ``"no"`` and
  ``"off"`` mean False (``"true"``, ``"1"``, ``"yes"``, ``"on"`` mean True, any case).
  ``bool("false")`` is True, so a backend must never read a flag with ``bool()``.
- A key that is not one of the accepted ones is an error naming it and the accepted keys,
  so a misspelt key never silently means "not set".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .exceptions import ConfigurationError

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "coerce_bool",
    "config_bool",
    "positive_int",
    "positive_seconds",
    "reject_unknown_keys",
]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def coerce_bool(key: str, value: Any) -> bool:
    """``value`` as a boolean setting named ``key``.

    Accepts a bool, the integers 0 and 1, and the words of :data:`TRUE_WORDS` /
    :data:`FALSE_WORDS` in any case and with surrounding blanks.

    Raises:
        ConfigurationError: (also a ValueError) for anything else, naming ``key``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConfigurationError(
        key, f"expected a boolean (true/false, yes/no, on/off, 1/0), got {value!r}"
    )


def config_bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    """The boolean setting ``key`` of ``config``, ``default`` when the key is absent.

    A key that is present must hold a boolean (see :func:`coerce_bool`): None is refused
    rather than guessed, since ``bool(None)`` and the default disagree.
    """
    if key not in config:
        return default
    return coerce_bool(key, config[key])


def positive_int(key: str, value: Any, default: int) -> int:
    """``value`` as a positive whole-number setting named ``key``; ``default`` when None.

    Text that reads as one (``"8"``, from a file or a URL) is taken; a bool is refused, as
    ``True`` is no count anyone meant.

    Raises:
        ConfigurationError: naming ``key`` for anything else, zero and negatives included.
    """
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1:
        raise ConfigurationError(key, f"expected a positive integer, got {value!r}")
    return number


def positive_seconds(key: str, value: Any, default: float) -> float:
    """``value`` as a positive duration in seconds named ``key``; ``default`` when None.

    Raises:
        ConfigurationError: naming ``key`` for a bool, zero, a negative, NaN or non-number.
    """
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not number > 0:
        raise ConfigurationError(key, f"expected a positive number of seconds, got {value!r}")
    return number


def reject_unknown_keys(spec: Mapping[str, Any], accepted: Iterable[str], where: str) -> None:
    """Raise for the first key of ``spec`` that is not in ``accepted``.

    ``where`` says what ``spec`` is (e.g. ``"schema field 'age'"``); the message names the
    unknown key, the closest accepted one when there is a likely match, and all of them.

    Raises:
        ConfigurationError: (also a ValueError) naming the key.
    """
    names = sorted(set(accepted))
    for key in spec:
        if key in names:
            continue
        text = str(key)
        close = difflib.get_close_matches(text, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigurationError(
            text, f"unknown key in {where}{hint}; valid keys: {', '.join(names)}"
        )
