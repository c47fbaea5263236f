"""Schema enforcement for databases: the ``schema`` / ``schema_coerce`` config keys.

The database base classes call :func:`attach_schema` from ``__init__``. When a schema is
configured it replaces the instance's write verbs (create, update, upsert and their batch
forms, and the SKIP path of stream_write) with wrappers that validate — and, with
``schema_coerce``, coerce — every record before the backend sees it. Wrapping the instance
covers every backend, ours and user subclasses alike, and costs nothing when no schema is set.

- single verbs raise ``RecordValidationError(reason, field_name)`` for the first invalid
  field, e.g. ``Field 'age': expects type INTEGER, got str``; other invalid fields are named
  after it: ``... (also invalid: email, name)``.
- batch verbs validate the whole batch first (one context, so Unique spans the batch) and
  raise one ``RecordValidationError`` listing the invalid records by index and id, e.g.
  ``2 of 5 records failed schema 'users': #1 (id 'u2'): Field 'age' expects type INTEGER, got
  str; #3: Field 'name' is required`` — nothing is written.
- stream_write: the failed batch is retried record by record by the streaming plan, so each
  invalid record is reported with its global index and the valid ones are written (in that
  retry each record is validated on its own, so Unique does not span the retried records).

``exc.details`` holds ``{"schema": name, "invalid": [{"index", "id", "errors"}]}``. Unique is
enforced within one call (one batch), not against records already stored.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..exceptions import ConfigurationError, RecordValidationError
from ..records import Record
from .result import ValidationContext
from .schema import Issue, Schema

__all__ = ["SchemaGuard", "attach_schema"]

#: How many invalid records a batch error spells out before summarising the rest.
MAX_LISTED = 10

# Set while a wrapped verb runs, so the verbs it calls on the same database (the default
# upsert calls update and create) do not validate the already-validated records again.
# A context variable is per thread and per asyncio task, so concurrent callers are unaffected.
_validating: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "dataknobs_validating", default=False
)


class SchemaGuard:
    """Validates the records a database is about to write.

    Args:
        schema: The schema records must satisfy.
        coerce: Coerce values to the schema's types before validating.
    """

    def __init__(self, schema: Schema, coerce: bool = False) -> None:
        self.schema = schema
        self.coerce = coerce

    @classmethod
    def from_config(cls, spec: Any, coerce: Any = False) -> SchemaGuard:
        """A guard from the ``schema`` config value (Schema or dict spec)."""
        if isinstance(spec, Schema):
            schema = spec
        elif isinstance(spec, Mapping):
            from .factory import schema_factory

            try:
                schema = schema_factory.create(**dict(spec))
            except (ValueError, TypeError, KeyError) as exc:
                raise ConfigurationError("schema", f"invalid schema spec: {exc}") from exc
        else:
            raise ConfigurationError(
                "schema", f"expected a Schema or a dict spec, got {type(spec).__name__}"
            )
        if not isinstance(coerce, bool):
            raise ConfigurationError("schema_coerce", f"expected a bool, got {coerce!r}")
        return cls(schema, coerce)

    def one(self, record: Record) -> Record:
        """The validated (coerced) record; RecordValidationError when it is invalid."""
        result, issues = self.schema._run(record, self.coerce, None)
        if issues:
            raise self._single_error(record, issues)
        out: Record = result.value
        return out

    def many(self, records: Sequence[Record]) -> list[Record]:
        """All records validated (one shared context); one error listing every invalid one."""
        context = ValidationContext()
        run = self.schema._run
        coerce = self.coerce
        out: list[Record] = []
        invalid: list[tuple[int, Record, list[Issue]]] = []
        for index, record in enumerate(records):
            result, issues = run(record, coerce, context)
            if issues:
                invalid.append((index, record, issues))
            else:
                out.append(result.value)
        if invalid:
            raise self._batch_error(len(records), invalid)
        return out

    def _single_error(self, record: Record, issues: list[Issue]) -> RecordValidationError:
        first = issues[0][0]
        reasons = [reason for name, _, reason in issues if name == first]
        message = "; ".join(reasons)
        others = sorted({name for name, _, _ in issues if name != first and name is not None})
        if others:
            message += f" (also invalid: {', '.join(others)})"
        exc = RecordValidationError(message, first)
        # context and details are one dict (0.11.0's errors keep them as aliases).
        exc.context.update(
            {
                "schema": self.schema.name,
                "invalid": [{"index": 0, "id": record.id, "errors": [i[1] for i in issues]}],
            }
        )
        return exc

    def _batch_error(
        self, total: int, invalid: list[tuple[int, Record, list[Issue]]]
    ) -> RecordValidationError:
        parts = []
        for index, record, issues in invalid[:MAX_LISTED]:
            rid = record.id
            where = f"#{index} (id '{rid}')" if rid is not None else f"#{index}"
            parts.append(f"{where}: {', '.join(i[1] for i in issues)}")
        if len(invalid) > MAX_LISTED:
            parts.append(f"and {len(invalid) - MAX_LISTED} more")
        message = (
            f"{len(invalid)} of {total} records failed schema '{self.schema.name}': "
            + "; ".join(parts)
        )
        exc = RecordValidationError(message)
        exc.context.update(
            {
                "schema": self.schema.name,
                "invalid": [
                    {"index": index, "id": record.id, "errors": [i[1] for i in issues]}
                    for index, record, issues in invalid
                ],
            }
        )
        return exc

    # ------------------------------------------------------------------ argument shapes

    def _args(self, verb: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """``args`` with their records validated, for the verb's signature."""
        bound = _SIGNATURES[verb](*args, **kwargs)
        if verb in ("create", "update"):
            *head, record = bound
            return (*head, self.one(record))
        if verb == "upsert":
            first, record = bound
            if record is None and isinstance(first, Record):
                return (self.one(first),)
            return (first, self.one(record) if isinstance(record, Record) else record)
        if verb == "update_batch":
            (updates,) = bound
            pairs = list(updates)
            checked = self.many([r for _, r in pairs])
            return ([(i, r) for (i, _), r in zip(pairs, checked, strict=True)],)
        (records,) = bound
        return (self.many(list(records)),)


def _two(id: Any, record: Any) -> tuple[Any, Any]:
    return (id, record)


def _upsert(id_or_record: Any, record: Any = None) -> tuple[Any, Any]:
    return (id_or_record, record)


# Keyword-only options of the wrapped verbs that carry no record: handed on untouched.
_PASSED_THROUGH = ("expected_version",)

# Each wrapped verb's parameters (keyword calls use the same names as the database methods).
_SIGNATURES: dict[str, Callable[..., tuple[Any, ...]]] = {
    "create": lambda record: (record,),
    "update": _two,
    "upsert": _upsert,
    "create_batch": lambda records: (records,),
    "upsert_batch": lambda records: (records,),
    "update_batch": lambda updates: (updates,),
    "_create_missing": lambda records: (records,),
}


def attach_schema(db: Any, config: dict[str, Any], is_async: bool) -> None:
    """Take ``schema``/``schema_coerce`` out of ``config``; guard ``db``'s writes if set.

    Sets ``db._schema_guard`` (None without a schema).
    """
    spec = config.pop("schema", None)
    coerce = config.pop("schema_coerce", False)
    if spec is None:
        if coerce:
            # Most likely a misspelt or forgotten "schema": say so instead of ignoring it.
            raise ConfigurationError("schema_coerce", "needs a 'schema' to coerce records to")
        db._schema_guard = None
        return
    guard = SchemaGuard.from_config(spec, coerce)
    db._schema_guard = guard
    for verb in _SIGNATURES:
        method = getattr(db, verb, None)
        if method is not None:
            wrap = _wrap_async if is_async else _wrap_sync
            setattr(db, verb, wrap(guard, verb, method))


def _wrap_sync(guard: SchemaGuard, verb: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _validating.get():
            return method(*args, **kwargs)
        passed = {k: kwargs.pop(k) for k in _PASSED_THROUGH if k in kwargs}
        checked = guard._args(verb, args, kwargs)
        token = _validating.set(True)
        try:
            return method(*checked, **passed)
        finally:
            _validating.reset(token)

    return guarded


def _wrap_async(guard: SchemaGuard, verb: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        if _validating.get():
            return await method(*args, **kwargs)
        passed = {k: kwargs.pop(k) for k in _PASSED_THROUGH if k in kwargs}
        checked = guard._args(verb, args, kwargs)
        token = _validating.set(True)
        try:
            return await method(*checked, **passed)
        finally:
            _validating.reset(token)

    return guarded
