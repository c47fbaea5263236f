"""Queries: filters, sorting, paging and projection.

:meth:`Filter.matches` is THE reference semantics of every backend (docs/internals.md §1); the
Rust evaluator mirrors it and a differential test compares the two. :func:`apply_query` is the
pure-Python reference for result shaping.
"""

from __future__ import annotations

import copy as _copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self

from dataknobs_data.exceptions import QueryError
from dataknobs_data.records import MISSING, Record, walk_path

if TYPE_CHECKING:
    from dataknobs_data.query_logic import ComplexQuery, Condition

__all__ = [
    "RESERVED_KEY_FIELD",
    "Filter",
    "Operator",
    "Query",
    "SortOrder",
    "SortSpec",
    "apply_query",
    "coerce_operator",
    "coerce_sort_order",
    "compare",
    "is_storage_key_field",
    "parse_operator",
    "parse_sort_order",
    "py_eq",
    "resolve_path",
    "sort_key",
    "sort_records",
]


class Operator(Enum):
    """Filter operators; the values are the operator strings of the query spec."""

    EQ = "="
    NEQ = "!="
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="
    IN = "in"
    NOT_IN = "not_in"
    LIKE = "like"
    NOT_LIKE = "not_like"
    REGEX = "regex"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    BETWEEN = "between"
    NOT_BETWEEN = "not_between"
    STARTS_WITH = "starts_with"


_OPERATOR_ALIASES: dict[str, Operator] = {
    **{op.value: op for op in Operator},
    **{op.name.lower(): op for op in Operator},
    "==": Operator.EQ,
    "<>": Operator.NEQ,
    "ne": Operator.NEQ,
    "not in": Operator.NOT_IN,
    "not like": Operator.NOT_LIKE,
    "not exists": Operator.NOT_EXISTS,
    "not between": Operator.NOT_BETWEEN,
    "starts with": Operator.STARTS_WITH,
    "startswith": Operator.STARTS_WITH,
}


def coerce_operator(operator: Operator | str) -> Operator:
    """Return the :class:`Operator` for an Operator or an operator string.

    Strings are case-insensitive: the operator values ("=", "not_in", ...), their names
    ("eq", "gte", ...), and the aliases "==", "<>", "ne", "not in", "not like",
    "not exists", "not between", "starts with", "startswith".

    Raises:
        QueryError: (also a ValueError) for an unknown operator.
    """
    if isinstance(operator, Operator):
        return operator
    if isinstance(operator, str):
        found = _OPERATOR_ALIASES.get(" ".join(operator.lower().split()))
        if found is not None:
            return found
    raise QueryError(f"Unknown operator: {operator!r}")


parse_operator = coerce_operator


# ---------------------------------------------------------------------------- value model

_NONE, _NUM, _STR, _BYTES, _DT, _DATE, _LIST, _DICT, _OTHER = range(9)

_KINDS: dict[type, int] = {
    type(None): _NONE,
    bool: _NUM,
    int: _NUM,
    float: _NUM,
    Decimal: _NUM,
    str: _STR,
    bytes: _BYTES,
    bytearray: _BYTES,
    datetime: _DT,
    date: _DATE,
    list: _LIST,
    tuple: _LIST,
    dict: _DICT,
}


def _kind(x: Any) -> int:
    k = _KINDS.get(x.__class__)
    if k is not None:
        return k
    if isinstance(x, (int, float, Decimal)):
        return _NUM
    if isinstance(x, str):
        return _STR
    if isinstance(x, (bytes, bytearray)):
        return _BYTES
    # datetime before date: datetime is a subclass of date.
    if isinstance(x, datetime):
        return _DT
    if isinstance(x, date):
        return _DATE
    if isinstance(x, (list, tuple)):
        return _LIST
    if isinstance(x, dict):
        return _DICT
    return _OTHER


def py_eq(a: Any, b: Any) -> bool:
    """Python equality on the value model (internals §1).

    Unlike Python's ``==`` on containers, NaN inside lists and dicts never equals itself
    (no identity shortcut), and tuples compare like lists. Values outside the value model
    fall back to ``==``.
    """
    ka = _kind(a)
    kb = _kind(b)
    if ka != kb:
        if ka == _OTHER or kb == _OTHER:
            return _safe_eq(a, b)
        return False
    if ka == _LIST:
        return len(a) == len(b) and all(py_eq(x, y) for x, y in zip(a, b, strict=True))
    if ka == _DICT:
        return a.keys() == b.keys() and all(py_eq(v, b[k]) for k, v in a.items())
    return _safe_eq(a, b)


def _safe_eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (ArithmeticError, TypeError, ValueError):
        # Decimal signalling NaN raises on comparison; it equals nothing.
        return False


@lru_cache(maxsize=4096)
def _parse_datetime(text: str) -> datetime | None:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _is_aware(d: datetime) -> bool:
    return d.tzinfo is not None and d.utcoffset() is not None


def _cmp_datetimes(a: datetime, b: datetime) -> int | None:
    if _is_aware(a) != _is_aware(b):
        return None
    return (a > b) - (a < b)


def compare(a: Any, b: Any) -> int | None:
    """Order two values per internals §1: -1, 0 or 1, or None when incomparable.

    numbers with numbers (NaN incomparable), str with str (code points), datetimes with
    datetimes (naive vs aware incomparable) and with ISO-8601 strings (trailing "Z" is UTC,
    a bare date is midnight), dates with dates and ISO date strings.
    """
    ka = _kind(a)
    kb = _kind(b)
    if ka == _NUM and kb == _NUM:
        try:
            if a < b:
                return -1
            if a > b:
                return 1
            if a == b:
                return 0
        except (ArithmeticError, TypeError):
            pass
        return None
    if ka == _STR and kb == _STR:
        return int(a > b) - int(a < b)
    if ka == _DT:
        if kb == _DT:
            return _cmp_datetimes(a, b)
        if kb == _STR:
            pb = _parse_datetime(b)
            return None if pb is None else _cmp_datetimes(a, pb)
        return None
    if kb == _DT:
        if ka == _STR:
            pa = _parse_datetime(a)
            return None if pa is None else _cmp_datetimes(pa, b)
        return None
    if ka == _DATE:
        if kb == _DATE:
            return int(a > b) - int(a < b)
        if kb == _STR:
            pdb = _parse_date(b)
            return None if pdb is None else (a > pdb) - (a < pdb)
        return None
    if kb == _DATE and ka == _STR:
        pda = _parse_date(a)
        return None if pda is None else (pda > b) - (pda < b)
    return None


@lru_cache(maxsize=1024)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for ch in pattern:
        if ch == "%":
            # Runs of % are one wildcard; collapsing them avoids needless backtracking.
            if not parts or parts[-1] != ".*":
                parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise QueryError(f"Invalid regex pattern {pattern!r}: {exc}") from exc


def _in(v: Any, x: Any) -> bool:
    if isinstance(x, (list, tuple, set, frozenset)):
        return any(py_eq(v, e) for e in x)
    return py_eq(v, x)


def _between(v: Any, x: Any) -> bool | None:
    """True/False, or None when the bounds are malformed."""
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        return None
    lo = compare(v, x[0])
    if lo is None or lo < 0:
        return False
    hi = compare(v, x[1])
    return hi is not None and hi <= 0


# ---------------------------------------------------------------------------- filters


@dataclass(init=False)
class Filter:
    """A single condition ``field <operator> value``.

    Args:
        field: Field path (``"id"`` is the record id; dotted paths walk nested values).
        operator: An :class:`Operator` or an operator string (see :func:`parse_operator`).
        value: The operand (a ``[lo, hi]`` pair for BETWEEN, a collection for IN).

    Raises:
        QueryError: (also a ValueError) for an unknown operator string.
    """

    field: str
    operator: Operator
    value: Any

    def __init__(self, field: str, operator: Operator | str, value: Any = None) -> None:
        self.field = field
        self.operator = coerce_operator(operator)
        self.value = value

    def matches(self, record_value: Any) -> bool:
        """Whether a resolved field value satisfies this filter (None means missing)."""
        value = record_value
        op = self.operator
        if op is Operator.EXISTS:
            return value is not None
        if op is Operator.NOT_EXISTS:
            return value is None
        if value is None:
            return False
        x = self.value
        if op is Operator.EQ:
            return py_eq(value, x)
        if op is Operator.NEQ:
            return not py_eq(value, x)
        if op is Operator.GT:
            c = compare(value, x)
            return c is not None and c > 0
        if op is Operator.GTE:
            c = compare(value, x)
            return c is not None and c >= 0
        if op is Operator.LT:
            c = compare(value, x)
            return c is not None and c < 0
        if op is Operator.LTE:
            c = compare(value, x)
            return c is not None and c <= 0
        if op is Operator.IN:
            return _in(value, x)
        if op is Operator.NOT_IN:
            return not _in(value, x)
        if op is Operator.BETWEEN:
            return _between(value, x) is True
        if op is Operator.NOT_BETWEEN:
            return _between(value, x) is not True
        if not (isinstance(value, str) and isinstance(x, str)):
            # LIKE, NOT_LIKE, REGEX and STARTS_WITH only apply to strings.
            return False
        if op is Operator.LIKE:
            return _like_regex(x).fullmatch(value) is not None
        if op is Operator.NOT_LIKE:
            return _like_regex(x).fullmatch(value) is None
        if op is Operator.REGEX:
            return _regex(x).search(value) is not None
        return value.startswith(x)  # STARTS_WITH

    def matches_record(self, record: Record | Mapping[str, Any]) -> bool:
        """Whether ``record`` satisfies this filter (resolving :attr:`field` on it)."""
        return self.matches(resolve_path(record, self.field))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"field", "operator", "value"}`` with the operator's string value."""
        return {"field": self.field, "operator": self.operator.value, "value": self.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Filter:
        """Build a filter from :meth:`to_dict` output."""
        return cls(data["field"], data.get("operator", data.get("op", "=")), data.get("value"))


RESERVED_KEY_FIELD = "id"
"""The field name that addresses the record id (its storage key) in filters and sorts."""


def is_storage_key_field(field_name: str) -> bool:
    """Whether a filter or sort on ``field_name`` targets the record id."""
    return field_name == RESERVED_KEY_FIELD


def resolve_path(record: Record | Mapping[str, Any], path: str) -> Any:
    """Resolve a field path on a record (internals §1); missing reads as None.

    ``"id"`` is the record id; an exact data field name wins; a dotted path walks
    ``data[first]`` (or the record metadata for ``"metadata.…"`` when no field is called
    "metadata") through dict keys and list indexes.
    """
    if isinstance(record, Record):
        if is_storage_key_field(path):
            return record.id
        value = record._resolve(path)
    else:
        value = record.get(path, MISSING)
        if value is MISSING and "." in path:
            first, *rest = path.split(".")
            root = record.get(first, MISSING)
            value = MISSING if root is MISSING else walk_path(root, rest)
    return None if value is MISSING else value


# ---------------------------------------------------------------------------- sorting


class SortOrder(Enum):
    """Sort direction."""

    ASC = "asc"
    DESC = "desc"


_SORT_ALIASES = {
    "asc": SortOrder.ASC,
    "ascending": SortOrder.ASC,
    "desc": SortOrder.DESC,
    "descending": SortOrder.DESC,
}


def coerce_sort_order(order: SortOrder | str) -> SortOrder:
    """Return the :class:`SortOrder` for a SortOrder or "asc"/"desc" (case-insensitive).

    Raises:
        QueryError: for anything else.
    """
    if isinstance(order, SortOrder):
        return order
    if isinstance(order, str):
        found = _SORT_ALIASES.get(order.strip().lower())
        if found is not None:
            return found
    raise QueryError(f"Unknown sort order: {order!r}")


parse_sort_order = coerce_sort_order


@dataclass(init=False)
class SortSpec:
    """Sort by ``field`` in ``order``."""

    field: str
    order: SortOrder

    def __init__(self, field: str, order: SortOrder | str = SortOrder.ASC) -> None:
        self.field = field
        self.order = parse_sort_order(order)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"field", "order"}``."""
        return {"field": self.field, "order": self.order.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SortSpec:
        """Build a sort spec from :meth:`to_dict` output."""
        return cls(data["field"], data.get("order", "asc"))


_UTC = UTC


def sort_key(value: Any, descending: bool = False) -> tuple[Any, ...]:
    """Key implementing the total sort order of internals §1.

    Ascending: numbers (NaN after all numbers), str, datetimes (naive read as UTC), dates,
    bytes, everything else (all equal), then None. With ``descending=True`` the key is meant
    for ``sort(reverse=True)``: everything reverses except None, which stays last.
    """
    if value is None:
        return (0,) if descending else (1,)
    head = 1 if descending else 0
    k = _kind(value)
    if k == _NUM:
        if isinstance(value, Decimal):
            if value.is_nan():
                return (head, 0, 1, 0)
        elif value != value:
            return (head, 0, 1, 0)
        return (head, 0, 0, value)
    if k == _STR:
        return (head, 1, value)
    if k == _DT:
        if not _is_aware(value):
            value = value.replace(tzinfo=_UTC)
        return (head, 2, value)
    if k == _DATE:
        return (head, 3, value)
    if k == _BYTES:
        return (head, 4, bytes(value))
    return (head, 5)


def sort_records(
    records: Iterable[Record | Mapping[str, Any]], sort_specs: Iterable[SortSpec]
) -> list[Any]:
    """Stable multi-key sort of ``records`` by ``sort_specs`` (first spec is the primary key)."""
    result = list(records)
    for spec in reversed(list(sort_specs)):
        desc = spec.order is SortOrder.DESC
        field = spec.field
        result.sort(key=lambda r: sort_key(resolve_path(r, field), desc), reverse=desc)
    return result


# ---------------------------------------------------------------------------- Query


def _check_count(name: str, n: Any) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int):
        raise QueryError(f"{name} must be an integer or None, got {n!r}")
    if n < 0:
        raise QueryError(f"{name} must not be negative, got {n}")
    return n


QueryItem = Any
"""A Filter, Query, ComplexQuery, Condition or ``(field, op, value)`` tuple."""


class ResultShaping:
    """Sort keys, offset, limit and projection, shared by :class:`Query` and QueryBuilder.

    Every method mutates the object and returns it, for chaining.
    """

    sort_specs: list[SortSpec]
    limit_value: int | None
    offset_value: int | None
    fields: list[str] | None

    def sort_by(self, field: str, order: SortOrder | str = SortOrder.ASC) -> Self:
        """Add a sort key (``order`` is a SortOrder or "asc"/"desc")."""
        self.sort_specs.append(SortSpec(field, order))
        return self

    def sort(self, field: str, order: SortOrder | str = SortOrder.ASC) -> Self:
        """Same as :meth:`sort_by`."""
        return self.sort_by(field, order)

    def limit(self, value: int | None) -> Self:
        """Return at most ``value`` results (None: no limit; 0: nothing)."""
        self.limit_value = _check_count("limit", value)
        return self

    def offset(self, value: int | None) -> Self:
        """Skip the first ``value`` results."""
        self.offset_value = _check_count("offset", value)
        return self

    def select(self, *fields: str | Iterable[str]) -> Self:
        """Keep only these fields in the results; no argument resets to all fields."""
        names: list[str] = []
        for f in fields:
            if isinstance(f, str):
                names.append(f)
            else:
                names.extend(f)
        self.fields = names or None
        return self


@dataclass(init=False)
class Query(ResultShaping):
    """A fluent query: ANDed filters, sort keys, offset, limit and projection.

    Every builder method mutates the query and returns it.
    """

    filters: list[Filter]
    sort_specs: list[SortSpec]
    limit_value: int | None
    offset_value: int | None
    fields: list[str] | None

    def __init__(
        self,
        filters: Iterable[Filter] | None = None,
        sort_specs: Iterable[SortSpec] | None = None,
        limit_value: int | None = None,
        offset_value: int | None = None,
        fields: Iterable[str] | None = None,
    ) -> None:
        self.filters = list(filters) if filters is not None else []
        self.sort_specs = list(sort_specs) if sort_specs is not None else []
        self.limit_value = _check_count("limit", limit_value)
        self.offset_value = _check_count("offset", offset_value)
        self.fields = list(fields) if fields else None

    def filter(
        self, field: str | Filter, operator: Operator | str = Operator.EQ, value: Any = None
    ) -> Query:
        """Add the filter ``field <operator> value`` (or a :class:`Filter` object)."""
        if isinstance(field, Filter):
            self.filters.append(field)
        else:
            self.filters.append(Filter(field, operator, value))
        return self

    def where(
        self, field: str | Filter, operator: Operator | str = Operator.EQ, value: Any = None
    ) -> Query:
        """Same as :meth:`filter`."""
        return self.filter(field, operator, value)

    def set_limit(self, limit: int | None) -> Query:
        """Same as :meth:`limit` (0.11.0's spelling)."""
        return self.limit(limit)

    def set_offset(self, offset: int | None) -> Query:
        """Same as :meth:`offset` (0.11.0's spelling)."""
        return self.offset(offset)

    @property
    def limit_property(self) -> int | None:
        """The limit (``limit`` itself is the builder method)."""
        return self.limit_value

    @property
    def offset_property(self) -> int | None:
        """The offset (``offset`` itself is the builder method)."""
        return self.offset_value

    @property
    def sort_property(self) -> list[SortSpec]:
        """The sort keys (``sort`` itself is the builder method)."""
        return self.sort_specs

    def clear_filters(self) -> Query:
        """Remove every filter."""
        self.filters = []
        return self

    def clear_sort(self) -> Query:
        """Remove every sort key."""
        self.sort_specs = []
        return self

    def copy(self) -> Query:
        """Return an independent deep copy."""
        return _copy.deepcopy(self)

    def matches(self, record: Record | Mapping[str, Any]) -> bool:
        """Whether ``record`` satisfies every filter."""
        return all(f.matches(resolve_path(record, f.field)) for f in self.filters)

    # -- boolean helpers

    def and_(self, *items: QueryItem) -> Query:
        """Append filters (Filter objects, ``(field, op, value)`` tuples, or the filters of
        other Queries) to this query, ANDed with the existing ones."""
        for item in items:
            if isinstance(item, Filter):
                self.filters.append(item)
            elif isinstance(item, Query):
                self.filters.extend(item.filters)
            elif isinstance(item, tuple):
                self.filters.append(Filter(*item))
            else:
                simple = _to_simple(item)
                if simple is None:
                    raise QueryError(
                        "and_() on a Query accepts filters and simple queries; "
                        "use QueryBuilder or ComplexQuery for nested logic"
                    )
                self.filters.extend(simple.filters)
        return self

    def or_(self, *filters: QueryItem) -> ComplexQuery:
        """Return a ComplexQuery: (this query's filters, ANDed) AND (item1 OR item2 ...).

        ``Query().or_(a, b)`` is therefore ``a OR b``. Sort, paging and projection are kept.
        With no items nothing is added (as 0.11.0 does): the result means this query.
        """
        from dataknobs_data.query_logic import LogicCondition, LogicOperator

        if not filters:
            return self._complex(None)
        alternatives = [_to_condition(item) for item in filters]
        return self._complex(LogicCondition(LogicOperator.OR, alternatives))

    def not_(self, filter: QueryItem) -> ComplexQuery:
        """Return a ComplexQuery: this query AND NOT ``filter``."""
        from dataknobs_data.query_logic import LogicCondition, LogicOperator

        return self._complex(LogicCondition(LogicOperator.NOT, [_to_condition(filter)]))

    def _complex(self, extra: Condition | None) -> ComplexQuery:
        from dataknobs_data.query_logic import (
            ComplexQuery,
            FilterCondition,
            LogicCondition,
            LogicOperator,
        )

        parts: list[Condition] = [FilterCondition(f) for f in self.filters]
        if extra is not None:
            parts.append(extra)
        condition: Condition | None
        if len(parts) > 1:
            condition = LogicCondition(LogicOperator.AND, parts)
        else:
            condition = parts[0] if parts else None
        return ComplexQuery(
            condition=condition,
            sort_specs=list(self.sort_specs),
            limit_value=self.limit_value,
            offset_value=self.offset_value,
            fields=list(self.fields) if self.fields else None,
        )

    # -- serialisation

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"filters", "sort"}`` plus ``"limit"``, ``"offset"``, ``"fields"`` when set."""
        result: dict[str, Any] = {
            "filters": [f.to_dict() for f in self.filters],
            "sort": [s.to_dict() for s in self.sort_specs],
        }
        if self.limit_value is not None:
            result["limit"] = self.limit_value
        if self.offset_value is not None:
            result["offset"] = self.offset_value
        if self.fields is not None:
            result["fields"] = list(self.fields)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Query:
        """Build a query from :meth:`to_dict` output."""
        sort_raw = data.get("sort", data.get("sort_specs")) or []
        return cls(
            filters=[Filter.from_dict(f) for f in data.get("filters") or []],
            sort_specs=[_sort_spec_from(s) for s in sort_raw],
            limit_value=data.get("limit", data.get("limit_value")),
            offset_value=data.get("offset", data.get("offset_value")),
            fields=data.get("fields"),
        )


def _sort_spec_from(item: Any) -> SortSpec:
    if isinstance(item, SortSpec):
        return item
    if isinstance(item, Mapping):
        return SortSpec.from_dict(item)
    if isinstance(item, str):
        return SortSpec(item)
    field, order = item
    if isinstance(order, bool):
        return SortSpec(field, SortOrder.DESC if order else SortOrder.ASC)
    return SortSpec(field, order)


def _to_condition(item: QueryItem) -> Condition:
    """Turn a Filter, Query, ComplexQuery, Condition or tuple into a Condition."""
    from dataknobs_data.query_logic import (
        ComplexQuery,
        Condition,
        FilterCondition,
        LogicCondition,
        LogicOperator,
    )

    if isinstance(item, Condition):
        return item
    if isinstance(item, Filter):
        return FilterCondition(item)
    if isinstance(item, tuple):
        return FilterCondition(Filter(*item))
    if isinstance(item, Query):
        if len(item.filters) == 1:
            return FilterCondition(item.filters[0])
        return LogicCondition(LogicOperator.AND, [FilterCondition(f) for f in item.filters])
    if isinstance(item, ComplexQuery):
        if item.condition is None:
            return LogicCondition(LogicOperator.AND, [])
        return item.condition
    builder_build: Callable[[], ComplexQuery] | None = getattr(item, "build", None)
    if builder_build is not None:
        return _to_condition(builder_build())
    raise QueryError(f"Cannot use {type(item).__name__} as a query condition")


def _to_simple(item: QueryItem) -> Query | None:
    from dataknobs_data.query_logic import ComplexQuery, Condition

    if isinstance(item, Condition):
        item = ComplexQuery(condition=item)
    if isinstance(item, ComplexQuery):
        try:
            return item.to_simple_query()
        except QueryError:
            return None
    return None


# ---------------------------------------------------------------------------- shaping


def apply_query(
    records: Iterable[Record], query: Query | ComplexQuery | None, copy: bool = True
) -> list[Record]:
    """Apply ``query`` to ``records`` in pure Python: the reference for every backend.

    Filter, then sort (stable, multi-key, total order), then offset, then limit, then
    projection. With ``copy`` (default) the results are independent deep copies.

    Raises:
        QueryError: negative offset or limit, or an invalid regex.
    """
    if query is None:
        matched = list(records)
        sort_specs: list[SortSpec] = []
        offset = limit = None
        fields: list[str] | None = None
    else:
        offset = _check_count("offset", query.offset_value)
        limit = _check_count("limit", query.limit_value)
        matches = query.matches
        matched = [r for r in records if matches(r)]
        sort_specs = list(query.sort_specs)
        fields = list(query.fields) if query.fields else None
    if sort_specs:
        matched = sort_records(matched, sort_specs)
    if offset:
        matched = matched[offset:]
    if limit is not None:
        matched = matched[:limit]
    if fields:
        return [r.project(fields).copy(deep=True) if copy else r.project(fields) for r in matched]
    return [r.copy(deep=True) for r in matched] if copy else matched
