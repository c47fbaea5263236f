"""File backend specifics: formats, gzip, atomic rewrites, the in-memory index, bad files,
and the scans that serve search, count and stream before the index is loaded."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from dataknobs_data import (
    ConfigurationError,
    DataFormatError,
    DuplicateRecordError,
    Query,
    Record,
)
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
    # Creates only append; the first read by id loads the index, which serves from then on.
    assert db.read("0") is not None
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


def write_jsonl(path: Path, n: int, extra: list[str] | None = None, pad: int = 0) -> None:
    """n records in the file backend's jsonl layout, written without the library.

    With ``pad`` bytes of note per record the file can pass the 8 MiB under which the backend
    loads a file instead of scanning it.
    """
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            data = {"n": i % 101, "city": ("Oslo", "Lima", "Pune")[i % 3], "tags": [i % 2]}
            if pad:
                data["note"] = "x" * pad
            fh.write(json.dumps({"id": f"r{i:05d}", "data": data, "metadata": {}}) + "\n")
        for line in extra or []:
            fh.write(line + "\n")


QUERIES = [
    Query(),
    Query().filter("city", "=", "Lima"),
    Query().filter("n", ">=", 90).sort_by("n", "desc").offset(3).limit(40),
    Query().filter("tags.0", "=", 1).limit(25),
    Query().filter("city", "in", ["Oslo", "Pune"]).select("n"),
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_a_large_jsonl_is_searched_streamed_and_counted_like_the_loaded_index(
    tmp_path: Path, query: Query
) -> None:
    path = tmp_path / "big.jsonl"
    write_jsonl(path, 18_000, pad=500)
    assert path.stat().st_size > 8 << 20
    scanned = open_file_db(path)
    loaded = open_file_db(path)
    loaded.read("r00000")  # a read by id loads the whole file
    want = loaded.search(query)
    assert scanned.search(query) == want
    assert list(scanned.stream_read(query)) == want
    assert scanned.count(query) == loaded.count(query)


def test_a_malformed_line_is_reported_with_its_number_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    write_jsonl(path, 18_000, extra=['{"id": "bad", "data": [1, 2]}'], pad=500)
    db = open_file_db(path)
    seen = 0
    with pytest.raises(DataFormatError, match=r"big\.jsonl: line 18001") as info:
        for _ in db.stream_read():
            seen += 1
    assert seen == 18_000, "the good records come first"
    assert "data" in str(info.value)


def test_a_repeated_id_in_the_file_is_a_data_format_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    write_jsonl(path, 100, extra=[json.dumps({"id": "r00042", "data": {}, "metadata": {}})])
    db = open_file_db(path)
    with pytest.raises(DataFormatError, match=r"line 101: duplicate id .r00042"):
        db.count()
    with pytest.raises(DataFormatError, match="duplicate id"):
        db.read("r00001")


def test_creates_append_to_an_unread_jsonl_and_reads_see_them(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    write_jsonl(path, 1000)
    before = path.read_bytes()
    db = open_file_db(path)
    with pytest.raises(DuplicateRecordError):
        db.create_batch([Record({"n": -1}, id="new"), Record({"n": -2}, id="r00500")])
    assert path.read_bytes() == before, "a failed create writes nothing"
    db.create_batch([Record({"n": -1}, id="new"), Record({"n": -2}, id="newer")])
    assert path.read_bytes().startswith(before), "appended, not rewritten"
    assert db.count(Query().filter("n", "<", 0)) == 2
    got = db.read("newer")
    assert got is not None and got["n"] == -2
    db.close()
    again = open_file_db(path)
    assert [r.id for r in again.search(Query().filter("n", "<", 0))] == ["new", "newer"]


@pytest.mark.parametrize("name", ["db.jsonl", "db.csv", "db.json", "db.parquet"])
def test_a_full_disk_leaves_the_previous_file_intact(tmp_path: Path, name: str) -> None:
    # RLIMIT_FSIZE makes writes past a size fail with EFBIG, as a full disk fails them with
    # ENOSPC: a rewrite that cannot finish must not replace the file it was rewriting.
    import subprocess
    import sys
    import textwrap

    path = tmp_path / name
    db = database_factory.create(backend="file", path=str(path))
    db.connect()
    db.create_batch([Record({"n": i}, id=f"r{i}") for i in range(50)])
    db.close()
    before = path.read_bytes()
    child = textwrap.dedent(
        f"""
        import resource, signal, sys
        from dataknobs_data import Record
        from dataknobs_data.exceptions import DataknobsDataError
        from dataknobs_data.factory import database_factory
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 512}, {len(before) + 512}))
        db = database_factory.create(backend="file", path={str(path)!r})
        db.connect()
        try:
            db.upsert_batch([Record({{"n": i, "pad": "x" * 500}}, id=f"r{{i}}") for i in range(50)])
            db.close()
        except (DataknobsDataError, OSError) as exc:
            print(type(exc).__name__, exc)
            sys.exit(3)
        sys.exit(0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    assert "Error" in done.stdout
    assert path.read_bytes() == before, "the previous file is intact"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "no temp file left behind"
    again = database_factory.create(backend="file", path=str(path))
    again.connect()
    assert again.count() == 50
    again.close()


# ------------------------------------------------------------ 0.11.0's format handler classes


@pytest.mark.parametrize("name", ["t.json", "t.jsonl", "t.csv", "t.tsv", "t.parquet", "t.json.gz"])
def test_format_handlers_read_and_write_what_the_backend_does(tmp_path: Path, name: str) -> None:
    from dataknobs_data.backends.file import FORMAT_HANDLERS, FileFormat, SyncFileDatabase

    path = str(tmp_path / name)
    handler = FORMAT_HANDLERS.get(Path(name.removesuffix(".gz")).suffix, FileFormat)
    assert SyncFileDatabase.FORMAT_HANDLERS is FORMAT_HANDLERS
    assert handler.load(path) == {}  # a missing file has no records
    records = {
        "a": Record({"x": 1, "y": "s"}, metadata={"m": 1}).to_dict(
            include_metadata=True, flatten=False
        ),
        "b": Record({"x": 2}).to_dict(include_metadata=True, flatten=False),
    }
    handler.save(path, records)
    with SyncFileDatabase({"path": path}) as db:
        assert db.read("a") == Record({"x": 1, "y": "s"}, metadata={"m": 1}, id="a")
        db.create(Record({"x": 3}, id="c"))
    loaded = handler.load(path)
    assert list(loaded) == ["a", "b", "c"]
    assert Record.from_dict(loaded["c"]).data == {"x": 3}
    handler.save(path, {"z": records["b"]})
    assert list(handler.load(path)) == ["z"]  # save replaces the file
