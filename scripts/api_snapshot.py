"""Write the public API snapshot of an installed dataknobs-data (names and signatures only).

Run it with the interpreter that has the reference package installed::

    /tmp/ref011/bin/python scripts/api_snapshot.py [--out tests/data/api_0_11_0.json]

The snapshot records, per public module, the public names it offers and, per class, its public
members with their signatures as data (parameter names, kinds, whether a default exists, and the
default itself only when it is a plain literal). It holds no code and no docstrings; its only use
is ``tests/test_api_surface.py``, which checks that every entry resolves in this package with a
signature that accepts the same calls.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import importlib
import inspect
import json
import logging
import pkgutil
import re
import sys
import types
from pathlib import Path
from typing import Any

PACKAGE = "dataknobs_data"
# 0.11.0's exceptions derive from this package's classes; a module that imports one under its own
# name offers it too (``from dataknobs_data.exceptions import OperationError``).
COMMON_PACKAGE = "dataknobs_common"
# Out of scope (issue 9): vector search, embeddings, data sources, user management, test helpers.
SKIPPED_PARTS = ("vector", "sources", "user", "testing", "embedding")
# Vector search (embeddings, similarity, hybrid text+vector, reranking) is out of scope
# wherever it appears.
OUT_OF_SCOPE_NAME = re.compile(r"vector|embed|similar|hybrid|near_text|rerank", re.IGNORECASE)
LITERALS = (bool, int, float, str, type(None))
# Members that every class has and that say nothing about this package's API.
IGNORED_MEMBERS = frozenset({"args", "with_traceback", "add_note", "mro"})


def public_modules() -> list[str]:
    """Every importable public module of the package, outside the skipped parts."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, prefix=PACKAGE + "."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts):
            continue
        if any(skip in part for part in parts for skip in SKIPPED_PARTS):
            continue
        names.append(info.name)
    return sorted(names)


def top_level_definitions(module: types.ModuleType) -> set[str]:
    """Names a module defines itself (def, class, assignment), read from its source."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return set()
    defined: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    defined.add(target.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    return defined


def module_names(module: types.ModuleType) -> list[str]:
    """The public names a module offers: ``__all__``, else what it defines or re-exports."""
    explicit = getattr(module, "__all__", None)
    if explicit is not None:
        return sorted(n for n in explicit if not n.startswith("_") and hasattr(module, n))
    is_package = hasattr(module, "__path__")
    defined = top_level_definitions(module)
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if is_package:
            origin = getattr(value, "__module__", None)
            if name in defined or (isinstance(origin, str) and origin.startswith(PACKAGE)):
                names.append(name)
        elif name in defined or (is_common_exception(value) and value.__name__ == name):
            names.append(name)
    return sorted(names)


def describe_signature(obj: Any, drop_first: bool) -> dict[str, Any] | None:
    """Parameters of a callable as data, or None when Python cannot tell them."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    if (
        drop_first
        and params
        and params[0].kind
        in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    ):
        params = params[1:]
    described = []
    for param in params:
        if param.name.startswith("_") or OUT_OF_SCOPE_NAME.search(param.name):
            # A private parameter (``_tx``, ``_components``) is internal plumbing, not API;
            # vector parameters are out of scope like the rest of vector search.
            continue
        entry: dict[str, Any] = {
            "name": param.name,
            "kind": param.kind.name,
            "has_default": param.default is not inspect.Parameter.empty,
        }
        if isinstance(param.default, LITERALS) and entry["has_default"]:
            entry["default"] = param.default
        described.append(entry)
    return {"parameters": described}


def instance_attributes(cls: type) -> set[str]:
    """Attributes a class's own ``__init__``/``__post_init__`` assign on ``self``."""
    found: set[str] = set()
    for method_name in ("__init__", "__post_init__"):
        method = cls.__dict__.get(method_name)
        if not inspect.isfunction(method):
            continue
        try:
            tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(method)))
        except (OSError, SyntaxError):
            continue
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                targets = [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and not target.attr.startswith("_")
                ):
                    found.add(target.attr)
    return found


def package_class_name(cls: type) -> str | None:
    module = getattr(cls, "__module__", "") or ""
    if module == PACKAGE or module.startswith(PACKAGE + "."):
        return f"{module}.{cls.__qualname__}"
    if is_common_exception(cls):
        return f"{module}.{cls.__qualname__}"
    return None


def is_common_exception(value: Any) -> bool:
    """An exception class of ``dataknobs_common``, whose hierarchy 0.11.0's errors build on."""
    module = getattr(value, "__module__", "") or ""
    return (
        isinstance(value, type)
        and issubclass(value, BaseException)
        and module.split(".")[0] == COMMON_PACKAGE
    )


def describe_member(cls: type, name: str) -> dict[str, Any] | None:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            raw = klass.__dict__[name]
            break
    else:
        raw = getattr(cls, name, None)
    if isinstance(raw, property) or inspect.isdatadescriptor(raw):
        return {"kind": "property"}
    if isinstance(raw, classmethod):
        return {"kind": "classmethod", "signature": describe_signature(raw.__func__, True)}
    if isinstance(raw, staticmethod):
        return {"kind": "staticmethod", "signature": describe_signature(raw.__func__, False)}
    if inspect.isfunction(raw):
        entry: dict[str, Any] = {"kind": "method", "signature": describe_signature(raw, True)}
        if inspect.iscoroutinefunction(raw) or inspect.isasyncgenfunction(raw):
            entry["async"] = True
        return entry
    if isinstance(raw, enum.Enum) and isinstance(cls, enum.EnumMeta):
        value = raw.value
        return {"kind": "enum_member", "value": value if isinstance(value, LITERALS) else None}
    if callable(raw) and not isinstance(raw, type):
        return {"kind": "method", "signature": describe_signature(raw, True)}
    if isinstance(raw, type):
        return {"kind": "nested_class"}
    return {"kind": "attribute"}


def describe_class(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    owned = [k for k in cls.__mro__ if package_class_name(k) is not None]
    for name in dir(cls):
        if name.startswith("_") or name in IGNORED_MEMBERS or OUT_OF_SCOPE_NAME.search(name):
            continue
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if (
            owner is not None
            and package_class_name(owner) is None
            and not (isinstance(owner.__dict__[name], enum.Enum))
        ):
            continue
        if owner is not None and skipped_origin(owner):
            # Contributed by an out-of-scope part (a vector-search mixin).
            continue
        member = describe_member(cls, name)
        if member is not None:
            members[name] = member
    if dataclasses.is_dataclass(cls):
        for field in dataclasses.fields(cls):
            if not field.name.startswith("_") and not OUT_OF_SCOPE_NAME.search(field.name):
                members.setdefault(field.name, {"kind": "attribute"})
    for klass in owned:
        for name in instance_attributes(klass) - set(members):
            if OUT_OF_SCOPE_NAME.search(name):
                continue
            members.setdefault(name, {"kind": "attribute"})
    bases = sorted(
        {
            full
            for klass in cls.__mro__[1:]
            if (full := package_class_name(klass)) is not None
            and not klass.__name__.startswith("_")
            and not skipped_origin(klass)
            and not OUT_OF_SCOPE_NAME.search(klass.__name__)
        }
        | {
            klass.__name__
            for klass in cls.__mro__[1:]
            if klass.__module__ == "builtins"
            and issubclass(klass, BaseException)
            and klass not in (BaseException, Exception)
        }
    )
    entry: dict[str, Any] = {
        "kind": "enum" if isinstance(cls, enum.EnumMeta) else "class",
        "bases": bases,
        "members": dict(sorted(members.items())),
    }
    if not isinstance(cls, enum.EnumMeta):
        entry["signature"] = describe_signature(cls, False)
    return entry


def describe_name(value: Any) -> dict[str, Any]:
    if isinstance(value, type):
        return describe_class(value)
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        entry: dict[str, Any] = {"kind": "function", "signature": describe_signature(value, False)}
        if inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value):
            entry["async"] = True
        return entry
    entry = {"kind": "value", "type": type(value).__name__}
    if isinstance(value, LITERALS):
        entry["value"] = value
    elif isinstance(value, tuple) and all(isinstance(v, LITERALS) for v in value):
        entry["value"] = list(value)
    return entry


def skipped_origin(value: Any) -> bool:
    """True for a name that comes from one of the out-of-scope parts (re-exported by a package)."""
    origin = getattr(value, "__module__", None)
    if not isinstance(origin, str) or not origin.startswith(PACKAGE + "."):
        return False
    parts = origin.split(".")[1:]
    return any(skip in part for part in parts for skip in SKIPPED_PARTS)


def defining_module(package: str, name: str, value: Any) -> str | None:
    """The module under ``package`` whose own source defines ``name`` as this very object."""
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue
        if getattr(module, name, None) is value and name in top_level_definitions(module):
            return info.name
    return None


def snapshot() -> dict[str, Any]:
    in_scope = public_modules()
    offered = {m: module_names(importlib.import_module(m)) for m in in_scope}
    modules: dict[str, Any] = {}
    for module_name in in_scope:
        module = importlib.import_module(module_name)
        entries: dict[str, Any] = {}
        for name in offered[module_name]:
            value = getattr(module, name)
            if (
                skipped_origin(value)
                or isinstance(value, logging.Logger)
                or OUT_OF_SCOPE_NAME.search(name)
            ):
                continue
            if isinstance(value, types.ModuleType):
                entries[name] = {"kind": "module", "of": value.__name__}
                continue
            origin = getattr(value, "__module__", None)
            if not (isinstance(value, type) or callable(value)) and hasattr(module, "__path__"):
                # Plain values carry no module of their own: find the one that defines it.
                origin = defining_module(module_name, name, value)
                if origin is not None and skipped_origin(types.SimpleNamespace(__module__=origin)):
                    continue
            if (
                origin != module_name
                and origin in offered
                and name in offered[origin]
                and getattr(importlib.import_module(origin), name) is value
            ):
                # A package re-export: the defining module's entry describes it in full.
                entries[name] = {"kind": "reexport", "of": f"{origin}.{name}"}
                continue
            entries[name] = describe_name(value)
        modules[module_name] = entries
    version = importlib.import_module("importlib.metadata").version(PACKAGE.replace("_", "-"))
    return {"package": PACKAGE, "version": version, "modules": modules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/api_0_11_0.json"))
    args = parser.parse_args(argv)
    data = snapshot()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    total = sum(len(names) for names in data["modules"].values())
    print(f"{args.out}: {len(data['modules'])} modules, {total} names", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
