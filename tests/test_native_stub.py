"""The type stub `_native.pyi` names exactly what the extension module exports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

native = pytest.importorskip("dataknobs_data._native")

STUB = Path(__file__).resolve().parent.parent / "python" / "dataknobs_data" / "_native.pyi"


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _stub_tree() -> tuple[set[str], dict[str, set[str]]]:
    """The stub's module functions, and its exported classes with their members (inherited
    ones included). A private class used as a base is a stub-only grouping of shared methods,
    not an export."""
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    functions: set[str] = set()
    classes: dict[str, set[str]] = {}
    bases: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions.add(node.name)
        elif isinstance(node, ast.ClassDef):
            members = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
            for base in node.bases:
                assert isinstance(base, ast.Name) and base.id in classes, ast.dump(base)
                members |= classes[base.id]
                bases.add(base.id)
            classes[node.name] = members
    exported = {name: members for name, members in classes.items() if name not in bases}
    assert all(name.startswith("_") for name in bases), bases
    return functions, exported


def test_module_level_names_match_both_ways() -> None:
    functions, classes = _stub_tree()
    runtime = {name for name in dir(native) if not _is_dunder(name)}
    assert runtime == functions | set(classes)
    for name in functions:
        assert callable(getattr(native, name)) and not isinstance(getattr(native, name), type)
    for name in classes:
        assert isinstance(getattr(native, name), type)


@pytest.mark.parametrize("class_name", sorted(_stub_tree()[1]))
def test_class_members_match_both_ways(class_name: str) -> None:
    stub_members = _stub_tree()[1][class_name]
    cls = getattr(native, class_name)
    runtime_public = {name for name in vars(cls) if not _is_dunder(name)}
    assert runtime_public == {name for name in stub_members if not _is_dunder(name)}
    # Dunders: the stub's (other than __init__, which pyo3 spells __new__) exist at runtime,
    # and the protocol methods the class defines are in the stub.
    for name in stub_members:
        if _is_dunder(name) and name != "__init__":
            assert name in vars(cls), f"{class_name}.{name} is in the stub but not the module"
    for name in ("__len__", "__iter__", "__next__", "__enter__", "__exit__", "__repr__"):
        if name in vars(cls):
            assert name in stub_members, f"{class_name}.{name} is missing from the stub"
    if "__new__" in vars(cls):
        assert "__init__" in stub_members, f"{class_name} constructor is missing from the stub"


def test_every_sync_verb_has_an_async_twin() -> None:
    _, classes = _stub_tree()
    for class_name, members in classes.items():
        # Not stores: they work in memory on batches the caller already holds.
        # OpCounters are atomics the instrumentation adds to: nothing to wait for.
        if class_name in {"TextShaper", "Aggregator", "ArrowBatch", "ArrowSchema", "OpCounters"}:
            continue
        for name in members:
            # is_transactional is a fixed property of the store class: no I/O to await.
            if _is_dunder(name) or name.endswith("_async") or name == "is_transactional":
                continue
            if (class_name, name) in {
                ("MemoryStore", "export_json"),
                ("MemoryStore", "import_json"),
                ("Cursor", "close"),
                # Awaited streams take pages with next_page_async; take_records serves the
                # sync face and the memory store's inline async one, whose pages never wait.
                ("Cursor", "take_records"),
                ("ArrowStream", "close"),
                ("Page", "take"),
                ("PagedSearch", "pages"),
            }:
                continue
            assert f"{name}_async" in members, f"{class_name}.{name} has no async twin"
