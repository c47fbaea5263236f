"""0.11.0's Elasticsearch mixins, as far as they mean something here.

The client, the document layout and the query translation live in the Rust core
(``rust/core/src/search/``); these classes keep 0.11.0's names and public helpers so that code
importing them (or checking ``isinstance``) runs unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from .. import _native

__all__ = [
    "ElasticsearchBaseConfig",
    "ElasticsearchErrorHandler",
    "ElasticsearchIndexManager",
    "ElasticsearchQueryBuilder",
    "ElasticsearchRecordSerializer",
    "es_version_token",
    "parse_es_version_token",
]


def es_version_token(seq_no: int, primary_term: int) -> str:
    """The opaque token ``"{seq_no}:{primary_term}"`` for a document version (0.11.0's form)."""
    return f"{seq_no}:{primary_term}"


def parse_es_version_token(token: str) -> tuple[int, int]:
    """``(seq_no, primary_term)`` from :func:`es_version_token`'s text.

    Raises:
        ValueError: the token is not of that form.
    """
    seq_no, _, primary_term = token.partition(":")
    if not primary_term:
        raise ValueError(f"Malformed Elasticsearch version token: {token!r}")
    return int(seq_no), int(primary_term)


class ElasticsearchBaseConfig:
    """Marker of 0.11.0's config-parsing mixin: the config is read by the backend class."""


class ElasticsearchErrorHandler:
    """Marker of 0.11.0's error mixin: the core raises ``dataknobs_data.exceptions`` types."""


class ElasticsearchIndexManager:
    """The mappings the backend creates an index with."""

    @staticmethod
    def get_index_mappings(vector_fields: dict[str, int] | None = None) -> dict[str, Any]:
        """The default index mappings (``vector_fields`` must be empty: vector search is not
        offered)."""
        if vector_fields:
            raise ValueError("vector fields are not supported by this backend")
        mappings: dict[str, Any] = json.loads(_native.search_default_mappings())
        return mappings


class ElasticsearchQueryBuilder:
    """Marker of 0.11.0's query mixin: see ``backends.elasticsearch_query``."""


class ElasticsearchRecordSerializer:
    """Marker of 0.11.0's document mixin: documents are encoded and decoded in the core."""
