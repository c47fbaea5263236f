"""0.11.0's query DSL builders, answered by the store's own translator.

There is one translation (``rust/core/src/search/dsl.rs``): a condition becomes the clause
the store narrows a search with, against the mapping its dynamic templates give an index
(strings as text with a ``.keyword`` sub-field, numbers as numbers). The clause selects a
superset of the records that match, and the store decides every fetched document with the same
evaluator as every other backend (``Filter.matches``), so a negation, a regex or a filter on
``metadata.*`` narrows nothing (``match_all``) rather than being approximated: a clause that
Lucene evaluates differently from Python would drop matches.

0.11.0 returned Lucene approximations of every operator; code that sends these clauses to a
server itself gets a superset of the matches here, and should test each hit with
``Filter.matches`` (or use the database's ``search``, which does).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import _native
from ..query import Filter
from ..query_logic import (
    ComplexQuery,
    Condition,
    FilterCondition,
    LogicCondition,
    LogicOperator,
    to_spec,
)

__all__ = ["build_bool_query", "build_complex_es_query", "build_filter_es_query"]


def _dsl(condition: Condition) -> dict[str, Any]:
    spec = to_spec(ComplexQuery(condition=condition))
    assert spec is not None  # a ComplexQuery always has a spec
    clause: dict[str, Any] = json.loads(_native.search_query_dsl(spec))
    return clause


def build_filter_es_query(filter_obj: Filter) -> dict[str, Any]:
    """The clause one filter narrows a search to (``match_all`` when it cannot narrow)."""
    return _dsl(FilterCondition(filter_obj))


def build_bool_query(filters: Sequence[Filter]) -> dict[str, Any]:
    """The clause a query's filters (ANDed) narrow a search to; ``match_all`` for none."""
    if not filters:
        return {"match_all": {}}
    return _dsl(LogicCondition(LogicOperator.AND, [FilterCondition(f) for f in filters]))


def build_complex_es_query(condition: Condition) -> dict[str, Any]:
    """The clause a boolean condition tree narrows a search to."""
    return _dsl(condition)
