"""dataknobs_data.pandas: records <-> DataFrames on every backend, and BatchOperations."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase
from dataknobs_data.exceptions import (
    ConfigurationError,
    DataFormatError,
    DuplicateRecordError,
    SerializationError,
)
from dataknobs_data.fields import FieldType
from dataknobs_data.pandas import (
    BatchConfig,
    BatchOperations,
    ChunkedProcessor,
    ConversionOptions,
    DataFrameConverter,
    MetadataHandler,
    MetadataStrategy,
    TypeMapper,
)
from dataknobs_data.pandas.metadata import MetadataConfig

PARIS = ZoneInfo("Europe/Paris")
LONG = "long text " * 120  # over 1000 characters: a TEXT field


def typed_records() -> list[Record]:
    """Ten records with a field of every FieldType, each field None in some of them."""
    out = []
    for i in range(10):
        null = i % 3 == 1  # rows 1, 4, 7 hold None everywhere
        out.append(
            Record(
                {
                    "string": None if null else f"name {i}",
                    "text": None if null else LONG + str(i),
                    "integer": None if null else i * 1_000_000_007,
                    "float": None if null else i / 4,
                    "boolean": None if null else i % 2 == 0,
                    "utc": None if null else datetime(2024, 1, i + 1, 12, 30, 15, 123456, UTC),
                    "naive": None if null else datetime(1999, 12, 31, 23, 59, i),
                    "paris": None if null else datetime(2024, i + 1, 2, 8, 0, tzinfo=PARIS),
                    "json_dict": None if null else {"k": i, "nested": {"tags": ["a", i]}},
                    "json_list": None if null else [i, "x", {"y": None}],
                    "binary": None if null else bytes([i, 0, 255]),
                },
                id=f"r{i}",
            )
        )
    return out


def typed(value: Any) -> Any:
    """A value with its exact type kept, so True and 1 (or aware and naive) differ."""
    if isinstance(value, dict):
        return ("dict", {k: typed(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, datetime):
        return ("datetime", value.utcoffset() is not None, value)
    return (type(value).__name__, value)


def by_id(records: list[Record]) -> dict[str | None, Any]:
    return {r.id: typed(r.data) for r in records}


EXPECTED_DTYPES = {
    "string": "string",
    "text": "string",
    "integer": "Int64",
    "float": "Float64",
    "boolean": "boolean",
    "utc": "datetime64[us, UTC]",
    "naive": "datetime64[us]",
    "json_dict": "object",
    "json_list": "object",
    "binary": "object",
}


def check_frame(df: pd.DataFrame) -> None:
    assert df.index.name == "record_id"
    assert sorted(df.index) == [f"r{i}" for i in range(10)]
    for column, dtype in EXPECTED_DTYPES.items():
        assert str(df[column].dtype) == dtype, column
    # Paris has two offsets over the year: the instants share a column in UTC.
    assert str(df["paris"].dtype) in ("datetime64[us, Europe/Paris]", "datetime64[us, UTC]")
    assert int(df["integer"].isna().sum()) == 3
    assert df.loc["r9", "integer"] == 9 * 1_000_000_007


# ---------------------------------------------------------------------- every backend


def test_round_trip_every_field_type_with_nulls(db: SyncDatabase) -> None:
    converter = DataFrameConverter()
    ops = BatchOperations(db)
    frame = converter.records_to_dataframe(typed_records())
    check_frame(frame)
    stats = ops.bulk_insert_dataframe(frame, BatchConfig(chunk_size=4))
    assert stats == {"total_rows": 10, "inserted": 10, "failed": 0, "errors": []}
    assert by_id(db.all()) == by_id(typed_records())

    read = ops.query_as_dataframe(Query())
    check_frame(read)
    assert by_id(converter.dataframe_to_records(read)) == by_id(typed_records())


async def test_round_trip_every_field_type_with_nulls_async(adb: AsyncDatabase) -> None:
    # Called from inside the test's running event loop, where 0.11.0's asyncio.run fails.
    converter = DataFrameConverter()
    ops = BatchOperations(adb)
    assert ops.is_async
    frame = converter.records_to_dataframe(typed_records())
    assert ops.bulk_insert_dataframe(frame, BatchConfig(chunk_size=3))["inserted"] == 10
    assert by_id(await adb.all()) == by_id(typed_records())
    read = ops.query_as_dataframe(Query().sort_by("integer", "desc"))
    check_frame(read)
    assert list(read.index[:7]) == ["r9", "r8", "r6", "r5", "r3", "r2", "r0"]
    assert by_id(converter.dataframe_to_records(read)) == by_id(typed_records())


# ---------------------------------------------------------------------- converter


def test_null_keeps_integer_column_integer_and_nan_stays_apart_from_null() -> None:
    converter = DataFrameConverter()
    records = [
        Record({"n": 1, "x": float("nan")}, id="a"),
        Record({"n": None, "x": None}, id="b"),
        Record({"n": 2**62, "x": 2}, id="c"),
    ]
    df = converter.records_to_dataframe(records)
    assert str(df["n"].dtype) == "Int64" and str(df["x"].dtype) == "Float64"
    assert df["n"].isna().tolist() == [False, True, False]
    back = converter.dataframe_to_records(df)
    assert back[0]["n"] == 1 and type(back[0]["n"]) is int
    assert back[0]["x"] != back[0]["x"]  # NaN came back as NaN, not as None
    assert back[1]["n"] is None and back[1]["x"] is None
    assert back[2]["n"] == 2**62 and back[2]["x"] == 2.0


def test_columns_that_share_no_dtype_stay_objects() -> None:
    converter = DataFrameConverter()
    records = [
        Record({"big": 2**63, "mixed": 1, "when": datetime(2024, 1, 1)}),
        Record({"big": 1, "mixed": "one", "when": datetime(2024, 1, 1, tzinfo=UTC)}),
    ]
    df = converter.records_to_dataframe(records)
    assert {str(t) for t in df.dtypes} == {"object"}
    back = converter.dataframe_to_records(df)
    assert by_id(back) == by_id([Record(r.data) for r in records])


def test_several_time_zones_share_one_utc_column() -> None:
    east = timezone(timedelta(hours=5))
    records = [
        Record({"t": datetime(2024, 5, 1, 12, tzinfo=east)}),
        Record({"t": datetime(2024, 5, 1, 12, tzinfo=PARIS)}),
    ]
    df = DataFrameConverter().records_to_dataframe(records)
    assert str(df["t"].dtype) == "datetime64[us, UTC]"
    back = DataFrameConverter().dataframe_to_records(df)
    assert [r["t"] for r in back] == [r["t"] for r in records]  # the same instants
    assert all(r["t"].utcoffset() == timedelta(0) for r in back)


def test_index_ids_metadata_and_index_column_round_trip() -> None:
    converter = DataFrameConverter()
    records = [
        Record({"name": "a", "age": 3}, metadata={"src": "x"}, id="a1"),
        Record({"name": "b", "age": None}, metadata={}, id="b2"),
    ]
    df = converter.records_to_dataframe(records, ConversionOptions(include_metadata=True))
    assert list(df.index) == ["a1", "b2"] and "_metadata" in df.columns
    back = converter.dataframe_to_records(df, ConversionOptions(include_metadata=True))
    assert [(r.id, r.metadata, r.data) for r in back] == [
        ("a1", {"src": "x"}, {"name": "a", "age": 3}),
        ("b2", {}, {"name": "b", "age": None}),
    ]
    by_name = converter.records_to_dataframe(records, ConversionOptions(index_column="name"))
    assert by_name.index.name == "name" and list(by_name.columns) == ["age"]
    again = converter.dataframe_to_records(by_name, ConversionOptions(index_column="name"))
    assert [r.data for r in again] == [{"name": "a", "age": 3}, {"name": "b", "age": None}]


def test_generated_and_field_ids_stay_out_of_the_index() -> None:
    converter = DataFrameConverter()
    generated = [Record({"v": 1}), Record({"v": 2})]
    for record in generated:
        record.generate_id()
    assert isinstance(converter.records_to_dataframe(generated).index, pd.RangeIndex)
    carried = [Record({"id": "x1", "v": 1}), Record({"id": "x2", "v": 2})]
    df = converter.records_to_dataframe(carried)
    assert list(df.columns) == ["id", "v"]
    assert [r.id for r in converter.dataframe_to_records(df)] == ["x1", "x2"]


def test_numpy_frames_become_plain_python_values() -> None:
    df = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype=np.int32),
            "f": [1.5, np.nan],
            "b": [True, False],
            "o": pd.Series([np.int64(7), None], dtype=object, index=["k1", "k2"]),
            "arr": [np.array([1, 2]), {"k": np.float64(0.5)}],
            "t": pd.to_datetime(["2024-01-01", None]),
            "cat": pd.Categorical(["x", None]),
        },
        index=["k1", "k2"],
    )
    records = DataFrameConverter().dataframe_to_records(df, ConversionOptions(use_index_as_id=True))
    assert [r.id for r in records] == ["k1", "k2"]
    assert by_id(records) == by_id(
        [
            Record(
                {
                    "i": 1,
                    "f": 1.5,
                    "b": True,
                    "o": 7,
                    "arr": [1, 2],
                    "t": datetime(2024, 1, 1),
                    "cat": "x",
                },
                id="k1",
            ),
            Record(
                {
                    "i": 2,
                    "f": None,
                    "b": False,
                    "o": None,
                    "arr": {"k": 0.5},
                    "t": None,
                    "cat": None,
                },
                id="k2",
            ),
        ]
    )


def test_missing_cells_preserved_dropped_or_filled() -> None:
    df = pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": ["x", None]})
    converter = DataFrameConverter()
    assert [r.data for r in converter.dataframe_to_records(df)] == [
        {"a": 1, "b": "x"},
        {"a": None, "b": None},
    ]
    drop = ConversionOptions(null_handling="drop")
    assert [r.data for r in converter.dataframe_to_records(df, drop)] == [{"a": 1, "b": "x"}, {}]
    fill = ConversionOptions(handle_missing="fill", fill_value=0)
    assert [r.data for r in converter.dataframe_to_records(df, fill)] == [
        {"a": 1, "b": "x"},
        {"a": 0, "b": 0},
    ]
    with pytest.raises(ConfigurationError, match="null_handling"):
        ConversionOptions(null_handling="guess")


def test_metadata_columns_flatten_and_duplicate_columns() -> None:
    converter = DataFrameConverter()
    df = pd.DataFrame({"v": [1], "_source": ["csv"], "_extra": [{"k": 1}]})
    [record] = converter.dataframe_to_records(
        df, ConversionOptions(metadata_columns=["_source", "_extra"])
    )
    assert record.data == {"v": 1} and record.metadata == {"source": "csv", "k": 1}
    flat = converter.records_to_dataframe(
        [Record({"a": {"x": 1, "y": 2}, "b": 3})], ConversionOptions(flatten_nested=True)
    )
    assert list(flat.columns) == ["a.x", "a.y", "b"]
    twice = pd.DataFrame([[1, 2]], columns=["v", "v"])
    with pytest.raises(DataFormatError, match="'v' appears more than once"):
        converter.dataframe_to_records(twice)


def test_series_and_validation_report() -> None:
    converter = DataFrameConverter()
    record = Record({"n": 1, "t": datetime(2024, 1, 1, tzinfo=UTC), "s": None}, id="r1")
    series = converter.record_to_series(record)
    assert series.name == "r1" and series["s"] is pd.NA
    back = converter.series_to_record(series)
    assert back.id == "r1" and back.data == {"n": 1, "t": record["t"], "s": None}
    assert back.get_field("t") is not None and back.get_field("t").type is FieldType.DATETIME  # type: ignore[union-attr]
    records = typed_records()
    report = converter.validate_conversion(records, converter.records_to_dataframe(records))
    assert report["record_count_match"] and report["type_preservation"] == {}
    assert report["field_preservation"]["missing_fields"] == []
    bare = pd.DataFrame({"integer": [1.0] * 10})
    report = converter.validate_conversion(records, bare)
    assert report["type_preservation"]["integer"] == {"expected": "Int64", "actual": "float64"}
    assert "string" in report["field_preservation"]["missing_fields"]


# ---------------------------------------------------------------------- type mapper


def test_type_mapper() -> None:
    mapper = TypeMapper()
    assert [str(mapper.field_type_to_pandas(t)) for t in FieldType] == [
        "string",
        "Int64",
        "Float64",
        "boolean",
        "datetime64[ns]",
        "object",
        "object",
        "string",
    ]
    assert mapper.pandas_to_field_type("Int32") is FieldType.INTEGER
    assert mapper.pandas_to_field_type(np.dtype("bool")) is FieldType.BOOLEAN
    assert mapper.pandas_to_field_type("datetime64[us, UTC]") is FieldType.DATETIME
    assert mapper.convert_value_to_pandas(None, FieldType.INTEGER) is pd.NA
    assert mapper.convert_value_to_pandas(0, FieldType.DATETIME) == pd.Timestamp(0, unit="s")
    assert mapper.convert_value_from_pandas(np.int64(3), FieldType.INTEGER) == 3
    assert mapper.convert_value_from_pandas(pd.NaT, FieldType.DATETIME) is None
    assert mapper.convert_value_from_pandas('{"a": 1}', FieldType.JSON) == {"a": 1}
    assert mapper.infer_field_type_from_value(np.bool_(True)) is FieldType.BOOLEAN
    assert mapper.infer_field_type_from_value("x" * 1001) is FieldType.TEXT
    assert mapper.infer_field_type(pd.Series([1.0, 2.0, None])) == "integer"
    assert mapper.infer_field_type(pd.Series([1.5])) == "number"
    assert mapper.get_pandas_dtype("Number") == "float64"
    assert mapper.convert_value("3.0", "integer") == 3
    assert mapper.convert_value("Yes", "boolean") is True
    assert mapper.get_optimal_dtype(pd.Series([1, 300])) == "int16"
    assert mapper.get_optimal_dtype(pd.Series([1.5, None])) == "float32"
    assert str(mapper.cast_series(pd.Series([1, None]), FieldType.INTEGER).dtype) == "Int64"
    assert mapper.cast_series(pd.Series(['{"a": 1}', None]), FieldType.JSON).tolist() == [
        {"a": 1},
        None,
    ]
    local = mapper.normalize_timezone(pd.Series(pd.to_datetime(["2024-06-01 12:00"])), "UTC")
    assert local.iloc[0] == pd.Timestamp("2024-06-01 12:00", tz="UTC")
    cast = mapper.cast_dataframe_dtypes(pd.DataFrame({"a": ["1"], "b": ["x"]}), {"a": "int64"})
    assert cast["a"].tolist() == [1] and cast["b"].tolist() == ["x"]


# ---------------------------------------------------------------------- metadata handler


def test_metadata_handler_strategies() -> None:
    records = [Record({"a": 1}, metadata={"m": 1}, id="x"), Record({"a": 2}, id="y")]
    records[0].get_field("a").metadata = {"unit": "cm"}  # type: ignore[union-attr]
    df = DataFrameConverter().records_to_dataframe(records)
    handler = MetadataHandler()
    summary = handler.extract_metadata_from_records(records)
    assert summary["field_types"] == {"a": "integer"} and summary["has_record_ids"]
    handler.apply_metadata_to_dataframe(df, summary, records)
    assert df.attrs["record_ids"] == ["x", "y"]
    back = DataFrameConverter().dataframe_to_records(df.reset_index(drop=True))
    handler.create_records_with_metadata(df, back)
    assert [(r.id, r.metadata) for r in back] == [("x", {"m": 1}), ("y", {})]
    assert back[0].get_field("a").metadata == {"unit": "cm"}  # type: ignore[union-attr]

    columns = MetadataHandler(MetadataConfig(strategy=MetadataStrategy.COLUMNS))
    with_cols = columns.apply_metadata_to_dataframe(df.copy(), summary, records)
    assert str(with_cols["_meta_m"].dtype) == "Int64"
    assert columns.extract_metadata_from_dataframe(with_cols) == {"m": [1, None]}
    assert list(columns.clean_dataframe_columns(with_cols).columns) == ["a"]

    multi = MetadataHandler(MetadataConfig(strategy=MetadataStrategy.MULTI_INDEX))
    tiered = multi.apply_metadata_to_dataframe(df.copy(), summary)
    assert list(tiered.columns) == [("a", "integer")]
    assert multi.extract_metadata_from_dataframe(tiered)["field_types"] == ["integer"]
    assert list(multi.clean_dataframe_columns(tiered).columns) == ["a"]


# ---------------------------------------------------------------------- batch operations


def people_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["Ann", "Bob", "Cid", "Dee", "Eve"],
            "age": pd.array([31, 45, None, 28, 52], dtype="Int64"),
            "city": ["Rome", "Oslo", "Rome", "Oslo", "Rome"],
        },
        index=pd.Index(["p1", "p2", "p3", "p4", "p5"], name="record_id"),
    )


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Any:
    db = SyncDatabase.from_backend("sqlite", {"path": str(tmp_path / "p.db")})
    yield db
    db.close()


def test_usage_as_written_for_0_11_0(sqlite_db: SyncDatabase, tmp_path: Path) -> None:
    ops = BatchOperations(sqlite_db)
    progress: list[tuple[int, int]] = []
    stats = ops.bulk_insert_dataframe(
        people_frame(),
        BatchConfig(chunk_size=2, progress_callback=lambda d, t: progress.append((d, t))),
    )
    assert stats["inserted"] == 5 and progress == [(2, 5), (4, 5), (5, 5)]
    assert sqlite_db.read("p3") is not None and sqlite_db.read("p3")["age"] is None  # type: ignore[index]

    older = ops.query_as_dataframe(Query().filter("age", ">", 30).sort_by("age"))
    assert list(older.index) == ["p1", "p2", "p5"] and str(older["age"].dtype) == "Int64"

    older["age"] = older["age"] + 1
    stats = ops.update_from_dataframe(older, id_column=None)
    assert stats == {"total_rows": 3, "updated": 3, "failed": 0, "not_found": 0, "errors": []}
    assert sqlite_db.read("p5")["age"] == 53  # type: ignore[index]

    means = ops.aggregate(Query(), {"age": "mean"}, group_by=["city"])
    assert means.loc["Oslo", "age"] == pytest.approx((46 + 28) / 2)
    totals = ops.aggregate(Query(), {"age": "sum", "name": "count"})
    assert totals.to_dict("records") == [{"age_sum": 32 + 46 + 28 + 53, "name_count": 5}]

    saved = ops.transform_and_save(
        Query().filter("city", "=", "Rome"), lambda df: df.assign(city=df["city"].str.upper())
    )
    assert saved["updated"] == 3
    assert sorted(r["city"] for r in sqlite_db.all()) == ["Oslo", "Oslo", "ROME", "ROME", "ROME"]

    csv_path, parquet_path = tmp_path / "p.csv", tmp_path / "p.parquet"
    ops.export_to_csv(Query().sort_by("name"), str(csv_path), index=False)
    assert pd.read_csv(csv_path)["name"].tolist() == ["Ann", "Bob", "Cid", "Dee", "Eve"]
    ops.export_to_parquet(Query().sort_by("name"), str(parquet_path))
    assert pd.read_parquet(parquet_path)["age"].tolist()[:2] == [32, 46]


def test_transform_and_save_keeps_generated_ids(sqlite_db: SyncDatabase) -> None:
    ids = sqlite_db.create_batch([Record({"v": 1}), Record({"v": 2})])
    result = BatchOperations(sqlite_db).transform_and_save(
        Query(), lambda df: df.assign(v=df["v"] * 10)
    )
    assert result["updated"] == 2
    stored = sorted((r.id, r["v"]) for r in sqlite_db.all())
    assert stored == sorted(zip(ids, [10, 20], strict=True))


def test_writes_ride_the_batch_verbs(sqlite_db: SyncDatabase, monkeypatch: Any) -> None:
    calls: list[tuple[str, int]] = []

    def spy(name: str) -> Any:
        real = getattr(sqlite_db, name)

        def call(items: Any, *rest: Any) -> Any:
            calls.append((name, len(items)))
            return real(items, *rest)

        return call

    def per_row(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a per-row database call")

    for name in ("create_batch", "update_batch"):
        monkeypatch.setattr(sqlite_db, name, spy(name))
    for name in ("create", "update", "read", "search"):
        monkeypatch.setattr(sqlite_db, name, per_row)
    ops = BatchOperations(sqlite_db)
    frame = pd.DataFrame({"id": [f"k{i}" for i in range(2500)], "v": range(2500)})
    assert ops.bulk_insert_dataframe(frame)["inserted"] == 2500
    assert calls == [("create_batch", 1000), ("create_batch", 1000), ("create_batch", 500)]
    back = ops.query_as_dataframe(Query().filter("v", ">=", 1000))
    assert len(back) == 1500 and back["v"].tolist() == list(range(1000, 2500))
    calls.clear()
    assert ops.update_from_dataframe(back, "id", BatchConfig(chunk_size=1500))["updated"] == 1500
    assert calls == [("update_batch", 1500)]


def test_failed_chunk_stores_nothing_or_is_counted(
    sqlite_db: SyncDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    ops = BatchOperations(sqlite_db)
    sqlite_db.create(Record({"v": 0}, id="taken"))
    frame = pd.DataFrame({"id": ["a", "b", "taken", "c"], "v": [1, 2, 3, 4]})
    with pytest.raises(DuplicateRecordError) as raised:
        ops.bulk_insert_dataframe(frame, BatchConfig(chunk_size=2))
    assert "the 2 rows before it are stored" in "\n".join(raised.value.__notes__)
    assert sorted(r.id for r in sqlite_db.all()) == ["a", "b", "taken"]  # chunk 2 wrote none

    sqlite_db.clear()
    sqlite_db.create(Record({"v": 0}, id="taken"))
    stats = ops.bulk_insert_dataframe(frame, BatchConfig(error_handling="skip"))
    assert (stats["inserted"], stats["failed"], stats["errors"]) == (3, 1, [])
    sqlite_db.clear()
    sqlite_db.create(Record({"v": 0}, id="taken"))
    with caplog.at_level(logging.ERROR, logger="dataknobs_data.pandas.batch_ops"):
        stats = ops.bulk_insert_dataframe(frame, BatchConfig(error_handling="log"))
    assert stats["failed"] == 1 and "taken" in stats["errors"][0]
    assert "row 2" in caplog.text


def test_bad_values_and_ids_are_refused_before_writing(sqlite_db: SyncDatabase) -> None:
    ops = BatchOperations(sqlite_db)
    with pytest.raises(SerializationError):
        ops.bulk_insert_dataframe(pd.DataFrame({"d": [pd.Timedelta(1, "s")]}))
    assert sqlite_db.count() == 0
    sqlite_db.create(Record({"v": 1}, id="a"))
    frame = pd.DataFrame({"id": ["a", None], "v": [5, 6]})
    with pytest.raises(DataFormatError, match="row 1 has no id"):
        ops.update_from_dataframe(frame, "id")
    assert sqlite_db.read("a")["v"] == 1  # type: ignore[index]
    with pytest.raises(ConfigurationError, match="ID column 'key' not found"):
        ops.update_from_dataframe(frame, "key")
    missing = ops.update_from_dataframe(pd.DataFrame({"id": ["a", "zz"], "v": [5, 6]}), "id")
    assert (missing["updated"], missing["not_found"]) == (1, 1)


def test_parquet_export_of_unstorable_column_raises(
    sqlite_db: SyncDatabase, tmp_path: Path
) -> None:
    sqlite_db.create_batch([Record({"m": {"a": 1}}), Record({"m": 5})])
    target = tmp_path / "out.parquet"
    with pytest.raises(SerializationError, match="parquet"):
        BatchOperations(sqlite_db).export_to_parquet(Query(), str(target))
    assert not target.exists()


def test_config_validation_and_chunked_processor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size must be greater than 0"):
        BatchConfig(chunk_size=0)
    with pytest.raises(ConfigurationError, match="error_handling"):
        BatchConfig(error_handling="ignore")
    processor = ChunkedProcessor(chunk_size=2)
    df = pd.DataFrame({"v": range(5)})
    assert [len(c) for c in processor.iter_chunks(df)] == [2, 2, 1]
    assert processor.process_dataframe(df, lambda c: int(c["v"].sum()), combine=sum) == 10
    path = tmp_path / "v.csv"
    df.to_csv(path, index=False)
    assert processor.read_csv_chunked(str(path), len) == [2, 2, 1]


def test_async_database_outside_a_running_loop(tmp_path: Path) -> None:
    async def open_db() -> AsyncDatabase:
        return await AsyncDatabase.from_backend("sqlite", {"path": str(tmp_path / "a.db")})

    adb = asyncio.run(open_db())
    ops = BatchOperations(adb)
    assert ops.bulk_insert_dataframe(people_frame())["inserted"] == 5
    assert ops.query_as_dataframe(Query().filter("city", "=", "Oslo"))["name"].tolist() == [
        "Bob",
        "Dee",
    ]
    asyncio.run(adb.close())
