"""Newcomer traps of the command line (issue 14, item 7): each mistake a new user makes is a
clear error, never a silent 0, and reading never writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data.exceptions import ConfigurationError, QueryError

from .services.postgres import PostgresService, service
from .test_cli import one_error_line, read_all, run, sample_data, url_for, write_source

SCHEMA_OK = "name: people\nfields:\n  age: {type: integer, required: true}\n"


def sqlite_tables(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [name for (name,) in rows]
    finally:
        conn.close()


def read_verbs(url: str, tmp_path: Path) -> list[list[str]]:
    """Every command that only reads ``url``."""
    schema = tmp_path / "schema.yaml"
    schema.write_text(SCHEMA_OK, encoding="utf-8")
    target = url_for(tmp_path / "copy-target.jsonl")
    return [
        ["count", url],
        ["count", url, "--where", "age>=30"],
        ["query", url, "--format", "json"],
        ["validate", url, "--schema", str(schema)],
        ["copy", url, target, "--no-progress"],
    ]


# --------------------------------------------------------------------------- reading never writes


def test_read_verbs_refuse_a_missing_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-such.db"
    for argv in read_verbs(url_for(missing, scheme="sqlite"), tmp_path):
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, out, err)
        assert str(missing) in one_error_line(err)
        assert not missing.exists(), argv
    assert not (tmp_path / "copy-target.jsonl").exists()


def test_read_verbs_name_the_missing_table_and_the_ones_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    demo = tmp_path / "dataknobs-demo.db"
    code, _, err = run(["demo", "--path", str(demo), "--n", "30"], capsys)
    assert code == 0, err
    assert sqlite_tables(demo) == ["people"]
    size = demo.stat().st_size
    for url in (url_for(demo, scheme="sqlite"), url_for(demo, "table=peple", scheme="sqlite")):
        table = "peple" if "peple" in url else "records"
        for argv in read_verbs(url, tmp_path):
            code, out, err = run(argv, capsys)
            assert code == 2, (argv, out, err)
            line = one_error_line(err)
            assert f'table "{table}" does not exist' in line, line
            assert '"people"' in line and "?table=people" in line, line
            assert out == ""
    # Nothing was created: no table, no growth of the user's file, no copy target.
    assert sqlite_tables(demo) == ["people"]
    assert demo.stat().st_size == size
    assert not (tmp_path / "copy-target.jsonl").exists()
    # The named table reads as before.
    code, out, err = run(["count", url_for(demo, "table=people", scheme="sqlite")], capsys)
    assert (code, out.strip()) == (0, "30"), err


def test_empty_sqlite_file_says_it_has_no_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    code, _, err = run(["count", url_for(path, scheme="sqlite")], capsys)
    assert code == 2
    assert "has no tables" in one_error_line(err)
    assert sqlite_tables(path) == []


def test_a_file_that_is_not_sqlite_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some text, long enough to not be an empty database\n" * 20)
    before = path.read_bytes()
    code, _, err = run(["count", url_for(path, scheme="sqlite")], capsys)
    assert code == 2
    assert "is not a SQLite database" in one_error_line(err)
    assert path.read_bytes() == before


def test_demo_prints_the_commands_that_read_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = tmp_path / "with space" / "demo.db"
    code, out, err = run(["demo", "--path", str(demo), "--n", "40"], capsys)
    assert code == 0, err
    after = out.split("Query what it wrote:", 1)[1]
    commands = [line.strip() for line in after.splitlines() if line.strip()]
    counts = [c for c in commands if " count " in c]
    assert len(counts) == 3 and any("table=people" in c for c in counts), out
    for command in commands:
        argv = shlex.split(command)[1:]
        code, got, err = run(argv, capsys)
        assert code == 0, (command, err)
        if argv[0] == "count":
            assert got.strip() == "40", command
        else:
            assert "record(s)" in got, command


@pytest.fixture
def pg() -> PostgresService:
    return service()


def test_read_verbs_never_create_a_postgres_table(
    pg: PostgresService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = f"t_{uuid.uuid4().hex}"
    url = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.database}?table={table}"
    for argv in read_verbs(url, tmp_path):
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, out)
        line = one_error_line(err)
        assert f'table "{table}" does not exist' in line, line
        assert "never create tables" in line and "auto_create_table" not in line, line
    assert pg.psql(f"SELECT to_regclass('public.{table}') IS NULL").strip() == "t"


# --------------------------------------------------------------------------- --where


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("age>>30", "unknown operator '>>'"),
        ("age => 30", "unknown operator '=>'"),
        ("age =< 30", "unknown operator '=<'"),
        ("age>=abc", "needs a number or an ISO date, got the word 'abc'"),
        ("age < 3x", "got the word '3x'"),
        ("age between 20,abc", "got the word 'abc'"),
        ("age>=true", "cannot compare with true"),
    ],
)
def test_malformed_where_is_a_query_error(
    expr: str,
    fragment: str,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dataknobs_data.cli import parse_where

    with pytest.raises(QueryError, match=fragment):
        parse_where(expr)
    for verb in ("count", "query"):
        code, out, err = run([verb, source[0], "--where", expr], capsys)
        assert code == 2 and out == "", (verb, expr, out)
        line = one_error_line(err)
        assert "Query error" in line and fragment in line and expr in line, line


@pytest.mark.parametrize(
    ("expr", "predicate"),
    [
        ("age>=30", lambda d: d["age"] >= 30),
        ("age between 25,40", lambda d: 25 <= d["age"] <= 40),
        ('name>="m"', lambda d: d["name"] >= "m"),
        ('name between "b","d"', lambda d: "b" <= d["name"] <= "d"),
        (
            "joined<2024-01-10T00:00:00+00:00",
            lambda d: d["joined"] < dt.datetime(2024, 1, 10, tzinfo=dt.UTC),
        ),
        ("city in Paris,Rome", lambda d: d["city"] in ("Paris", "Rome")),
        ('code="=x"', lambda d: d["code"] == "=x"),
        ("age<>30", lambda d: d["age"] != 30),
    ],
)
def test_well_formed_where_counts_what_it_says(
    expr: str,
    predicate: Any,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, data = source
    want = sum(1 for d in data.values() if predicate(d))
    code, out, err = run(["count", url, "--where", expr], capsys)
    assert code == 0, err
    assert int(out) == want


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    data = sample_data()
    return write_source(tmp_path / "people.jsonl", data), data


def test_documented_in_example_does_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    # 'in' matches a field whose value is one of the list: on a list-valued field such as
    # tags it matches nothing, so the docs must not show it there.
    assert "tags in" not in readme
    assert "`city in Paris,Rome`" in readme
    code, out, _ = run(["count", "--help"], capsys)
    assert code == 0
    assert "tags in" not in out and "city in Paris,Rome" in out
    assert "quote it" in out and "age>=abc" in out


# --------------------------------------------------------------------------- spec files


@pytest.mark.parametrize(
    ("spec", "key", "valid"),
    [
        ("name: p\nfeilds:\n  age: {type: integer}\n", "feilds", "fields"),
        ("fields:\n  age: {type: integer, requird: true}\n", "requird", "required"),
        ("fields:\n  - {name: age, type: integer, constrains: [unique]}\n", "constrains", "type"),
        ("fields:\n  age: {constraints: [{type: range, mn: 0}]}\n", "mn", "min"),
    ],
    ids=["feilds", "requird", "constrains", "range-mn"],
)
def test_schema_with_a_misspelt_key_is_refused(
    spec: str,
    key: str,
    valid: str,
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dataknobs_data.migration import load_spec
    from dataknobs_data.validation import Schema, schema_factory

    path = tmp_path / "schema.yaml"
    path.write_text(spec, encoding="utf-8")
    for build in (schema_factory.build, Schema.from_dict):
        with pytest.raises(ConfigurationError, match=f"'{key}'.*valid keys: .*{valid}"):
            build(load_spec(path))
    dst = tmp_path / "out.jsonl"
    for argv in (
        ["validate", source[0], "--schema", str(path)],
        ["copy", source[0], url_for(dst), "--schema", str(path), "--no-progress"],
    ):
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, out)
        line = one_error_line(err)
        assert key in line and valid in line and "valid keys" in line, line
    assert not dst.exists()


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("rules:\n  - {type: rename, old_nme: name, new_name: n}\n", "old_nme"),
        ("rules:\n  - {type: exclude, field: [name]}\n", "field"),
        ("operations:\n  - {type: remove_field, field_name: age, store: true}\n", "store"),
        ("from_version: '1'\nto_versoin: '2'\noperations: []\n", "to_versoin"),
        ("rules: []\nrulez: []\n", "rulez"),
    ],
    ids=["rename-rule", "exclude-rule", "remove-operation", "migration", "transformer"],
)
def test_transform_with_a_misspelt_key_is_refused(
    spec: str,
    key: str,
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dataknobs_data.migration import load_transform

    path = tmp_path / "tidy.yaml"
    path.write_text(spec, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=f"'{key}'.*valid keys"):
        load_transform(path)
    dst = tmp_path / "out.jsonl"
    code, _, err = run(
        ["copy", source[0], url_for(dst), "--transform", str(path), "--no-progress"], capsys
    )
    assert code == 2
    line = one_error_line(err)
    assert key in line and "valid keys" in line, line
    assert not dst.exists()


# --------------------------------------------------------------------------- copy --resume


def test_resume_without_a_checkpoint_stops_unless_restart(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    src, data = source
    dst = url_for(tmp_path / "out.db", scheme="sqlite")
    for extra in ([], ["--checkpoint", str(tmp_path / "job.json")]):
        code, out, err = run(["copy", src, dst, "--no-progress", "--resume", *extra], capsys)
        assert code == 2 and out == ""
        line = one_error_line(err)
        assert "no checkpoint" in line and "--restart" in line, line
        assert not (tmp_path / "out.db").exists()
    code, out, err = run(["copy", src, dst, "--no-progress", "--resume", "--restart"], capsys)
    assert code == 0, err
    assert f"Copied {len(data)} records" in out
    assert read_all(dst) == data


def test_interrupted_copy_says_how_to_resume_and_leaves_no_tmp_files(
    tmp_path: Path,
    source: tuple[str, dict[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataknobs_data.cli import default_checkpoint_path

    monkeypatch.chdir(tmp_path)
    src, data = source
    dst = url_for(tmp_path / "out.jsonl")
    real_fsync = os.fsync
    calls = {"n": 0}

    def ctrl_c_on_the_sixth(fd: int) -> None:
        # Ctrl-C arrives while a checkpoint is being written: its temp file exists then.
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", ctrl_c_on_the_sixth)
    argv = ["copy", src, dst, "--no-progress", "--batch-size", "5"]
    code, out, err = run(argv, capsys)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert code == 130
    line = one_error_line(err)
    checkpoint = default_checkpoint_path(src, dst)
    assert "interrupted" in line and str(checkpoint) in line, line
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers
    command = line.split("To continue: ", 1)[1]
    resume = shlex.split(command)
    assert resume[0] == "dataknobs-data" and resume[-1] == "--resume"
    code, out, err = run(resume[1:], capsys)
    assert code == 0, err
    assert "resumed after" in out
    assert read_all(dst) == data
    assert not checkpoint.exists()


def _committed(checkpoint: Path) -> int:
    try:
        return int(json.loads(checkpoint.read_text(encoding="utf-8"))["committed"][0])
    except (OSError, ValueError, KeyError):
        return 0  # not written yet


def test_ctrl_c_during_a_real_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole path a user takes: Ctrl-C in a running copy, then the printed command."""
    data = sample_data(500)
    src = write_source(tmp_path / "big.jsonl", data)
    dst = url_for(tmp_path / "out.db", scheme="sqlite")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "dataknobs_data", "copy", src, dst, "--batch-size", "5"]
    proc = subprocess.Popen(
        [*argv, "--no-progress"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        checkpoints: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            checkpoints = list(tmp_path.glob(".dkdata-copy-*.json"))
            if checkpoints and _committed(checkpoints[0]) > 0:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the copy ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    line = one_error_line(err)
    assert "To continue: " in line, line
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers
    resume = shlex.split(line.split("To continue: ", 1)[1])
    assert resume[-1] == "--resume"
    done = subprocess.run(
        [sys.executable, "-m", "dataknobs_data", *resume[1:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "resumed after" in done.stdout
    assert read_all(dst) == data
