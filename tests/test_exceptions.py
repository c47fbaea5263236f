"""Exception messages, attributes and class relationships (API.md §6)."""

from __future__ import annotations

import pickle

import pytest

from dataknobs_data.exceptions import (
    BackendNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseOperationError,
    DataFormatError,
    DataknobsDataError,
    DuplicateRecordError,
    FieldTypeError,
    MigrationError,
    QueryError,
    RecordNotFoundError,
    RecordValidationError,
    SerializationError,
    TransactionError,
)

CASES: list[tuple[DataknobsDataError, str]] = [
    (DataknobsDataError("boom"), "boom"),
    (RecordNotFoundError("r1"), "Record with ID 'r1' not found"),
    (DuplicateRecordError("r1"), "Record with ID 'r1' already exists"),
    (RecordValidationError("too short", field_name="name"), "Field 'name': too short"),
    (RecordValidationError("bad record"), "bad record"),
    (
        FieldTypeError("age", "integer", "string"),
        "Field 'age' type mismatch: expected integer, got string",
    ),
    (DatabaseError("disk full"), "disk full"),
    (
        DatabaseConnectionError("postgres", "refused"),
        "Failed to connect to postgres backend: refused",
    ),
    (DatabaseOperationError("create", "locked"), "Database operation 'create' failed: locked"),
    (QueryError("bad operator"), "Query error: bad operator"),
    (
        SerializationError("json", "set is not supported"),
        "Serialization error (json): set is not supported",
    ),
    (DataFormatError("csv", "line 3 is malformed"), "Data format error (csv): line 3 is malformed"),
    (
        BackendNotFoundError("nosql", ["memory", "file"]),
        "Backend 'nosql' not found. Available backends: memory, file",
    ),
    (BackendNotFoundError("nosql"), "Backend 'nosql' not found"),
    (
        ConfigurationError("path", "must be a string"),
        "Configuration error for 'path': must be a string",
    ),
    (ConcurrencyError("version conflict"), "Concurrency error: version conflict"),
    (TransactionError("rolled back"), "Transaction error: rolled back"),
    (MigrationError("v1", "v2", "field missing"), "Migration from v1 to v2 failed: field missing"),
]


@pytest.mark.parametrize(("exc", "message"), CASES, ids=lambda v: type(v).__name__)
def test_message(exc: DataknobsDataError, message: str) -> None:
    assert str(exc) == message
    assert isinstance(exc, DataknobsDataError)
    with pytest.raises(type(exc), match="^" + __import__("re").escape(message) + "$"):
        raise exc


@pytest.mark.parametrize(("exc", "message"), CASES, ids=lambda v: type(v).__name__)
def test_pickle_round_trip_keeps_message_and_attributes(
    exc: DataknobsDataError, message: str
) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == message
    assert vars(back) == vars(exc)


def test_constructor_arguments_are_attributes() -> None:
    assert RecordNotFoundError("r1").record_id == "r1"
    assert DuplicateRecordError("r2").record_id == "r2"
    e = RecordValidationError("too short", field_name="name")
    assert (e.message, e.field_name) == ("too short", "name")
    f = FieldTypeError("age", "integer", "string")
    assert (f.field_name, f.expected_type, f.actual_type) == ("age", "integer", "string")
    c = DatabaseConnectionError("sqlite", "no file")
    assert (c.backend, c.message) == ("sqlite", "no file")
    o = DatabaseOperationError("read", "timeout")
    assert (o.operation, o.message) == ("read", "timeout")
    q = QueryError("oops", query={"a": 1})
    assert (q.message, q.query) == ("oops", {"a": 1})
    s = SerializationError("csv", "bad cell")
    assert (s.format, s.message) == ("csv", "bad cell")
    d = DataFormatError("json", "truncated")
    assert (d.format, d.message) == ("json", "truncated")
    b = BackendNotFoundError("x", ("a", "b"))
    assert (b.backend, b.available) == ("x", ["a", "b"])
    cfg = ConfigurationError("timeout", "must be positive")
    assert (cfg.parameter, cfg.message) == ("timeout", "must be positive")
    m = MigrationError("a", "b", "c")
    assert (m.source, m.target, m.message) == ("a", "b", "c")
    assert ConcurrencyError("x").message == "x"
    assert DataknobsDataError("plain").message == "plain"


@pytest.mark.parametrize(
    "exc",
    [
        DuplicateRecordError("a"),
        ConfigurationError("p", "m"),
        BackendNotFoundError("b"),
        QueryError("unknown operator"),
    ],
)
def test_value_error_compatibility(exc: DataknobsDataError) -> None:
    # Code written against the original package catches ValueError here.
    with pytest.raises(ValueError):
        raise exc


@pytest.mark.parametrize(
    "exc",
    [RecordNotFoundError("a"), DatabaseError("x"), SerializationError("f", "m")],
)
def test_other_errors_are_not_value_errors(exc: DataknobsDataError) -> None:
    assert not isinstance(exc, ValueError)


def test_hierarchy() -> None:
    assert issubclass(DatabaseConnectionError, DatabaseError)
    assert issubclass(DatabaseOperationError, DatabaseError)
    assert issubclass(DataFormatError, SerializationError)
    for cls in (DatabaseError, QueryError, SerializationError, MigrationError, ConcurrencyError):
        assert issubclass(cls, DataknobsDataError)


def test_categories_of_0_11_0() -> None:
    # The categories code written for 0.11.0 catches (its dataknobs_common hierarchy).
    from dataknobs_data import exceptions as exc

    assert exc.DataknobsError is DataknobsDataError
    assert issubclass(DuplicateRecordError, ConcurrencyError)
    for cls in (RecordNotFoundError, BackendNotFoundError):
        assert issubclass(cls, exc.NotFoundError)
    for cls in (DatabaseOperationError, QueryError, TransactionError, MigrationError):
        assert issubclass(cls, exc.OperationError)
    for cls in (DatabaseError, DatabaseConnectionError):
        assert issubclass(cls, exc.ResourceError)
    for cls in (RecordValidationError, FieldTypeError, DataFormatError):
        assert issubclass(cls, exc.ValidationError)


def test_context_holds_the_facts_and_details_is_the_same_dict() -> None:
    err = DuplicateRecordError("a")
    assert err.context == {"id": "a"}
    assert err.details is err.context
    assert RecordNotFoundError("z").context == {"id": "z"}
    assert BackendNotFoundError("x", ["memory"]).context == {
        "backend": "x",
        "available": ["memory"],
    }
    assert ConfigurationError("path", "missing").context == {"parameter": "path"}
    assert DataknobsDataError("m", {"k": 1}).context == {"k": 1}
    assert DataknobsDataError("m", details={"k": 2}).details == {"k": 2}
    assert DataknobsDataError("m").context == {}
    stale = ConcurrencyError("record was modified concurrently", context={"id": "a"})
    assert str(stale) == "Concurrency error: record was modified concurrently"
    assert stale.context == {"id": "a"}
    back = pickle.loads(pickle.dumps(stale))
    assert (str(back), back.context) == (str(stale), stale.context)


def test_capability_not_supported() -> None:
    from dataknobs_data.exceptions import CapabilityNotSupportedError, OperationError

    class Host:
        pass

    err = CapabilityNotSupportedError("transactions", Host())
    assert isinstance(err, OperationError)
    assert str(err) == "Host does not support 'transactions'"
    assert err.context == {"capability": "transactions", "host": "Host"}
