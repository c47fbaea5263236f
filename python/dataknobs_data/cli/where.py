"""The ``--where`` / ``--sort`` / ``--fields`` language: command-line pieces to a Query."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from dataknobs_data.query import Operator, Query


_WORD_OPS: dict[str, str] = {
    "exists": "exists",
    "not_exists": "not_exists",
    "not exists": "not_exists",
    "in": "in",
    "not_in": "not_in",
    "not in": "not_in",
    "between": "between",
    "not_between": "not_between",
    "not between": "not_between",
    "like": "like",
    "not_like": "not_like",
    "not like": "not_like",
    "regex": "regex",
    "starts_with": "starts_with",
    "startswith": "starts_with",
}
_SYMBOL_OPS: dict[str, str] = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
    "~": "like",
    "!~": "not_like",
}
_NO_VALUE_OPS = frozenset({"exists", "not_exists"})
_STRING_OPS = frozenset({"like", "not_like", "regex", "starts_with"})
_LIST_OPS = frozenset({"in", "not_in"})
_RANGE_OPS = frozenset({"between", "not_between"})

# A field name in the word form cannot hold an operator character, so "a=b in c" reads as
# a = "b in c" rather than a field called "a=b".
_WORD_RE = re.compile(
    r"^\s*(?P<field>[^\s=<>!~]+)\s+"
    r"(?P<op>not[ _]exists|exists|not[ _]in|in|not[ _]between|between|not[ _]like|like"
    r"|regex|starts_?with)"
    r"(?:\s+(?P<value>.*?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SYMBOL_RE = re.compile(
    r"^\s*(?P<field>[^=<>!~]*?)\s*(?P<op>>=|<=|!=|==|!~|=|>|<|~)\s*(?P<value>.*?)\s*$",
    re.DOTALL,
)


def _reject_constant(name: str) -> NoReturn:
    # NaN/Infinity are not JSON; "x=NaN" should compare with the string.
    raise ValueError(name)


def _parse_value(text: str) -> Any:
    """JSON when it parses (30 -> int, true -> bool, "x" -> str), else the raw string."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def _parse_string(text: str) -> str:
    """Like _parse_value, but only a quoted JSON string is unquoted: patterns stay text."""
    value = _parse_value(text)
    return value if isinstance(value, str) else text


def _split_list(text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        value = _parse_value(stripped)
        if isinstance(value, list):
            return value
    return [_parse_value(part.strip()) for part in text.split(",")]


def parse_where(expr: str) -> tuple[str, Operator, Any]:
    """Parse one ``--where`` expression into ``(field, Operator, value)``.

    Forms (several ``--where`` are ANDed)::

        age>=30   age>30   age<=30   age<30   name=alice   name==alice   city!=Paris
        name~a%            (LIKE: % any run, _ one char, case-insensitive)   name!~a%
        tags in a,b        tags not_in a,b     (or a JSON list: tags in ["a,b", "c"])
        age between 20,30  age not_between 20,30
        field exists       field not_exists
        name starts_with al                    name regex ^a
        name like a%       name not_like a%

    Values are JSON when they parse (``30`` is an int, ``true`` a bool, ``"30"`` a str),
    else the raw text; patterns (like, regex, starts_with) are always text.

    Raises:
        ValueError: one-line message naming the problem.
    """
    from dataknobs_data.query import Operator

    if not expr or not expr.strip():
        raise ValueError("empty --where expression")
    match = _WORD_RE.match(expr)
    if match:
        op = _WORD_OPS[" ".join(match["op"].lower().replace("_", " ").split()).replace(" ", "_")]
        raw = match["value"]
    else:
        match = _SYMBOL_RE.match(expr)
        if not match:
            raise ValueError(
                f"cannot parse --where {expr!r}: expected FIELD OP VALUE "
                "(e.g. 'age>=30', 'name=alice', 'tags in a,b', 'email exists')"
            )
        op = _SYMBOL_OPS[match["op"]]
        raw = match["value"]
    field = match["field"].strip()
    if not field:
        raise ValueError(f"missing field name in --where {expr!r}")

    value: Any
    if op in _NO_VALUE_OPS:
        if raw:
            raise ValueError(f"'{op}' takes no value in --where {expr!r}")
        value = None
    elif raw is None or raw == "":
        raise ValueError(f'missing value in --where {expr!r} (use "" for an empty string)')
    elif op in _STRING_OPS:
        value = _parse_string(raw)
        if op == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r} in --where {expr!r}: {exc}") from None
    elif op in _LIST_OPS:
        value = _split_list(raw)
    elif op in _RANGE_OPS:
        value = _split_list(raw)
        if len(value) != 2:
            raise ValueError(f"'{op}' needs two values LO,HI in --where {expr!r}")
    else:
        value = _parse_value(raw)
        if value is None:
            # Every operator but exists/not_exists is False on None, so this matches nothing.
            hint = "exists" if op == "!=" else "not_exists"
            raise ValueError(f"null never compares in --where {expr!r}: use '{field} {hint}'")
    return field, Operator(op), value


def parse_sort(spec: str) -> tuple[str, str]:
    """Parse a ``--sort`` value: ``FIELD`` or ``+FIELD`` (ascending), ``-FIELD`` or
    ``FIELD:desc`` (descending). Returns ``(field, "asc" | "desc")``."""
    text = spec.strip()
    order = "asc"
    if ":" in text:
        head, _, tail = text.rpartition(":")
        if tail.lower() in ("asc", "desc"):
            text, order = head.strip(), tail.lower()
    if text.startswith("-"):
        text, order = text[1:].strip(), "desc"
    elif text.startswith("+"):
        text = text[1:].strip()
    if not text:
        raise ValueError(f"missing field name in --sort {spec!r}")
    return text, order


def _parse_fields(spec: str) -> list[str]:
    fields = [f.strip() for f in spec.split(",")]
    if not all(fields):
        raise ValueError(f"empty field name in --fields {spec!r}")
    return fields


def build_query(
    where: Sequence[str] = (),
    sort: Sequence[str] = (),
    limit: int | None = None,
    offset: int | None = None,
    fields: Sequence[str] | None = None,
) -> Query:
    """Build a :class:`~dataknobs_data.query.Query` from command-line pieces."""
    from dataknobs_data.query import Query

    query = Query()
    for expr in where:
        field, op, value = parse_where(expr)
        query.filter(field, op, value)
    for spec in sort:
        field, order = parse_sort(spec)
        query.sort_by(field, order)
    if offset is not None:
        query.offset(offset)
    if limit is not None:
        query.limit(limit)
    if fields:
        query.select(*fields)
    return query
