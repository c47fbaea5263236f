"""Buffered transactions: writes staged in Python and applied together on commit.

``async with db.transaction() as tx:`` (or ``tx = await db.begin_transaction()``) gives a
:class:`BufferedTransaction`. Its write methods stage; nothing reaches storage before
:meth:`BufferedTransaction.commit`, so an exception inside the block leaves storage as it
was on every backend.

On commit, consecutive writes of one kind become one batch (creates, upserts or deletes, in
staged order) and every batch goes to the backend in one call. SQLite and PostgreSQL (and
DuckDB) run them inside one server transaction: the commit is all or nothing
(``supports_transactions()`` and :attr:`BufferedTransaction.is_atomic` are True). Memory and
file apply the batches one after another: a failure in a later batch leaves the earlier ones
applied, which is why opening a transaction there needs ``policy="emulate"``; the default
``"strict"`` raises :class:`~dataknobs_data.exceptions.CapabilityNotSupportedError` instead of
promising what the backend cannot do.

Staged writes are not visible to reads before the commit, and a transaction gives no
isolation for reads made inside the block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from .exceptions import OperationError

if TYPE_CHECKING:
    from .database import AsyncDatabase
    from .records import Record

#: The ``policy`` values ``transaction()`` and ``begin_transaction()`` accept.
VALID_TRANSACTION_POLICIES = ("strict", "emulate")

BatchKind = Literal["create", "upsert", "delete"]
#: A commit's unit: one kind of write and its records (create, upsert) or ids (delete).
Batch = tuple[BatchKind, list[Any]]

__all__ = ["VALID_TRANSACTION_POLICIES", "Batch", "BatchKind", "BufferedTransaction"]


class BufferedTransaction:
    """Writes staged for one commit; see the module docstring for what a commit guarantees.

    Args:
        db: The database the commit writes to.
        policy: ``"strict"`` or ``"emulate"``, as given to ``begin_transaction`` (which
            decides whether a non-atomic backend may open one).
    """

    def __init__(self, db: AsyncDatabase, *, policy: str = "strict") -> None:
        self._db = db
        self._policy = policy
        self._staged: list[tuple[BatchKind, Any]] = []
        self._closed = False
        # Fixed for the life of the handle: it is the backend's, not the staged writes'.
        self._atomic = bool(db.supports_transactions())

    @property
    def is_atomic(self) -> bool:
        """Whether :meth:`commit` applies every staged write or, on a failure, none."""
        return self._atomic

    @property
    def policy(self) -> str:
        """The policy this transaction was opened with."""
        return self._policy

    @property
    def closed(self) -> bool:
        """Whether :meth:`commit` or :meth:`rollback` has run."""
        return self._closed

    def _stage(self, kind: BatchKind, item: Any) -> None:
        if self._closed:
            raise OperationError(
                "this transaction was already committed or rolled back; "
                "open a new one to stage more writes"
            )
        self._staged.append((kind, item))

    async def create(self, record: Record) -> None:
        """Stage the creation of ``record`` (a collision fails the commit)."""
        self._stage("create", record)

    async def create_batch(self, records: Sequence[Record]) -> None:
        """Stage the creation of each record."""
        for record in records:
            self._stage("create", record)

    async def upsert(self, id_or_record: str | Record, record: Record | None = None) -> None:
        """Stage an upsert, called as ``AsyncDatabase.upsert`` is."""
        from .database import split_upsert, with_id

        record_id, rec = split_upsert(id_or_record, record)
        # The id goes on a copy: the caller's record is left as it is.
        self._stage("upsert", with_id(rec, record_id))

    async def upsert_batch(self, records: Sequence[Record]) -> None:
        """Stage an upsert of each record under its own id."""
        for record in records:
            self._stage("upsert", record)

    async def delete(self, id: str) -> None:
        """Stage the deletion of ``id`` (a missing id is not an error)."""
        self._stage("delete", id)

    def batches(self) -> list[Batch]:
        """The staged writes as batches: each run of one kind, in staged order."""
        out: list[Batch] = []
        for kind, item in self._staged:
            if out and out[-1][0] == kind:
                out[-1][1].append(item)
            else:
                out.append((kind, [item]))
        return out

    async def commit(self) -> dict[str, int]:
        """Apply the staged writes; ``{"affected_rows": n}``. A second call does nothing.

        On an atomic backend a failure (a duplicate create, a lost connection) rolls every
        batch back and is raised; elsewhere batches before the failing one stay applied.
        """
        if self._closed:
            return {"affected_rows": 0}
        self._closed = True
        batches = self.batches()
        self._staged = []
        if not batches:
            return {"affected_rows": 0}
        affected = await self._db._apply_batches(batches)
        return {"affected_rows": affected}

    async def rollback(self) -> None:
        """Drop the staged writes. Idempotent."""
        self._closed = True
        self._staged = []
