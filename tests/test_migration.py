"""Migration building blocks: operations, Migration, Transformer, progress and factories."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import Field, FieldType, Record
from dataknobs_data.migration import (
    AddField,
    AddRule,
    CompositeOperation,
    ExcludeRule,
    MapRule,
    Migration,
    MigrationFactory,
    MigrationProgress,
    Migrator,
    Operation,
    RemoveField,
    RenameField,
    Transformer,
    TransformerFactory,
    TransformField,
    build_transform,
    load_transform,
    migration_factory,
    migrator_factory,
    transform_function,
    transformer_factory,
)


def _plain() -> Record:
    return Record(
        {"name": " Ann ", "age": 30, "tags": ["a", "b"], "tmp": {"k": 1}},
        metadata={"src": "x"},
        id="r1",
    )


def _typed() -> Record:
    rec = Record(id="r2", metadata={"m": 1})
    rec.set_field("name", "Bob", FieldType.TEXT, {"note": "kept"})
    rec.set_field("age", 41)
    rec.set_field("tmp", 1.5)
    return rec


def _snapshot(record: Record) -> tuple[Any, ...]:
    return (
        record.id,
        copy.deepcopy(record.metadata),
        [(f.name, f.value, f.type, dict(f.metadata)) for f in record.fields.values()],
    )


OPERATIONS: list[Operation] = [
    AddField("new", 7),
    AddField("typed", "1", FieldType.STRING),
    AddField("name", "ignored"),
    RemoveField("tmp"),
    RemoveField("tmp", store_removed=True),
    RemoveField("absent", store_removed=True),
    RenameField("name", "full_name"),
    RenameField("absent", "other"),
    TransformField("age", lambda v: v + 1, lambda v: v - 1),
    TransformField("name", lambda v: v.upper()),
    TransformField("age", lambda v: 1 / 0),
    CompositeOperation([RenameField("name", "n"), AddField("z", 0), RemoveField("tmp", True)]),
    CompositeOperation([]),
]


@pytest.mark.parametrize("make", [_plain, _typed], ids=["plain", "typed"])
@pytest.mark.parametrize("op", OPERATIONS, ids=repr)
def test_operations_never_mutate_and_return_new_records(make: Any, op: Operation) -> None:
    record = make()
    before = _snapshot(record)
    out = op.apply(record)
    assert out is not record
    assert _snapshot(record) == before
    assert out.id == record.id
    back = op.reverse(out)
    assert back is not out
    assert _snapshot(record) == before
    assert back.id == record.id
    # A second reverse on the original must not touch it either.
    op.reverse(record)
    assert _snapshot(record) == before


@pytest.mark.parametrize("make", [_plain, _typed], ids=["plain", "typed"])
@pytest.mark.parametrize(
    "op",
    [
        AddField("new", [1, 2]),
        RemoveField("tmp", store_removed=True),
        RenameField("name", "full_name"),
        TransformField("age", lambda v: v * 2, lambda v: v // 2),
        CompositeOperation(
            [
                RenameField("name", "n"),
                TransformField("age", lambda v: v + 10, lambda v: v - 10),
                RemoveField("tmp", store_removed=True),
                AddField("flag", True),
            ]
        ),
    ],
    ids=repr,
)
def test_reverse_round_trips(make: Any, op: Operation) -> None:
    record = make()
    back = op.reverse(op.apply(record))
    assert back.data == record.data
    assert back.metadata == record.metadata
    assert back.id == record.id
    assert op.is_reversible()


def test_operation_details() -> None:
    rec = _plain()
    added = AddField("n", 1).apply(rec)
    assert added.field_names() == ["name", "age", "tags", "tmp", "n"]
    assert AddField("age", 99).apply(rec)["age"] == 30
    typed = AddField("when", "2024", FieldType.TEXT).apply(rec)
    assert typed.get_field("when").type is FieldType.TEXT  # type: ignore[union-attr]

    removed = RemoveField("tmp", store_removed=True).apply(rec)
    assert "tmp" not in removed and removed.metadata["_removed_tmp"] == {"k": 1}
    assert RemoveField("tmp").reverse(RemoveField("tmp").apply(rec)).data.get("tmp") is None
    assert not RemoveField("tmp").is_reversible()

    renamed = RenameField("age", "years").apply(rec)
    assert renamed.field_names() == ["name", "years", "tags", "tmp"]  # position kept
    typed_rec = _typed()
    out = RenameField("name", "title").apply(typed_rec)
    field = out.get_field("title")
    assert field is not None and field.name == "title" and field.type is FieldType.TEXT
    assert field.metadata == {"note": "kept"}
    assert typed_rec.get_field("name").name == "name"  # type: ignore[union-attr]

    failed = TransformField("age", lambda v: v / 0).apply(rec)
    assert failed["age"] == 30 and "division" in failed.metadata["_transform_error_age"]
    assert (
        "_transform_error_age"
        not in TransformField("age", lambda v: v, lambda v: v).reverse(failed).metadata
    )
    assert TransformField("age", str).reverse(rec) == rec
    assert not TransformField("age", str).is_reversible()
    # A transformed Field keeps its type when the value fits, else it is re-detected.
    changed = TransformField("age", str).apply(_typed())
    assert changed.get_field("age").type is FieldType.STRING  # type: ignore[union-attr]

    comp = CompositeOperation([]).add(AddField("a", 1)).add(RenameField("a", "b"))
    assert comp.apply(rec)["b"] == 1
    assert comp.affected_fields() == {"a", "b"}
    # The id survives an operation that removes the data field it came from.
    implicit = Record({"id": "x9", "v": 1})
    assert RemoveField("id").apply(implicit).id == "x9"
    assert RenameField("id", "key").apply(implicit).id == "x9"


def test_migration_versions_and_reverse() -> None:
    m = (
        Migration("1.0", "2.0", "names")
        .add(RenameField("name", "full"))
        .add_many([TransformField("full", str.strip, lambda v: f" {v} "), AddField("active", True)])
    )
    rec = _plain()
    out = m.apply(rec)
    assert out.metadata["version"] == "2.0" and out["full"] == "Ann"
    assert "version" not in rec.metadata
    back = m.apply(out, reverse=True)
    assert back.metadata["version"] == "1.0"
    assert back.data == rec.data
    assert [r.metadata["version"] for r in m.apply_many([rec, rec])] == ["2.0", "2.0"]
    assert m.get_affected_fields() == {"name", "full", "active"}
    assert m.can_reverse()
    assert not Migration("1", "2").add(RemoveField("x")).can_reverse()
    assert "1.0 -> 2.0: names" in str(m) and "operations=3" in repr(m)
    empty = Migration("a", "b")
    out = empty.apply(rec)
    assert out is not rec and out.metadata["version"] == "b" and rec.metadata == {"src": "x"}


def test_migration_validate() -> None:
    m = (
        Migration("1", "2")
        .add(RenameField("missing", "x"))
        .add(CompositeOperation([TransformField("nope", str)]))
        .add(TransformField("age", str))
    )
    ok, issues = m.validate(Record({"age": 1}, metadata={"version": "0"}))
    assert not ok
    assert issues == [
        "Record version mismatch: expected 1, got 0",
        "Field 'missing' not found for rename operation",
        "Field 'nope' not found for transform operation",
    ]
    assert Migration("1", "2").add(TransformField("age", str)).validate(Record({"age": 1})) == (
        True,
        [],
    )


def test_get_affected_fields_for_user_operations() -> None:
    class Legacy(Operation):
        field_name = "legacy"

        def apply(self, record: Record) -> Record:
            return record.copy()

        def reverse(self, record: Record) -> Record:
            return record.copy()

    assert Migration("1", "2").add(Legacy()).get_affected_fields() == {"legacy"}


def test_transformer_rules() -> None:
    rec = _plain()
    before = _snapshot(rec)
    t = (
        Transformer()
        .map("name", transform=str.strip)
        .rename("age", "years")
        .map("tags", "labels", transform=len)
        .exclude("tmp", "absent")
        .add("source", "import")
        .add("greeting", lambda r: f"hi {r['name']}")
        .add("broken", lambda r: r["nope"])
    )
    out = t.transform(rec)
    assert out is not None
    assert out.data == {
        "name": "Ann",
        "years": 30,
        "labels": 2,
        "source": "import",
        "greeting": "hi Ann",
        "broken": None,
    }
    assert "_compute_error_broken" in out.metadata
    assert out.id == "r1" and _snapshot(rec) == before
    assert len(t) == 7 and "rules=7" in repr(t)

    bad = Transformer().map("age", transform=lambda v: v / 0).transform(rec)
    assert bad is not None and bad["age"] == 30 and "_transform_error_age" in bad.metadata

    dropping = Transformer().add_rule(lambda r: None if r["age"] > 18 else r)
    assert dropping.transform(rec) is None
    assert dropping.transform_many([rec, Record({"age": 3}, id="k")])[0].id == "k"
    assert Transformer().transform(rec) == rec and Transformer().transform(rec) is not rec
    assert len(Transformer().exclude("a").clear()) == 0
    with pytest.raises(TypeError):
        Transformer().add_rule(42)  # type: ignore[arg-type]

    typed = Transformer().add("n", 5, FieldType.FLOAT).transform(rec)
    assert typed is not None and typed.get_field("n").type is FieldType.FLOAT  # type: ignore[union-attr]


def test_rule_classes_directly() -> None:
    rec = _plain()
    assert MapRule("age", "a").apply(rec).field_names()[1] == "a"
    assert "tmp" not in ExcludeRule(["tmp"]).apply(rec)
    assert AddRule("k", 1).apply(rec)["k"] == 1
    # Mapping onto an existing field replaces it rather than duplicating it.
    assert MapRule("name", "age").apply(rec).data == {
        "age": " Ann ",
        "tags": ["a", "b"],
        "tmp": {"k": 1},
    }


def test_progress() -> None:
    p = MigrationProgress(total=4)
    assert p.duration == 0.0 and p.percent == 0.0 and p.success_rate == 0.0
    p.start()
    p.record_success("a").record_success("b")
    p.record_failure("bad", "c", ValueError("boom"))
    p.record_skip("filtered", "d")
    p.finish()
    assert (p.processed, p.succeeded, p.failed, p.skipped) == (4, 2, 1, 1)
    assert p.percent == 100.0 and p.success_rate == 50.0 and p.is_complete and p.has_errors
    assert p.errors[0]["exception_type"] == "ValueError" and p.errors[0]["record_id"] == "c"
    summary = p.get_summary()
    assert "records/s" in summary and "100.0%" in summary and "Errors: 1" in summary
    other = MigrationProgress(total=1, processed=1, succeeded=1, metadata={"k": 1})
    p.set_metadata("k", 0).merge(other)
    assert p.total == 5 and p.metadata["k"] == [0, 1]
    assert p.to_dict()["succeeded"] == 3 and "processed=5" in repr(p)


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ("uppercase", "ab", "AB"),
        ("lowercase", "AB", "ab"),
        ("trim", "  x ", "x"),
        ("trim", 5, 5),
        ({"multiply": 3}, 2, 6),
        ({"divide": 4}, 2, 0.5),
        ({"multiply": 3}, "2", "2"),
    ],
)
def test_transform_specs(spec: Any, value: Any, expected: Any) -> None:
    assert transform_function(spec)(value) == expected


@pytest.mark.parametrize("spec", ["reverse", {"divide": 0}, {"power": 2}, 3])
def test_bad_transform_specs(spec: Any) -> None:
    with pytest.raises(ValueError):
        transform_function(spec)


def test_migration_factory() -> None:
    m = migration_factory.create(
        from_version="1",
        to_version="2",
        description="d",
        operations=[
            {"type": "rename_field", "old_name": "name", "new_name": "full"},
            {"type": "transform_field", "field_name": "full", "transform": "trim"},
            {"type": "transform_field", "field_name": "age", "transform": {"multiply": 2}},
            {
                "type": "add_field",
                "field_name": "ok",
                "default_value": True,
                "field_type": "boolean",
            },
            {"type": "remove_field", "field_name": "tmp", "store_removed": True},
            {"type": "composite", "operations": [{"type": "add_field", "field_name": "z"}]},
        ],
    )
    assert isinstance(m, Migration) and len(m.operations) == 6
    out = m.apply(_plain())
    assert out.data == {"full": "Ann", "age": 60, "tags": ["a", "b"], "ok": True, "z": None}
    # {multiply: k} reverses by dividing.
    assert m.apply(out, reverse=True)["age"] == 30
    with pytest.raises(ValueError, match="unknown operation type"):
        MigrationFactory().create(operations=[{"type": "drop_everything"}])
    with pytest.raises(ValueError, match="needs field_name"):
        MigrationFactory().create(operations=[{"type": "add_field"}])
    with pytest.raises(ValueError, match="unknown field_type"):
        MigrationFactory().create(
            operations=[{"type": "add_field", "field_name": "a", "field_type": "nope"}]
        )


def test_transformer_factory_and_specs(tmp_path: Path) -> None:
    spec = {
        "rules": [
            {"type": "map", "source": "name", "transform": "trim"},
            {"type": "rename", "old_name": "age", "new_name": "years"},
            {"type": "exclude", "fields": ["tmp"]},
            {"type": "add", "field_name": "src", "value": "cli"},
        ]
    }
    t = transformer_factory.create(**spec)
    out = t.transform(_plain())
    assert out is not None
    assert out.data == {"name": "Ann", "years": 30, "tags": ["a", "b"], "src": "cli"}
    with pytest.raises(ValueError, match="unknown rule type"):
        TransformerFactory().create(rules=[{"type": "explode"}])
    assert isinstance(migrator_factory.create(), Migrator)

    json_path = tmp_path / "t.json"
    json_path.write_text(json.dumps(spec))
    assert isinstance(load_transform(json_path), Transformer)
    yaml_path = tmp_path / "m.yaml"
    yaml_path.write_text(
        "from_version: '1'\nto_version: '2'\noperations:\n"
        "  - {type: rename_field, old_name: name, new_name: full}\n"
    )
    loaded = load_transform(yaml_path)
    assert isinstance(loaded, Migration) and loaded.to_version == "2"
    assert isinstance(build_transform({"type": "migration"}), Migration)
    with pytest.raises(ValueError, match="needs 'rules'"):
        build_transform({"whatever": 1})
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="mapping"):
        load_transform(tmp_path / "list.yaml")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="cannot parse"):
        load_transform(tmp_path / "bad.json")


def test_field_objects_are_not_shared() -> None:
    rec = _typed()
    out = AddField("x", 1).apply(rec)
    out_field = out.get_field("name")
    assert out_field is not None
    out_field.metadata["note"] = "changed"
    assert rec.get_field("name").metadata == {"note": "kept"}  # type: ignore[union-attr]
    assert isinstance(out.get_field("x"), Field)


def test_subclass_overrides_are_honoured_inside_chains() -> None:
    class Shouting(AddField):
        def apply(self, record: Record) -> Record:
            out = super().apply(record)
            out.set_value(self.field_name, str(out.get_value(self.field_name)).upper())
            return out

    class Custom(Operation):
        def apply(self, record: Record) -> Record:
            out = record.copy()
            out.set_value("custom", True)
            return out

        def reverse(self, record: Record) -> Record:
            out = record.copy()
            out.remove_field("custom")
            return out

    m = Migration("1", "2").add(Shouting("greet", "hi")).add(Custom()).add(RenameField("age", "y"))
    rec = _plain()
    out = m.apply(rec)
    assert out["greet"] == "HI" and out["custom"] is True and out["y"] == 30
    assert "custom" not in m.apply(out, reverse=True)
    comp = CompositeOperation([Custom(), AddField("k", 1)])
    assert comp.apply(rec)["custom"] is True and "custom" not in comp.reverse(comp.apply(rec))
    assert _snapshot(rec) == _snapshot(_plain())
