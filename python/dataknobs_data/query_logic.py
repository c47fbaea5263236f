"""Boolean query logic: condition trees, complex queries and the native query spec."""

from __future__ import annotations

import copy
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dataknobs_data.exceptions import QueryError
from dataknobs_data.query import (
    Filter,
    Operator,
    Query,
    QueryItem,
    ResultShaping,
    SortOrder,
    SortSpec,
    _check_count,
    _sort_spec_from,
    _to_condition,
    resolve_path,
)
from dataknobs_data.records import Record

__all__ = [
    "ComplexQuery",
    "Condition",
    "FilterCondition",
    "LogicCondition",
    "LogicOperator",
    "QueryBuilder",
    "condition_from_dict",
    "to_spec",
]


class LogicOperator(Enum):
    """Boolean connectives."""

    AND = "and"
    OR = "or"
    NOT = "not"


class Condition(ABC):
    """A node of a boolean condition tree."""

    @abstractmethod
    def matches(self, record: Record | Mapping[str, Any]) -> bool:
        """Whether ``record`` satisfies this condition."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Serialise the condition (see :meth:`from_dict`)."""

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Condition:
        """Build a FilterCondition or LogicCondition from its :meth:`to_dict` output."""
        kind = data.get("type")
        if kind == "filter":
            return FilterCondition.from_dict(data)
        if kind == "logic":
            return LogicCondition.from_dict(data)
        raise QueryError(f"Unknown condition type: {kind!r}")


@dataclass
class FilterCondition(Condition):
    """A leaf condition wrapping a :class:`~dataknobs_data.query.Filter`."""

    filter: Filter

    def matches(self, record: Record | Mapping[str, Any]) -> bool:
        """Whether the filter matches the value at its field path."""
        f = self.filter
        return f.matches(resolve_path(record, f.field))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type": "filter", "filter": Filter.to_dict()}``."""
        return {"type": "filter", "filter": self.filter.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilterCondition:
        """Build from :meth:`to_dict` output."""
        return cls(Filter.from_dict(data["filter"]))


@dataclass(init=False)
class LogicCondition(Condition):
    """AND / OR / NOT over child conditions.

    AND of nothing is True, OR of nothing is False; NOT negates the AND of its children
    (normally exactly one).
    """

    operator: LogicOperator
    conditions: list[Condition]

    def __init__(
        self, operator: LogicOperator | str, conditions: Iterable[Condition] | None = None
    ) -> None:
        self.operator = (
            operator if isinstance(operator, LogicOperator) else LogicOperator(operator.lower())
        )
        self.conditions = list(conditions) if conditions is not None else []

    def matches(self, record: Record | Mapping[str, Any]) -> bool:
        """Evaluate the connective over the children."""
        op = self.operator
        if op is LogicOperator.AND:
            return all(c.matches(record) for c in self.conditions)
        if op is LogicOperator.OR:
            return any(c.matches(record) for c in self.conditions)
        return not all(c.matches(record) for c in self.conditions)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type": "logic", "operator", "conditions"}``."""
        return {
            "type": "logic",
            "operator": self.operator.value,
            "conditions": [c.to_dict() for c in self.conditions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogicCondition:
        """Build from :meth:`to_dict` output."""
        return cls(
            LogicOperator(str(data["operator"]).lower()),
            [Condition.from_dict(c) for c in data.get("conditions") or []],
        )


def condition_from_dict(data: Mapping[str, Any]) -> Condition:
    """Build a FilterCondition or LogicCondition from its ``to_dict()`` output.

    Raises:
        QueryError: (also a ValueError) for an unknown ``"type"``.
    """
    return Condition.from_dict(data)


class _hybridmethod:
    """Callable on the class (combine the given items) or on an instance (this query's
    condition combined with the given items, sort/paging kept)."""

    def __init__(self, func: Callable[..., ComplexQuery]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: Any, objtype: type | None = None) -> Callable[..., ComplexQuery]:
        return functools.partial(self.func, objtype, obj)


def _flatten_items(items: tuple[Any, ...]) -> list[Any]:
    if len(items) == 1 and isinstance(items[0], (list, tuple)) and not _is_filter_tuple(items[0]):
        return list(items[0])
    return list(items)


def _is_filter_tuple(item: Any) -> bool:
    return isinstance(item, tuple) and 2 <= len(item) <= 3 and isinstance(item[0], str)


@dataclass(init=False)
class ComplexQuery:
    """A query whose condition is an arbitrary boolean tree.

    Args:
        condition: The root condition (None matches everything).
        sort_specs: Sort keys, primary first.
        limit_value: Maximum number of results (None: no limit).
        offset_value: Number of results to skip.
        fields: Projection (None or empty: all fields).
    """

    condition: Condition | None
    sort_specs: list[SortSpec]
    limit_value: int | None
    offset_value: int | None
    fields: list[str] | None

    def __init__(
        self,
        condition: Condition | None = None,
        sort_specs: Iterable[SortSpec] | None = None,
        limit_value: int | None = None,
        offset_value: int | None = None,
        fields: Iterable[str] | None = None,
    ) -> None:
        self.condition = condition
        self.sort_specs = list(sort_specs) if sort_specs is not None else []
        self.limit_value = _check_count("limit", limit_value)
        self.offset_value = _check_count("offset", offset_value)
        self.fields = list(fields) if fields else None

    @staticmethod
    def _combine(
        cls: type[ComplexQuery] | None,
        self: ComplexQuery | None,
        op: LogicOperator,
        items: tuple[Any, ...],
    ) -> ComplexQuery:
        parts: list[Condition] = []
        if self is not None and self.condition is not None:
            parts.append(self.condition)
        parts.extend(_to_condition(i) for i in _flatten_items(items))
        target = cls or ComplexQuery
        if self is None:
            return target(condition=LogicCondition(op, parts))
        return target(
            condition=LogicCondition(op, parts),
            sort_specs=list(self.sort_specs),
            limit_value=self.limit_value,
            offset_value=self.offset_value,
            fields=self.fields,
        )

    @_hybridmethod
    def AND(
        cls: type[ComplexQuery] | None,
        self: ComplexQuery | None,
        *items: QueryItem,
        queries: Iterable[QueryItem] | None = None,
    ) -> ComplexQuery:
        """AND of queries/conditions/filters (a list, varargs, or ``queries=[...]``).

        ``ComplexQuery.AND([q1, q2])`` combines the items; ``cq.AND(x)`` is ``cq AND x``.
        """
        if queries is not None:
            items = (*items, *queries)
        return ComplexQuery._combine(cls, self, LogicOperator.AND, items)

    @_hybridmethod
    def OR(
        cls: type[ComplexQuery] | None,
        self: ComplexQuery | None,
        *items: QueryItem,
        queries: Iterable[QueryItem] | None = None,
    ) -> ComplexQuery:
        """OR of queries/conditions/filters (a list, varargs, or ``queries=[...]``).

        ``ComplexQuery.OR([q1, q2])`` combines the items; ``cq.OR(x)`` is ``cq OR x``.
        """
        if queries is not None:
            items = (*items, *queries)
        return ComplexQuery._combine(cls, self, LogicOperator.OR, items)

    def matches(self, record: Record | Mapping[str, Any]) -> bool:
        """Whether ``record`` satisfies the condition (None matches everything)."""
        return self.condition is None or self.condition.matches(record)

    def to_simple_query(self) -> Query:
        """Return the equivalent :class:`Query`.

        Raises:
            QueryError: the condition uses OR or NOT, which a simple query cannot express.
        """
        filters: list[Filter] = []
        if self.condition is not None:
            _collect_and_filters(self.condition, filters)
        return Query(
            filters=filters,
            sort_specs=list(self.sort_specs),
            limit_value=self.limit_value,
            offset_value=self.offset_value,
            fields=self.fields,
        )

    def copy(self) -> ComplexQuery:
        """Return an independent copy."""
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the keys that are set: ``condition``, ``sort``, ``limit``, ``offset``,
        ``fields`` (an empty ComplexQuery is ``{}``, as in 0.11.0)."""
        result: dict[str, Any] = {}
        if self.condition is not None:
            result["condition"] = self.condition.to_dict()
        if self.sort_specs:
            result["sort"] = [s.to_dict() for s in self.sort_specs]
        if self.limit_value is not None:
            result["limit"] = self.limit_value
        if self.offset_value is not None:
            result["offset"] = self.offset_value
        if self.fields is not None:
            result["fields"] = list(self.fields)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComplexQuery:
        """Build from :meth:`to_dict` output."""
        cond = data.get("condition")
        sort_raw = data.get("sort", data.get("sort_specs")) or []
        return cls(
            condition=Condition.from_dict(cond) if cond is not None else None,
            sort_specs=[_sort_spec_from(s) for s in sort_raw],
            limit_value=data.get("limit", data.get("limit_value")),
            offset_value=data.get("offset", data.get("offset_value")),
            fields=data.get("fields"),
        )


def _collect_and_filters(cond: Condition, out: list[Filter]) -> None:
    if isinstance(cond, FilterCondition):
        out.append(cond.filter)
        return
    if isinstance(cond, LogicCondition) and cond.operator is LogicOperator.AND:
        for child in cond.conditions:
            _collect_and_filters(child, out)
        return
    raise QueryError("Query uses OR/NOT logic and cannot be converted to a simple Query")


class QueryBuilder(ResultShaping):
    """Fluent builder of :class:`ComplexQuery` objects, folding left to right.

    ``where``/``and_`` AND onto what was built so far, ``or_`` ORs onto it and ``not_``
    ANDs a negation: ``QueryBuilder().where("a", "=", 1).or_(Filter("b", "=", 2))`` is
    ``a = 1 OR b = 2``.
    """

    def __init__(self) -> None:
        self.root_condition: Condition | None = None
        self.sort_specs: list[SortSpec] = []
        self.limit_value: int | None = None
        self.offset_value: int | None = None
        self.fields: list[str] | None = None

    def _fold(self, op: LogicOperator, conditions: list[Condition]) -> QueryBuilder:
        root = self.root_condition
        if root is None:
            if op is LogicOperator.AND and len(conditions) == 1:
                self.root_condition = conditions[0]
            else:
                self.root_condition = LogicCondition(op, conditions)
        elif isinstance(root, LogicCondition) and root.operator is op:
            root.conditions.extend(conditions)
        else:
            self.root_condition = LogicCondition(op, [root, *conditions])
        return self

    def where(
        self, field: str | Filter, operator: Operator | str = Operator.EQ, value: Any = None
    ) -> QueryBuilder:
        """AND the filter ``field <operator> value`` (or a Filter object)."""
        f = field if isinstance(field, Filter) else Filter(field, operator, value)
        return self._fold(LogicOperator.AND, [FilterCondition(f)])

    def and_(self, *items: QueryItem) -> QueryBuilder:
        """AND filters, conditions, queries or builders (or ``field, op, value``)."""
        if items and isinstance(items[0], str):
            return self.where(*items)
        return self._fold(LogicOperator.AND, [_to_condition(i) for i in _flatten_items(items)])

    def or_(self, *items: QueryItem) -> QueryBuilder:
        """OR filters, conditions, queries or builders onto what was built so far."""
        if items and isinstance(items[0], str):
            items = (Filter(*items),)
        return self._fold(LogicOperator.OR, [_to_condition(i) for i in _flatten_items(items)])

    def not_(self, condition: QueryItem) -> QueryBuilder:
        """AND the negation of a filter, condition, query or builder."""
        negated = LogicCondition(LogicOperator.NOT, [_to_condition(condition)])
        return self._fold(LogicOperator.AND, [negated])

    def build(self) -> ComplexQuery:
        """Return the ComplexQuery built so far (the builder can keep being used)."""
        # Detached from the builder so later builder calls do not alter this query.
        return ComplexQuery(
            condition=copy.deepcopy(self.root_condition),
            sort_specs=list(self.sort_specs),
            limit_value=self.limit_value,
            offset_value=self.offset_value,
            fields=self.fields,
        )


# ---------------------------------------------------------------------------- native spec


def _spec_value(op: Operator, value: Any) -> Any:
    if op in (Operator.IN, Operator.NOT_IN) and isinstance(value, (set, frozenset, tuple)):
        # Rows cannot carry sets; membership does not depend on order.
        return list(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _cond_spec(cond: Condition) -> tuple[Any, ...]:
    if isinstance(cond, FilterCondition):
        f = cond.filter
        return ("filter", f.field, f.operator.value, _spec_value(f.operator, f.value))
    if isinstance(cond, LogicCondition):
        children = [_cond_spec(c) for c in cond.conditions]
        if cond.operator is LogicOperator.AND:
            return ("and", children)
        if cond.operator is LogicOperator.OR:
            return ("or", children)
        return ("not", children[0] if len(children) == 1 else ("and", children))
    raise QueryError(f"Cannot translate condition {type(cond).__name__} to a query spec")


def to_spec(query: Query | ComplexQuery | None) -> dict[str, Any] | None:
    """Translate a query into the native spec dict of docs/internals.md §2.

    ``None`` stays None ("everything"). A Query's filters become ``("and", [...])``
    (``None`` when it has none).

    Raises:
        QueryError: negative offset or limit.
    """
    if query is None:
        return None
    where: tuple[Any, ...] | None
    if isinstance(query, Query):
        where = (
            ("and", [_cond_spec(FilterCondition(f)) for f in query.filters])
            if query.filters
            else None
        )
    else:
        where = _cond_spec(query.condition) if query.condition is not None else None
    return {
        "where": where,
        "sort": [(s.field, s.order is SortOrder.DESC) for s in query.sort_specs],
        "offset": _check_count("offset", query.offset_value),
        "limit": _check_count("limit", query.limit_value),
        "fields": list(query.fields) if query.fields else None,
    }
