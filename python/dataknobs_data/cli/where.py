"""The ``--where`` / ``--sort`` / ``--fields`` language: command-line pieces to a Query."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from dataknobs_data.exceptions import QueryError
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
    "<>": "!=",
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
_ORDER_OPS = frozenset({">", ">=", "<", "<="})
_OP_CHARS = "=<>!~"

# A field name in the word form cannot hold an operator character, so "a=b in c" reads as
# a = "b in c" rather than a field called "a=b".
_WORD_RE = re.compile(
    r"^\s*(?P<field>[^\s=<>!~]+)\s+"
    r"(?P<op>not[ _]exists|exists|not[ _]in|in|not[ _]between|between|not[ _]like|like"
    r"|regex|starts_?with)"
    r"(?:\s+(?P<value>.*?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
# The operator is the whole run of operator characters, so "age>>30" and "age => 30" are
# read as the operators ">>" and "=>" (and refused) instead of ">" with the value ">30".
_SYMBOL_RE = re.compile(
    r"^\s*(?P<field>[^=<>!~]*?)\s*(?P<op>[=<>!~]+)\s*(?P<value>.*?)\s*$",
    re.DOTALL,
)

WHERE_RULES = """\
Values are JSON when they parse (30 is a number, true a boolean, "30" a string), else the
raw text. The ordering operators (>, >=, <, <=, between) need a number or an ISO-8601
date/time on the right (age>=30, joined<2024-06-01T00:00Z); to compare text, quote it
(name>="m"): an unquoted word there is refused, since age>=abc would silently compare
text. A date/time compares with stored ones only when both carry a UTC offset or neither
does (the demo's are UTC: joined<2024-06-01 matches none of them). A value that starts
with one of = < > ! ~ must be quoted too (name="=x").
'in' tests whether the field's value is one of the listed values (city in Paris,Rome);
a list-valued field matches only a listed value equal to the whole list.
Patterns (like, ~, regex, starts_with) are always text."""


def _error(message: str, expr: str) -> QueryError:
    from dataknobs_data.exceptions import QueryError

    return QueryError(f"--where {expr!r}: {message}")


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


def _split_list(text: str) -> list[tuple[str, Any]]:
    """(raw text, value) of each item of ``a,b,c`` or of a JSON list."""
    stripped = text.strip()
    if stripped.startswith("["):
        value = _parse_value(stripped)
        if isinstance(value, list):
            return [(json.dumps(v), v) for v in value]
    return [(part.strip(), _parse_value(part.strip())) for part in text.split(",")]


def _is_iso_moment(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return False
    return True


def _orderable(raw: str, value: Any, op: str, expr: str) -> Any:
    """``value`` when an ordering operator may compare with it, else a QueryError.

    A number, an ISO date/time, or text the user quoted; anything else is almost always a
    typo whose string comparison would match nonsense.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if raw.strip().startswith('"') or _is_iso_moment(value):
            return value
        raise _error(
            f"'{op}' needs a number or an ISO date, got the word {value!r} "
            f'(to compare text, quote it: "{value}")',
            expr,
        )
    raise _error(f"'{op}' cannot compare with {json.dumps(value)}", expr)


def parse_where(expr: str) -> tuple[str, Operator, Any]:
    """Parse one ``--where`` expression into ``(field, Operator, value)``.

    Forms (several ``--where`` are ANDed)::

        age>=30   age>30   age<=30   age<30   name=alice   name==alice   city!=Paris
        name~a%            (LIKE: % any run, _ one char, case-insensitive)   name!~a%
        city in Paris,Rome   city not_in Paris   (or a JSON list: city in ["a,b", "c"])
        age between 20,30  age not_between 20,30   joined>=2024-01-01T00:00Z
        field exists       field not_exists
        name starts_with al                    name regex ^a
        name like a%       name not_like a%

    The rules for values are :data:`WHERE_RULES`.

    Raises:
        QueryError: (also a ValueError) with a one-line message naming the problem.
    """
    from dataknobs_data.query import Operator

    if not expr or not expr.strip():
        raise _error("empty expression", expr)
    match = _WORD_RE.match(expr)
    if match:
        op = _WORD_OPS[" ".join(match["op"].lower().replace("_", " ").split()).replace(" ", "_")]
        raw = match["value"]
    else:
        match = _SYMBOL_RE.match(expr)
        if not match:
            raise _error(
                "cannot parse: expected FIELD OP VALUE "
                "(e.g. 'age>=30', 'name=alice', 'city in Paris,Rome', 'email exists')",
                expr,
            )
        symbol = match["op"]
        if symbol not in _SYMBOL_OPS:
            known = ", ".join(_SYMBOL_OPS)
            raise _error(
                f"unknown operator {symbol!r} (operators: {known}; quote a value that "
                f"starts with one of {_OP_CHARS})",
                expr,
            )
        op = _SYMBOL_OPS[symbol]
        raw = match["value"]
    field = match["field"].strip()
    if not field:
        raise _error("missing field name", expr)

    value: Any
    if op in _NO_VALUE_OPS:
        if raw:
            raise _error(f"'{op}' takes no value", expr)
        value = None
    elif raw is None or raw == "":
        raise _error('missing value (use "" for an empty string)', expr)
    elif op in _STRING_OPS:
        value = _parse_string(raw)
        if op == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise _error(f"invalid regex {value!r}: {exc}", expr) from None
    elif op in _LIST_OPS:
        value = [v for _, v in _split_list(raw)]
    elif op in _RANGE_OPS:
        items = _split_list(raw)
        if len(items) != 2:
            raise _error(f"'{op}' needs two values LO,HI", expr)
        value = [_orderable(text, v, op, expr) for text, v in items]
    else:
        value = _parse_value(raw)
        if value is None:
            # Every operator but exists/not_exists is False on None, so this matches nothing.
            hint = "exists" if op == "!=" else "not_exists"
            raise _error(f"null never compares: use '{field} {hint}'", expr)
        if op in _ORDER_OPS:
            value = _orderable(raw, value, op, expr)
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
