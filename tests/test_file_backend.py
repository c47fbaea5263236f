"""File backend specifics: formats, gzip, atomic rewrites, the in-memory index, bad files."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from dataknobs_data import ConfigurationError, DataFormatError, Query, Record
from dataknobs_data.backends.file import SyncFileDatabase
from dataknobs_data.factory import database_factory

MALFORMED = {
    "db.json": b'[{"id": "a", "data": {"x": 1}, "metadata": {}}, {"id": ',
    "db.jsonl": b'{"id": "a", "data": {"x": 1}, "metadata": {}}\n{"id": "b", "data": [\n',
    "db.csv": b"id,x,_metadata\na,1,{}\nb,2,{},surplus cell\n",
    "db.parquet": b"PAR1 this is not parquet",
    "db.jsonl.gz": b"not gzip at all",
}


def open_file_db(path: Path, **extra: object) -> SyncFileDatabase:
    db = SyncFileDatabase({"path": str(path), **extra})
    db.connect()
    return db


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_file_is_a_data_format_error_and_left_alone(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(MALFORMED[name])
    with pytest.raises(DataFormatError) as info:
        open_file_db(path).count()
    assert name in str(info.value)
    assert path.read_bytes() == MALFORMED[name]


def test_format_from_extension_and_explicit(tmp_path: Path) -> None:
    db = open_file_db(tmp_path / "data.txt", format="jsonl")
    db.create_batch([Record({"x": 1}, id="a"), Record({"x": 2}, id="b")])
    db.close()
    lines = (tmp_path / "data.txt").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]


@pytest.mark.parametrize(("key", "value"), [("format", "xml"), ("compression", "zip")])
def test_bad_format_or_compression_is_a_configuration_error(
    tmp_path: Path, key: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=key):
        open_file_db(tmp_path / "a.json", **{key: value})


def test_gzip_files_are_gzip(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl.gz"
    db = open_file_db(path)
    db.create(Record({"name": "Ann"}, id="a"))
    db.close()
    with gzip.open(path, "rt") as fh:
        assert json.loads(fh.readline())["data"] == {"name": "Ann"}


def test_jsonl_create_appends_and_other_writes_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    db = open_file_db(path)
    db.create(Record({"n": 1}, id="a"))
    first = path.read_text()
    db.create(Record({"n": 2}, id="b"))
    assert path.read_text().startswith(first)
    db.delete("a")
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"], "no temp files left"


def test_reads_come_from_the_index_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    db = open_file_db(path)
    db.create_batch([Record({"n": i}, id=str(i)) for i in range(100)])
    path.write_text("garbage that would not parse")
    got = db.read("42")
    assert got is not None and got["n"] == 42
    assert db.count(Query().filter("n", ">=", 90)) == 10


def test_csv_is_plain_for_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    db = open_file_db(path)
    db.create(Record({"name": "Ann", "age": 30, "note": "42"}, id="a"))
    db.create(Record({"name": "Bo", "city": "Oslo"}, id="b"))
    db.close()
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["id"] == "a" and rows[0]["name"] == "Ann" and rows[0]["age"] == "30"
    assert rows[0]["note"] == '"42"', "a str that reads as a number is quoted to round-trip"
    assert rows[1]["city"] == "Oslo" and rows[1]["age"] == ""
    again = open_file_db(path)
    a = again.read("a")
    b = again.read("b")
    assert a is not None and a.data == {"name": "Ann", "age": 30, "note": "42"}
    assert b is not None and b.data == {"name": "Bo", "city": "Oslo"}


def test_temporary_file_is_removed_on_close() -> None:
    db = database_factory.create(backend="file")
    db.connect()
    db.create(Record({"x": 1}))
    path = Path(db._temp_path)  # type: ignore[attr-defined]
    assert path.exists()
    db.close()
    db.close()
    assert not path.exists()


@pytest.mark.parametrize("name", ["db.parquet", "db.csv", "db.json"])
def test_rewrites_keep_a_readable_file_mode(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    db = open_file_db(path)
    db.create(Record({"x": 1}, id="a"))
    path.chmod(0o644)
    db.update("a", Record({"x": 2}))
    db.close()
    assert path.stat().st_mode & 0o777 == 0o644
