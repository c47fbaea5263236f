"""0.11.0's module name for the async Elasticsearch backend: the class lives in
``backends.elasticsearch``."""

from .elasticsearch import AsyncElasticsearchDatabase

__all__ = ["AsyncElasticsearchDatabase"]
