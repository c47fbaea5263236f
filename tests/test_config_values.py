"""Configuration values that arrive as text (issue 14, item 6's Python parts): boolean words
mean what they say on every backend, and postgresql:// URLs carry libpq's TLS parameters."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data.backends.config import SyncSQLiteDatabaseConfig
from dataknobs_data.backends.postgres import SyncPostgresDatabase
from dataknobs_data.backends.sqlite import SyncSQLiteDatabase
from dataknobs_data.config_values import coerce_bool, positive_int, positive_seconds
from dataknobs_data.exceptions import ConfigurationError, DatabaseOperationError
from dataknobs_data.records import Record
from dataknobs_data.urls import parse_url

from .services.postgres import PostgresService, service
from .test_cli import one_error_line, run

FALSE_TEXT = ["false", "False", " FALSE ", "0", "no", "off"]
TRUE_TEXT = ["true", "TRUE", "1", "yes", "on"]


@pytest.mark.parametrize("text", FALSE_TEXT)
def test_false_words(text: str) -> None:
    assert coerce_bool("flag", text) is False


@pytest.mark.parametrize("text", TRUE_TEXT)
def test_true_words(text: str) -> None:
    assert coerce_bool("flag", text) is True


@pytest.mark.parametrize("value", ["maybe", "", 2, 0.5, None, []])
def test_other_values_are_refused_by_name(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="'flag'"):
        coerce_bool("flag", value)


def tables(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        conn.close()


def test_counts_and_durations_from_text_or_numbers() -> None:
    assert positive_int("bulk_docs", None, 7) == 7
    assert positive_int("bulk_docs", "12", 7) == 12
    assert positive_seconds("request_timeout", None, 2.5) == 2.5
    assert positive_seconds("request_timeout", "0.25", 2.5) == 0.25


@pytest.mark.parametrize("value", [0, -3, "many", True, 1.0j])
def test_counts_that_are_not_positive_are_refused_by_name(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"bulk_docs.*positive integer"):
        positive_int("bulk_docs", value, 7)


@pytest.mark.parametrize("value", [0, -1.5, float("nan"), "soon", False])
def test_durations_that_are_not_positive_are_refused_by_name(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"request_timeout.*positive number of seconds"):
        positive_seconds("request_timeout", value, 2.5)


@pytest.mark.parametrize("text", ["false", "0", "no"])
def test_sqlite_auto_create_table_false_as_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "a.db"
    sqlite3.connect(path).close()
    for db in (
        SyncSQLiteDatabase({"path": str(path), "auto_create_table": text}),
        SyncSQLiteDatabase(SyncSQLiteDatabaseConfig(path=str(path), auto_create_table=text)),  # type: ignore[arg-type]
    ):
        with pytest.raises(DatabaseOperationError, match="does not exist"):
            db.connect()
        db.close()
    assert tables(path) == []
    db = SyncSQLiteDatabase({"path": str(path), "auto_create_table": "yes"})
    db.connect()
    db.close()
    assert tables(path) == ["records"]


def test_sqlite_refuses_a_word_that_is_not_boolean(tmp_path: Path) -> None:
    db = SyncSQLiteDatabase({"path": str(tmp_path / "a.db"), "auto_create_table": "nope"})
    with pytest.raises(ConfigurationError, match="auto_create_table"):
        db.connect()


@pytest.fixture
def pg() -> PostgresService:
    return service()


def pg_config(pg: PostgresService, **extra: Any) -> dict[str, Any]:
    return {**pg.config(), "table": f"t_{uuid.uuid4().hex}", **extra}


@pytest.mark.parametrize("text", ["false", "0", "no"])
def test_postgres_boolean_keys_as_text(pg: PostgresService, text: str) -> None:
    cfg = pg_config(pg, auto_create_table=text)
    db = SyncPostgresDatabase(cfg)
    with pytest.raises(DatabaseOperationError, match="does not exist"):
        db.connect()
    db.close()
    assert pg.psql(f"SELECT to_regclass('public.{cfg['table']}') IS NULL").strip() == "t"
    db = SyncPostgresDatabase(pg_config(pg, prepared_statements=text))
    db.connect()
    assert "prepared_statements=false" in db.pool_stats()["key"]
    db.create(Record({"n": 1}, id="a"))
    assert db.read("a") is not None
    db.close()


def test_postgres_ssl_false_as_text_disables_tls(pg: PostgresService) -> None:
    db = SyncPostgresDatabase(pg_config(pg, ssl="false"))
    db.connect()
    assert "sslmode=disable" in db.pool_stats()["key"]
    db.close()


# --------------------------------------------------------------------------- URLs


def test_postgres_url_passes_libpq_parameters() -> None:
    backend, config = parse_url(
        "postgresql://u:p%40w@db.example:5433/app?table=people&sslmode=verify-full"
        "&sslrootcert=/etc/ca.pem&application_name=etl&max_pool_size=3"
    )
    assert backend == "postgres"
    assert config["table"] == "people" and config["max_pool_size"] == 3
    assert config["connection_string"] == (
        "postgresql://u:p%40w@db.example:5433/app?sslmode=verify-full"
        "&sslrootcert=%2Fetc%2Fca.pem&application_name=etl"
    )
    assert "ssl" not in config


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("ssl=true", "'ssl': 'true' is not an sslmode"),
        ("sslmode=yes", "'sslmode': 'yes' is not an sslmode"),
        ("sslcert=/c.pem", "unknown parameter 'sslcert'"),
        ("auto_create_table=perhaps", "invalid value for 'auto_create_table'"),
    ],
)
def test_postgres_url_parameter_errors(query: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_url(f"postgresql://u@h/db?{query}")


def test_postgres_url_ssl_is_an_sslmode() -> None:
    _, config = parse_url("postgresql://u@h/db?ssl=require&auto_create_table=no")
    assert config["connection_string"] == "postgresql://u@h/db?sslmode=require"
    assert config["auto_create_table"] is False


def test_cli_url_asks_for_verify_full(
    pg: PostgresService, capsys: pytest.CaptureFixture[str]
) -> None:
    if pg.ca_file is None:
        if pg.owned and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the test cluster has no TLS: openssl is missing (make services)")
        pytest.skip("the server's TLS certificate is not known (external DKDATA_PG_DSN)")
    table = f"t_{uuid.uuid4().hex}"
    db = SyncPostgresDatabase(pg_config(pg, table=table))
    db.connect()
    db.create_batch([Record({"n": i}, id=f"r{i}") for i in range(7)])
    db.close()
    tls = f"sslmode=verify-full&sslrootcert={pg.ca_file}"
    good = f"postgresql://{pg.user}@localhost:{pg.port}/{pg.database}?table={table}&{tls}"
    code, out, err = run(["count", good], capsys)
    assert (code, out.strip()) == (0, "7"), err
    # The certificate names localhost, not 127.0.0.1: verify-full must refuse it.
    bad = good.replace("@localhost:", "@127.0.0.1:")
    code, out, err = run(["count", bad], capsys)
    assert code == 1 and out == ""
    assert "certificate" in one_error_line(err).lower()
