"""Database-level aggregations: ``db.aggregate(query, group_by, metrics)`` (docs/aggregations.md).

The semantics live in the Rust core (``rust/core/src/aggregate.rs``), which every backend runs
or, where its engine pushes the aggregation down, matches exactly. This module only turns the
Python arguments into the spec the native layer takes, and refuses malformed ones with a
``QueryError`` naming what was wrong before anything is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .exceptions import QueryError

#: The metric operations, in the order the docs list them.
AGGREGATE_OPS: tuple[str, ...] = ("count", "sum", "avg", "min", "max", "cardinality")

#: What ``metrics=None`` means: the number of matching records.
DEFAULT_METRICS: dict[str, tuple[str, str | None]] = {"count": ("count", None)}

#: The spec the native stores take: group field names, then ``(name, op, field or None)``.
AggSpec = tuple[list[str], list[tuple[str, str, str | None]]]

#: ``metrics`` as the user writes it: ``{"name": (op, field or None)}``.
Metrics = Mapping[str, tuple[str, str | None]]


def _field_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise QueryError(f"{what} must be a non-empty field name (str), got {value!r}")
    return value


def aggregation_spec(
    group_by: str | Sequence[str] | None = None,
    metrics: Metrics | None = None,
) -> AggSpec:
    """The native spec for ``group_by`` and ``metrics``.

    Args:
        group_by: a field name, a list of them (dot paths as queries use them; ``"id"`` is the
            record id), or None for one row over every match.
        metrics: ``{"name": (op, field)}`` with op one of count, sum, avg, min, max,
            cardinality; ``("count", None)`` counts records. None means
            ``{"count": ("count", None)}``.

    Raises:
        QueryError: a group field or metric field that is not a non-empty str, a metric that
            is not an ``(op, field)`` pair, an unknown op (checked by the core), a metric name
            that repeats a group field, or a field missing where the op needs one.
    """
    if group_by is None:
        groups: list[str] = []
    elif isinstance(group_by, str):
        groups = [_field_name(group_by, "group_by")]
    elif isinstance(group_by, Sequence):
        groups = [_field_name(g, "group_by item") for g in group_by]
    else:
        raise QueryError(f"group_by must be a field name or a list of them, got {group_by!r}")
    if metrics is None:
        metrics = DEFAULT_METRICS
    if not isinstance(metrics, Mapping):
        raise QueryError(f"metrics must be a dict of name -> (op, field), got {metrics!r}")
    out: list[tuple[str, str, str | None]] = []
    for name, metric in metrics.items():
        if not isinstance(name, str) or not name:
            raise QueryError(f"a metric name must be a non-empty str, got {name!r}")
        if not isinstance(metric, tuple | list) or len(metric) != 2:
            raise QueryError(f"metric {name!r} must be an (op, field) pair, got {metric!r}")
        op, field = metric
        if not isinstance(op, str):
            raise QueryError(f"metric {name!r}: the op must be a str, got {op!r}")
        if field is not None:
            field = _field_name(field, f"metric {name!r}: the field")
        out.append((name, op, field))
    return groups, out
