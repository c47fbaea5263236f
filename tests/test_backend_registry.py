"""The backend registry (dataknobs_data.backends): registering, replacing, declaring a backend
unavailable, and the errors a mistaken registration or lookup gets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

import dataknobs_data.backends as registry
from dataknobs_data.backends import (
    BackendInfo,
    BackendRegistry,
    backend_class,
    get_available_backends,
    get_backend_info,
    is_backend_available,
    register_backend,
    sync_backends,
)
from dataknobs_data.backends.memory import AsyncMemoryDatabase, SyncMemoryDatabase
from dataknobs_data.exceptions import BackendNotFoundError, ConfigurationError


@pytest.fixture(autouse=True)
def private_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A copy of the registry for each test: registering (and replacing in place, which
    ``BackendRegistry.register`` does) must not leak into other tests."""
    infos = {
        name: dataclasses.replace(info, loaded=dict(info.loaded), metadata=dict(info.metadata))
        for name, info in registry._REGISTRY.items()
    }
    monkeypatch.setattr(registry, "_REGISTRY", infos)
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    yield


class Custom(SyncMemoryDatabase):
    pass


class AsyncCustom(AsyncMemoryDatabase):
    pass


def test_a_backend_registered_by_class_answers_to_its_name_and_aliases() -> None:
    register_backend("custom", Custom, AsyncCustom, aliases=("cu",), description="mine")
    assert backend_class("CU", "sync") is Custom
    assert backend_class("custom", "async") is AsyncCustom
    assert "custom" in get_available_backends()
    assert get_backend_info("cu") == {
        "name": "custom",
        "description": "mine",
        "aliases": ["cu"],
        "sync_class": "Custom",
        "async_class": "AsyncCustom",
        "available": True,
    }


def test_a_sync_only_backend_has_no_async_class() -> None:
    register_backend("synconly", Custom)
    assert backend_class("synconly", "sync") is Custom
    with pytest.raises(BackendNotFoundError, match="Backend 'synconly' not found"):
        backend_class("synconly", "async")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("x", "Custom"), {}, "sync_class is a class"),
        (("x", Custom, lambda: AsyncCustom), {}, "async_class is a class"),
        (("x", Custom), {"metadata": {}}, r"unexpected keywords: \['metadata'\]"),
        ((sync_backends, "x"), {}, "needs a key and a loader"),
    ],
)
def test_a_mistaken_registration_is_a_type_error(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        register_backend(*args, **kwargs)  # type: ignore[arg-type]
    assert not registry._ALIASES.get("x")


def test_a_backend_whose_module_does_not_import_says_what_to_install() -> None:
    registry._add(
        BackendInfo(
            "ghost",
            "needs a module this machine lacks",
            "no_such_module_here.ghost",
            "SyncGhost",
            "AsyncGhost",
        )
    )
    assert not is_backend_available("ghost")
    assert "ghost" not in get_available_backends()
    assert get_backend_info("ghost")["available"] is False
    with pytest.raises(ConfigurationError) as caught:
        backend_class("ghost", "sync")
    assert caught.value.parameter == "backend"
    assert "needs no_such_module_here" in str(caught.value)
    assert "pip install 'dataknobs-data[ghost]'" in str(caught.value)


def test_unknown_names() -> None:
    assert not is_backend_available("nope")
    with pytest.raises(BackendNotFoundError, match=r"Available backends: .*memory") as caught:
        get_backend_info("nope")
    assert caught.value.backend == "nope"
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        registry.Nope  # noqa: B018
    assert registry.SyncMemoryDatabase is SyncMemoryDatabase


def test_get_caches_one_database_per_backend_unless_given_a_config() -> None:
    reg = BackendRegistry("sync")
    first = reg.get("mem")
    assert reg.get("memory") is first
    assert reg.get("memory", use_cache=False) is not first
    assert reg.get("sqlite", {"path": ":memory:"}) is not reg.get("sqlite", {"path": ":memory:"})


def test_registering_over_a_backend_needs_override() -> None:
    reg = BackendRegistry("sync")
    cached = reg.get("memory")
    with pytest.raises(ConfigurationError, match="a sync backend is already registered"):
        reg.register("mem", Custom)
    reg.register("mem", Custom, override=True, metadata={"persistent": False})
    assert reg.get_factory("memory") is Custom
    # The cached database was of the replaced class: a new one is made.
    assert isinstance(reg.get("memory"), Custom) and reg.get("memory") is not cached
    assert reg.get_metadata("memory")["persistent"] is False
    # The async side of the same backend is untouched.
    assert BackendRegistry("async").get_factory("memory") is AsyncMemoryDatabase


def test_registering_an_async_class_under_a_new_name() -> None:
    reg = BackendRegistry("async")
    reg.register("later", AsyncCustom, metadata={"description": "registered late"})
    assert reg.get_factory("later") is AsyncCustom
    assert not BackendRegistry("sync").has("later")
    assert reg.get_metadata("later")["description"] == "registered late"


def test_get_metadata() -> None:
    meta = sync_backends.get_metadata("pg")
    assert meta["aliases"] == ["postgresql", "pg"] and meta["requires_install"] is False
    assert sync_backends.get_metadata("pg", follow_alias=False) == {}
    assert sync_backends.get_metadata("nope") == {}
    assert sync_backends.get_metadata("duckdb")["requires_install"] == (
        "pip install 'dataknobs-data[duckdb]'"
    )


def test_a_backend_declared_unavailable_is_known_but_not_usable() -> None:
    reg = BackendRegistry("sync")
    reg.declare_unavailable(
        "far",
        metadata={"description": "far away", "requires_install": "pip install far"},
        reason="no far here",
        aliases=["distant"],
    )
    assert reg.is_known("distant") and not reg.has("far")
    assert not is_backend_available("far")
    assert reg.get_factory("far") is None
    meta = reg.get_metadata("distant")
    assert meta["unavailable_reason"] == "no far here"
    assert meta["requires_install"] == "pip install far"
    with pytest.raises(BackendNotFoundError):
        backend_class("far", "sync")
