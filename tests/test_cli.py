"""The command line (dataknobs_data.cli) and backend URLs (dataknobs_data.urls)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from dataknobs_data.urls import parse_url

# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "backend", "config"),
    [
        ("memory://", "memory", {}),
        ("file:///tmp/a.jsonl", "file", {"path": "/tmp/a.jsonl", "format": "jsonl"}),
        ("file:///tmp/a.json", "file", {"path": "/tmp/a.json", "format": "json"}),
        ("file:///tmp/a.CSV", "file", {"path": "/tmp/a.CSV", "format": "csv"}),
        ("file:///tmp/a.tsv", "file", {"path": "/tmp/a.tsv", "format": "tsv"}),
        ("file:///tmp/a.parquet", "file", {"path": "/tmp/a.parquet", "format": "parquet"}),
        (
            "file:///tmp/a.jsonl.gz",
            "file",
            {"path": "/tmp/a.jsonl.gz", "format": "jsonl", "compression": "gzip"},
        ),
        (
            "file:///tmp/data?format=csv&compression=gzip",
            "file",
            {"path": "/tmp/data", "format": "csv", "compression": "gzip"},
        ),
        ("file:///tmp/a.txt?format=jsonl", "file", {"path": "/tmp/a.txt", "format": "jsonl"}),
        ("file://rel/dir/a.csv", "file", {"path": "rel/dir/a.csv", "format": "csv"}),
        (
            "file:///tmp/with%20space%23.csv",
            "file",
            {"path": "/tmp/with space#.csv", "format": "csv"},
        ),
        ("sqlite:///tmp/a.db", "sqlite", {"path": "/tmp/a.db"}),
        (
            "sqlite:///tmp/a.db?table=people",
            "sqlite",
            {"path": "/tmp/a.db", "table": "people"},
        ),
        (
            "sqlite:///tmp/a.db?timeout=5&auto_create_table=false&journal_mode=WAL",
            "sqlite",
            {
                "path": "/tmp/a.db",
                "timeout": 5,
                "auto_create_table": False,
                "journal_mode": "WAL",
            },
        ),
        ("sqlite:///tmp/a.db?timeout=2.5", "sqlite", {"path": "/tmp/a.db", "timeout": 2.5}),
        ("sqlite://:memory:", "sqlite", {"path": ":memory:"}),
        ("sqlite:///:memory:", "sqlite", {"path": ":memory:"}),
        ("sqlite://local.db", "sqlite", {"path": "local.db"}),
        (
            "postgresql://user:pw@host:5433/db?table=t&schema=s",
            "postgres",
            {
                "host": "host",
                "port": 5433,
                "database": "db",
                "user": "user",
                "password": "pw",
                "table": "t",
                "schema_name": "s",
            },
        ),
        (
            "postgres://u:p%40ss%3Aw@127.0.0.1/mydb?max_pool_size=10&command_timeout=30",
            "postgres",
            {
                "host": "127.0.0.1",
                "database": "mydb",
                "user": "u",
                "password": "p@ss:w",
                "max_pool_size": 10,
                "command_timeout": 30,
            },
        ),
        ("pg://localhost", "postgres", {"host": "localhost"}),
        (
            "s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1",
            "s3",
            {
                "bucket": "bucket",
                "prefix": "prefix/",
                "endpoint_url": "http://127.0.0.1:8333",
                "region": "us-east-1",
            },
        ),
        ("s3://bucket", "s3", {"bucket": "bucket"}),
        ("s3://b/a/b/?max_retries=3", "s3", {"bucket": "b", "prefix": "a/b/", "max_retries": 3}),
        (
            "elasticsearch://host:9201/index",
            "elasticsearch",
            {"hosts": ["http://host:9201"], "index": "index"},
        ),
        (
            "opensearch://localhost/people",
            "elasticsearch",
            {"hosts": ["http://localhost:9200"], "index": "people"},
        ),
        ("es://h:1", "elasticsearch", {"hosts": ["http://h:1"]}),
        (
            "elasticsearch+https://u:p@h/i?verify_certs=false",
            "elasticsearch",
            {
                "hosts": ["https://h:9200"],
                "index": "i",
                "basic_auth": ("u", "p"),
                "verify_certs": False,
            },
        ),
        ("MEMORY://", "memory", {}),
    ],
)
def test_parse_url(url: str, backend: str, config: dict[str, Any]) -> None:
    assert parse_url(url) == (backend, config)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "empty"),
        ("/tmp/a.jsonl", "missing scheme"),
        ("people.db", "missing scheme"),
        ("ftp://host/x", "unknown URL scheme 'ftp'"),
        ("mysql://u@h/db", "unknown URL scheme 'mysql'"),
        ("file://", "missing path"),
        ("sqlite://", "missing path"),
        ("file:///tmp/a", "cannot tell the file format"),
        ("file:///tmp/a.xlsx", "cannot tell the file format"),
        ("file:///tmp/a.csv?format=xml", "unknown file format"),
        ("file:///tmp/a.csv?compression=zstd", "unknown compression"),
        ("sqlite:///a.db?tabel=x", "unknown parameter 'tabel'"),
        ("sqlite:///a.db?timeout=soon", "invalid value for 'timeout'"),
        ("sqlite:///a.db?auto_create_table=maybe", "invalid value for 'auto_create_table'"),
        ("postgresql://host:notaport/db", "invalid port"),
        ("postgresql:///db", "missing host"),
        ("postgresql://h/db?max_pool_size=x", "invalid value for 'max_pool_size'"),
        ("s3:///prefix", "missing bucket"),
        ("elasticsearch:///index", "missing host"),
        ("memory://somewhere", "takes no host or path"),
    ],
)
def test_parse_url_errors(url: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        parse_url(url)
    assert "\n" not in str(info.value)


def test_parse_url_errors_hide_passwords() -> None:
    with pytest.raises(ValueError) as info:
        parse_url("mysql://admin:s3cret@h/db")
    assert "s3cret" not in str(info.value)
    with pytest.raises(ValueError) as info:
        parse_url("postgresql://admin:s3cret@h:bad/db")
    assert "s3cret" not in str(info.value)


# --------------------------------------------------------------------------- --where


@pytest.mark.parametrize(
    ("expr", "field", "op", "value"),
    [
        ("age>=30", "age", ">=", 30),
        ("age > 30", "age", ">", 30),
        ("age<30", "age", "<", 30),
        ("age<=30.5", "age", "<=", 30.5),
        ("name=alice", "name", "=", "alice"),
        ("name==alice", "name", "=", "alice"),
        ('code="30"', "code", "=", "30"),
        ("active=true", "active", "=", True),
        ("city!=Paris", "city", "!=", "Paris"),
        ("url=http://x/?a=b", "url", "=", "http://x/?a=b"),
        ("name~a%", "name", "like", "a%"),
        ("name!~a%", "name", "not_like", "a%"),
        ("tags in a,b", "tags", "in", ["a", "b"]),
        ("age in 1, 2 ,3", "age", "in", [1, 2, 3]),
        ('tags in ["a,b", "c"]', "tags", "in", ["a,b", "c"]),
        ("tags not_in a", "tags", "not_in", ["a"]),
        ("tags not in a,b", "tags", "not_in", ["a", "b"]),
        ("email exists", "email", "exists", None),
        ("email not_exists", "email", "not_exists", None),
        ("age between 20,30", "age", "between", [20, 30]),
        ("age not_between 20,30", "age", "not_between", [20, 30]),
        ("name starts_with al", "name", "starts_with", "al"),
        ("name starts_with 12", "name", "starts_with", "12"),
        ("name regex ^a", "name", "regex", "^a"),
        ("name like a_c%", "name", "like", "a_c%"),
        ("name LIKE A%", "name", "like", "A%"),
        ("meta.level>=2", "meta.level", ">=", 2),
        ("name=in progress", "name", "=", "in progress"),
        ("x=NaN", "x", "=", "NaN"),
    ],
)
def test_parse_where(expr: str, field: str, op: str, value: Any) -> None:
    from dataknobs_data.cli import parse_where
    from dataknobs_data.query import Operator

    got_field, got_op, got_value = parse_where(expr)
    assert (got_field, got_op, got_value) == (field, Operator(op), value)
    assert type(got_value) is type(value)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "empty"),
        ("age", "cannot parse"),
        ("=3", "missing field"),
        ("age>=", "missing value"),
        ("age between 1", "two values"),
        ("age between 1,2,3", "two values"),
        ("name regex (", "invalid regex"),
        ("email exists now", "takes no value"),
        ("x=null", "null never compares"),
    ],
)
def test_parse_where_errors(expr: str, fragment: str) -> None:
    from dataknobs_data.cli import parse_where

    with pytest.raises(ValueError, match=fragment):
        parse_where(expr)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("age", ("age", "asc")),
        ("+age", ("age", "asc")),
        ("-age", ("age", "desc")),
        ("age:desc", ("age", "desc")),
        ("a:b", ("a:b", "asc")),
    ],
)
def test_parse_sort(spec: str, expected: tuple[str, str]) -> None:
    from dataknobs_data.cli import parse_sort

    assert parse_sort(spec) == expected


# --------------------------------------------------------------------------- helpers

NAMES = ["alice", "bob", "carol", "dave", "erin", "albert", "zoe"]
CITIES = ["Paris", "London", "Berlin"]


def sample_data(n: int = 40) -> dict[str, dict[str, Any]]:
    """Records of mixed value types, keyed by id; deterministic."""
    out: dict[str, dict[str, Any]] = {}
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i in range(n):
        data: dict[str, Any] = {
            "name": NAMES[i % len(NAMES)],
            "age": 20 + (i * 7) % 45,
            "city": CITIES[i % len(CITIES)],
            "score": round(i * 1.25, 2),
            "active": i % 3 != 0,
            "tags": ["t" + str(i % 4), "all"],
            "meta": {"level": i % 5, "ok": True},
            "joined": base + dt.timedelta(days=i, hours=i % 24),
            # Strings that look like other JSON values must come back as strings.
            "code": ["007", "true", "", "x,y", 'say "hi"'][i % 5],
        }
        if i % 4 == 0:
            data["email"] = f"{data['name']}{i}@example.com"
        if i % 10 == 0:
            data["note"] = None
        out[f"r{i:03d}"] = data
    return out


def url_for(path: Path, query: str = "", scheme: str = "file") -> str:
    return f"{scheme}://" + quote(str(path)) + (f"?{query}" if query else "")


def write_source(path: Path, data: dict[str, dict[str, Any]]) -> str:
    from dataknobs_data.factory import DatabaseFactory
    from dataknobs_data.records import Record

    url = url_for(path)
    backend, config = parse_url(url)
    db = DatabaseFactory().create(backend=backend, **config)
    db.connect()
    try:
        db.create_batch([Record(dict(values), id=rid) for rid, values in data.items()])
    finally:
        db.close()
    return url


def read_all(url: str) -> dict[str, dict[str, Any]]:
    from dataknobs_data.factory import DatabaseFactory

    backend, config = parse_url(url)
    db = DatabaseFactory().create(backend=backend, **config)
    db.connect()
    try:
        return {str(r.id): dict(r.data) for r in db.stream_read()}
    finally:
        db.close()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    data = sample_data()
    yield write_source(tmp_path / "people.jsonl", data), data


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from dataknobs_data.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dataknobs-data: error: "), err
    return lines[0]


# --------------------------------------------------------------------------- copy


def test_copy_jsonl_to_sqlite_to_csv(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    src_url, data = source
    sqlite_url = url_for(tmp_path / "people.db", "table=people", scheme="sqlite")
    csv_url = url_for(tmp_path / "out.csv")

    code, out, err = run(["copy", src_url, sqlite_url, "--no-progress"], capsys)
    assert code == 0, err
    assert out.startswith(f"Copied {len(data)} records in ")
    assert "records/s)" in out
    assert read_all(sqlite_url) == data

    code, out, err = run(
        ["copy", sqlite_url, csv_url, "--batch-size", "7", "--no-progress"], capsys
    )
    assert code == 0, err
    assert f"Copied {len(data)} records" in out
    copied = read_all(csv_url)
    assert list(copied) == list(data), "ids, in storage order"
    assert copied == data


def test_copy_with_where_and_progress(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    src_url, data = source
    dst = url_for(tmp_path / "paris.json")
    code, out, err = run(["copy", src_url, dst, "--where", "city=Paris"], capsys)
    assert code == 0, err
    expected = {k: v for k, v in data.items() if v["city"] == "Paris"}
    assert f"Copied {len(expected)} records" in out
    assert read_all(dst) == expected


def test_copy_conflicts(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    src_url, data = source
    dst = url_for(tmp_path / "t.db", scheme="sqlite")
    assert run(["copy", src_url, dst, "--no-progress"], capsys)[0] == 0

    code, out, err = run(["copy", src_url, dst, "--no-progress"], capsys)
    assert code == 1
    assert "Copied 0 records" in out
    line = one_error_line(err)
    assert f"{len(data)} record(s) could not be written" in line

    code, out, err = run(["copy", src_url, dst, "--no-progress", "--on-conflict", "skip"], capsys)
    assert code == 0, err
    assert f"{len(data)} skipped" in out
    code, out, err = run(["copy", src_url, dst, "--no-progress", "--on-conflict", "upsert"], capsys)
    assert code == 0, err
    assert f"Copied {len(data)} records" in out
    assert read_all(dst) == data


# --------------------------------------------------------------------------- count / query


def test_count(
    source: tuple[str, dict[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    src_url, data = source
    assert run(["count", src_url], capsys)[:2] == (0, f"{len(data)}\n")

    expected = sum(1 for v in data.values() if v["age"] >= 30 and v["city"] != "Paris")
    code, out, _ = run(["count", src_url, "--where", "age>=30", "--where", "city!=Paris"], capsys)
    assert (code, out) == (0, f"{expected}\n")

    cases = {
        "name~a%": sum(1 for v in data.values() if v["name"].startswith("a")),
        "email exists": sum(1 for v in data.values() if "email" in v),
        "email not_exists": sum(1 for v in data.values() if "email" not in v),
        "age between 30,40": sum(1 for v in data.values() if 30 <= v["age"] <= 40),
        "name in bob,zoe": sum(1 for v in data.values() if v["name"] in ("bob", "zoe")),
        "name starts_with al": sum(1 for v in data.values() if v["name"].startswith("al")),
        "name regex e$": sum(1 for v in data.values() if v["name"].endswith("e")),
        "active=false": sum(1 for v in data.values() if not v["active"]),
        "meta.level>=3": sum(1 for v in data.values() if v["meta"]["level"] >= 3),
        "joined>=2024-01-20T00:00:00Z": sum(
            1 for v in data.values() if v["joined"] >= dt.datetime(2024, 1, 20, tzinfo=dt.UTC)
        ),
    }
    for expr, n in cases.items():
        code, out, err = run(["count", src_url, "--where", expr], capsys)
        assert (code, out) == (0, f"{n}\n"), (expr, err)


def test_query_json(
    source: tuple[str, dict[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    src_url, data = source
    code, out, err = run(
        [
            *("query", src_url, "--where", "age>=25", "--sort", "-age", "--sort", "name"),
            *("--limit", "6", "--offset", "1", "--format", "json"),
        ],
        capsys,
    )
    assert code == 0, err
    rows = json.loads(out)
    matching = [(rid, v) for rid, v in data.items() if v["age"] >= 25]
    matching.sort(key=lambda item: item[1]["name"])
    matching.sort(key=lambda item: item[1]["age"], reverse=True)
    expected = matching[1:7]
    assert [r["id"] for r in rows] == [rid for rid, _ in expected]
    for row, (_, values) in zip(rows, expected, strict=True):
        assert row["age"] == values["age"]
        assert row["tags"] == values["tags"]
        assert row["meta"] == values["meta"]
        assert row["joined"] == values["joined"].isoformat()
        assert set(row) == {"id", *values}


def test_query_json_fields_and_empty(
    source: tuple[str, dict[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    src_url, data = source
    code, out, _ = run(
        ["query", src_url, "--fields", "name,age", "--sort", "id", "--limit", "3", "--format=json"],
        capsys,
    )
    assert code == 0
    assert json.loads(out) == [
        {"id": rid, "name": data[rid]["name"], "age": data[rid]["age"]} for rid in sorted(data)[:3]
    ]
    code, out, _ = run(["query", src_url, "--where", "age>1000", "--format", "json"], capsys)
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = run(["query", src_url, "--limit", "0", "--format", "json"], capsys)
    assert (code, json.loads(out)) == (0, [])


def test_query_csv(
    source: tuple[str, dict[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    src_url, data = source
    code, out, err = run(
        ["query", src_url, "--where", "city=Berlin", "--sort", "score", "--format", "csv"],
        capsys,
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = sorted(
        ((rid, v) for rid, v in data.items() if v["city"] == "Berlin"),
        key=lambda item: item[1]["score"],
    )
    assert [r["id"] for r in rows] == [rid for rid, _ in expected]
    header = out.splitlines()[0].split(",")
    assert header[:4] == ["id", "name", "age", "city"]
    for row, (_, values) in zip(rows, expected, strict=True):
        assert row["name"] == values["name"]
        assert int(row["age"]) == values["age"]
        assert row["active"] == ("true" if values["active"] else "false")
        assert json.loads(row["tags"]) == values["tags"]
        assert row["joined"] == values["joined"].isoformat()
        assert row["code"] == values["code"]
        assert row["email"] == values.get("email", "")


def test_query_table(
    source: tuple[str, dict[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    src_url, _ = source
    code, out, err = run(
        ["query", src_url, "--where", "name=zoe", "--fields", "name,city", "--limit", "2"], capsys
    )
    assert code == 0, err
    assert "zoe" in out
    assert "2 record(s)" in out


# --------------------------------------------------------------------------- demo


def test_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path = tmp_path / "sub" / "demo.db"
    for _ in range(2):  # the second run starts from a clean slate again
        code, out, err = run(["demo", "--path", str(db_path), "--n", "250"], capsys)
        assert code == 0, err
    assert "250 stored" in out
    assert "Done in" in out
    for suffix in (".db", ".jsonl", ".parquet"):
        assert db_path.with_suffix(suffix).exists()
    sqlite_url = url_for(db_path, "table=people", scheme="sqlite")
    stored = read_all(sqlite_url)
    assert len(stored) == 250
    assert read_all(url_for(db_path.with_suffix(".jsonl"))) == stored
    assert read_all(url_for(db_path.with_suffix(".parquet"))) == stored


def test_demo_rejects_output_collision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["demo", "--path", str(tmp_path / "x.jsonl"), "--n", "5"], capsys)
    assert code == 2
    one_error_line(err)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["count", "people.db"], "missing scheme"),
        (["count", "ftp://host/x"], "unknown URL scheme"),
        (["count", "sqlite:///x.db?tabel=t"], "unknown parameter"),
        (["count", "memory://", "--where", "age"], "cannot parse"),
        (["count", "memory://", "--where", "name regex ("], "invalid regex"),
        (["query", "memory://", "--limit", "ten"], "--limit"),
        (["query", "memory://", "--limit", "-1"], "--limit"),
        (["query", "memory://", "--offset", "-3"], "--offset"),
        (["query", "memory://", "--format", "xml"], "--format"),
        (["query", "memory://", "--fields", "a,,b"], "empty field name"),
        (["copy", "memory://", "memory://", "--batch-size", "0"], "--batch-size"),
        (["demo", "--n", "zero"], "--n"),
        (["nosuchcommand"], "invalid choice"),
        ([], "required"),
        (["count"], "required"),
    ],
)
def test_user_errors_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert fragment in one_error_line(err)


def test_missing_source_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    code, _, err = run(["count", url_for(missing)], capsys)
    assert code == 2
    assert "no such file" in one_error_line(err)
    assert not missing.exists()
    code, _, err = run(["copy", url_for(missing), "memory://", "--no-progress"], capsys)
    assert code == 2
    one_error_line(err)


def test_unregistered_backend_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from dataknobs_data.exceptions import BackendNotFoundError
    from dataknobs_data.factory import DatabaseFactory

    with pytest.raises(BackendNotFoundError):
        DatabaseFactory().create(backend="nosuchdb")
    code, _, err = run(["count", "nosuchdb://host/x"], capsys)
    assert code == 2
    one_error_line(err)


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "copy" in out and "query" in out and "demo" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out.startswith("dataknobs-data ")


def test_sort_value_with_leading_dash(
    source: tuple[str, dict[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    src_url, data = source
    # "--sort -age" (two tokens) must mean descending age, not an unknown option.
    code, out, err = run(
        ["query", src_url, "--sort", "-score", "--limit", "1", "--format", "json"], capsys
    )
    assert code == 0, err
    best = max(data, key=lambda rid: data[rid]["score"])
    assert [r["id"] for r in json.loads(out)] == [best]


# --------------------------------------------------------------------------- python -m


def test_python_dash_m(tmp_path: Path, source: tuple[str, dict[str, dict[str, Any]]]) -> None:
    src_url, data = source
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "dataknobs_data", "count", src_url, "--where", "active=true"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{sum(1 for v in data.values() if v['active'])}\n"

    bad = subprocess.run(
        [sys.executable, "-m", "dataknobs_data", "count", "nope://x"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("dataknobs-data: error: unknown URL scheme")
    assert bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- copy: migration


TRANSFORMER_YAML = """\
rules:
  - {type: map, source: name, transform: uppercase}
  - {type: rename, old_name: age, new_name: years}
  - {type: exclude, fields: [meta]}
  - {type: add, field_name: copied, value: true}
"""


def _expected_transformed(data: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for rid, values in data.items():
        row: dict[str, Any] = {}
        for name, value in values.items():
            if name == "meta":
                continue
            row["years" if name == "age" else name] = value.upper() if name == "name" else value
        row["copied"] = True
        out[rid] = row
    return out


@pytest.mark.parametrize("partitions", [1, 3])
def test_copy_with_transform_and_partitions(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    partitions: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    src_url, data = source
    spec = tmp_path / "t.yaml"
    spec.write_text(TRANSFORMER_YAML)
    dst = url_for(tmp_path / "out.db", scheme="sqlite")
    argv = ["copy", src_url, dst, "--no-progress", "--transform", str(spec)]
    code, out, err = run([*argv, "--partitions", str(partitions), "--batch-size", "7"], capsys)
    assert code == 0, err
    assert f"Copied {len(data)} records" in out
    assert read_all(dst) == _expected_transformed(data)
    # The default checkpoint is gone once the copy completed.
    assert not list(tmp_path.glob(".dkdata-copy-*.json"))


def test_copy_with_migration_spec(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    src_url, data = source
    spec = tmp_path / "m.json"
    spec.write_text(
        json.dumps(
            {
                "from_version": "1",
                "to_version": "2",
                "operations": [
                    {
                        "type": "transform_field",
                        "field_name": "score",
                        "transform": {"multiply": 2},
                    },
                    {"type": "remove_field", "field_name": "tags"},
                ],
            }
        )
    )
    dst = url_for(tmp_path / "out.jsonl")
    code, _, err = run(["copy", src_url, dst, "--no-progress", "--transform", str(spec)], capsys)
    assert code == 0, err
    got = read_all(dst)
    for rid, values in data.items():
        want = {k: v for k, v in values.items() if k != "tags"}
        want["score"] = values["score"] * 2
        assert got[rid] == want


def test_copy_resume_after_interruption(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataknobs_data.cli import default_checkpoint_path, open_database
    from dataknobs_data.migration import Migrator
    from dataknobs_data.streaming import StreamConfig, StreamResult

    monkeypatch.chdir(tmp_path)
    data = sample_data(300)
    src_url = write_source(tmp_path / "people.jsonl", data)
    dst = url_for(tmp_path / "out.db", scheme="sqlite")
    checkpoint = default_checkpoint_path(src_url, dst)

    class Died(BaseException):
        pass

    source_db = open_database(src_url)
    target_db = open_database(dst)
    original = target_db.stream_write
    calls = {"n": 0}

    def dying_write(records: Any, config: StreamConfig | None = None) -> StreamResult:
        calls["n"] += 1
        result = original(records, config)
        if calls["n"] == 3:
            raise Died()  # after the write, before the checkpoint: the worst moment
        return result

    target_db.stream_write = dying_write  # type: ignore[method-assign]
    with pytest.raises(Died):
        Migrator().migrate(source_db, target_db, batch_size=50, checkpoint=checkpoint)
    source_db.close()
    target_db.close()
    assert json.loads(checkpoint.read_text())["committed"] == [100]

    code, out, err = run(["copy", src_url, dst, "--no-progress", "--resume"], capsys)
    assert code == 0, err
    assert "Copied 200 records" in out and "resumed after 100" in out
    assert read_all(dst) == data
    assert not checkpoint.exists()


def test_copy_explicit_checkpoint_is_kept(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    src_url, data = source
    dst = url_for(tmp_path / "out.db", scheme="sqlite")
    cp = tmp_path / "job.json"
    argv = ["copy", src_url, dst, "--no-progress", "--checkpoint", str(cp)]
    assert run(argv, capsys)[0] == 0
    assert json.loads(cp.read_text())["done"] is True
    code, out, _ = run([*argv, "--resume"], capsys)
    assert code == 0 and "already completed" in out
    assert read_all(dst) == data


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--transform", "/nonexistent/t.yaml"], "no such file"),
        (["--transform", "BAD"], "unknown rule type"),
        (["--partitions", "0"], "positive integer"),
    ],
)
def test_copy_migration_usage_errors(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    fragment: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {type: explode}\n")
    extra = [str(bad) if e == "BAD" else e for e in extra]
    src_url, _ = source
    code, _, err = run(["copy", src_url, url_for(tmp_path / "o.jsonl"), *extra], capsys)
    assert code == 2
    assert fragment in one_error_line(err)


def test_copy_resume_needs_a_checkpoint_for_memory(
    source: tuple[str, dict[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    src_url, _ = source
    code, _, err = run(["copy", src_url, "memory://", "--resume"], capsys)
    assert code == 2 and "--checkpoint" in one_error_line(err)


# --------------------------------------------------------------------------- schema

SCHEMA_YAML = """\
name: people
fields:
  name: {type: string, required: true}
  age:
    type: integer
    constraints: [{type: range, min: 30}]
"""


def test_copy_with_schema_drops_invalid_records(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    src_url, data = source
    schema = tmp_path / "people.yaml"
    schema.write_text(SCHEMA_YAML)
    dst = url_for(tmp_path / "adults.jsonl")
    code, out, err = run(["copy", src_url, dst, "--no-progress", "--schema", str(schema)], capsys)
    valid = {rid: v for rid, v in data.items() if v["age"] >= 30}
    assert 0 < len(valid) < len(data)
    assert code == 1
    assert f"Copied {len(valid)} records" in out
    assert f"{len(data) - len(valid)} record(s) could not be written" in one_error_line(err)
    assert "less than minimum 30" in err
    assert read_all(dst) == valid


def test_validate_command(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    src_url, data = source
    schema = tmp_path / "people.json"
    schema.write_text(
        json.dumps({"name": "people", "fields": [{"name": "name", "type": "string"}]})
    )
    code, out, err = run(["validate", src_url, "--schema", str(schema)], capsys)
    assert code == 0, err
    assert f"Checked {len(data)} records against schema 'people': {len(data)} valid" in out

    strict = tmp_path / "strict.yaml"
    strict.write_text(SCHEMA_YAML)
    code, out, _ = run(["validate", src_url, "--schema", str(strict), "--max-errors", "2"], capsys)
    invalid = sum(1 for v in data.values() if v["age"] < 30)
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("r0") and "minimum 30" in lines[0]
    assert f"... and {invalid - 2} more invalid record(s)" == lines[2]
    assert lines[3].endswith(f"{len(data) - invalid} valid, {invalid} invalid")

    code, out, _ = run(["validate", src_url, "--schema", str(strict), "--where", "age>=30"], capsys)
    assert code == 0 and "0 invalid" in out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        ("fields:\n  age: {type: nonsense}\n", "--schema"),
        ("- a\n", "mapping"),
    ],
)
def test_validate_schema_errors(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    fragment: str,
) -> None:
    path = tmp_path / "s.yaml"
    if content is not None:
        path.write_text(content)
    code, _, err = run(["validate", source[0], "--schema", str(path)], capsys)
    assert code == 2
    assert fragment in one_error_line(err)
