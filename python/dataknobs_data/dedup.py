"""Exact-duplicate detection by content hash, with the registry kept in a database.

``DedupChecker(db, config)`` hashes the configured fields of a piece of content; ``check`` says
whether that hash was registered before (and under which record id), ``register`` records it.
The registry is ordinary records ``{"content_hash", "record_id"}`` in ``db``, so any backend
can hold it. 0.11.0's semantic (vector-similarity) check is out of scope here: with
``semantic_check`` set, the check is the exact one, as 0.11.0's is when it has no vector store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError
from .query import Filter, Operator, Query
from .records import Record

if TYPE_CHECKING:
    from .database import AsyncDatabase

__all__ = ["DedupChecker", "DedupConfig", "DedupResult"]

_ALGORITHMS = ("md5", "sha256")


@dataclass
class DedupConfig:
    """What counts as the same content.

    Args:
        hash_fields: The content fields whose values (joined with ``|``) are hashed.
        hash_algorithm: ``"md5"`` (default) or ``"sha256"``.
        semantic_check: 0.11.0's similarity check (needs vector search, not offered here).
        semantic_fields: The fields its text would be built from.
        similarity_threshold: Its score threshold.
        max_similar_results: How many similar items it would report.
    """

    hash_fields: list[str] = field(default_factory=lambda: ["content"])
    hash_algorithm: str = "md5"
    semantic_check: bool = False
    semantic_fields: list[str] | None = None
    similarity_threshold: float = 0.92
    max_similar_results: int = 5

    def __post_init__(self) -> None:
        # 0.11.0 silently hashes with md5 for any other name; a typo here must not change
        # what counts as a duplicate without a word.
        if self.hash_algorithm not in _ALGORITHMS:
            raise ConfigurationError(
                "hash_algorithm",
                f"expected one of {', '.join(_ALGORITHMS)}, got {self.hash_algorithm!r}",
            )


@dataclass
class DedupResult:
    """The outcome of :meth:`DedupChecker.check`.

    ``recommendation`` is ``"exact_duplicate"`` or ``"unique"``. ``similar_items`` and
    ``mismatched_model_ids`` belong to the semantic check and stay empty here.
    """

    is_exact_duplicate: bool
    exact_match_id: str | None = None
    similar_items: list[Any] = field(default_factory=list)
    recommendation: str = "unique"
    content_hash: str = ""
    mismatched_model_ids: list[str] = field(default_factory=list)


class DedupChecker:
    """Registers content hashes in ``db`` and checks new content against them."""

    def __init__(self, db: AsyncDatabase, config: DedupConfig) -> None:
        self._db = db
        self._config = config

    @property
    def config(self) -> DedupConfig:
        """The dedup configuration."""
        return self._config

    def compute_hash(self, content: dict[str, Any]) -> str:
        """The hex digest of the configured fields (a missing field counts as ``""``)."""
        joined = "|".join(str(content.get(name, "")) for name in self._config.hash_fields)
        digest = hashlib.sha256 if self._config.hash_algorithm == "sha256" else hashlib.md5
        return digest(joined.encode()).hexdigest()

    async def check(self, content: dict[str, Any]) -> DedupResult:
        """Whether this content was registered before."""
        content_hash = self.compute_hash(content)
        found = await self._db.search(
            Query(filters=[Filter("content_hash", Operator.EQ, content_hash)]).limit(1)
        )
        if found:
            match = found[0].get_value("record_id")
            return DedupResult(
                is_exact_duplicate=True,
                exact_match_id=None if match is None else str(match),
                recommendation="exact_duplicate",
                content_hash=content_hash,
            )
        return DedupResult(is_exact_duplicate=False, content_hash=content_hash)

    async def register(self, content: dict[str, Any], record_id: str) -> None:
        """Record that ``record_id`` holds this content.

        The registry entry's id is ``record_id`` (a ``record_id`` field supplies the id), so
        registering the same record twice raises DuplicateRecordError.
        """
        await self._db.create(
            Record({"content_hash": self.compute_hash(content), "record_id": record_id})
        )
