"""Choosing a backend from a config dict, and registering backends that may be unavailable.

The functions take a registry (``backends.sync_backends`` or ``backends.async_backends``).
A config names its backend under ``"backend"``; without that key the default, ``memory``, is
used, with a warning, since an unpersisted store silently answering nothing is rarely meant.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .backends import BackendRegistry

__all__ = [
    "DEFAULT_BACKEND",
    "available_backends",
    "backend_available",
    "backend_info",
    "build_backend",
    "is_default_backend",
    "module_installed",
    "normalize_backend",
    "register_backend",
    "select_backend",
]

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "memory"
"""The backend of a config without a ``"backend"`` key."""


def module_installed(module: str) -> bool:
    """Whether ``module`` can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def normalize_backend(raw: Any) -> str:
    """The backend name a ``"backend"`` value gives, stripped and lower-cased.

    Raises:
        ValueError: the value is None, not a string, or empty.
    """
    if raw is None:
        raise ValueError(
            f"The 'backend' key is null: name a backend, or leave the key out for the "
            f"default ('{DEFAULT_BACKEND}')."
        )
    if not isinstance(raw, str):
        raise ValueError(
            f"The 'backend' key must be a backend name (a string), got "
            f"{type(raw).__name__}: {raw!r}."
        )
    name = raw.strip().lower()
    if not name:
        raise ValueError(
            f"The 'backend' key is empty: name a backend, or leave the key out for the "
            f"default ('{DEFAULT_BACKEND}')."
        )
    return name


def is_default_backend(config: Mapping[str, Any], registry: BackendRegistry | None = None) -> bool:
    """Whether ``config`` selects the default backend (by omission, by name or by alias)."""
    if "backend" not in config:
        return True
    named = normalize_backend(config["backend"])
    if named == DEFAULT_BACKEND:
        return True
    if registry is None:
        return False
    default = registry.get_factory(DEFAULT_BACKEND)
    return default is not None and registry.get_factory(named) is default


def register_backend(
    registry: BackendRegistry,
    key: str,
    load: Callable[[], Any],
    *,
    metadata: dict[str, Any],
    aliases: Sequence[str] = (),
    installed: Callable[[str], bool] = module_installed,
    override: bool = False,
) -> None:
    """Register the class ``load()`` returns as backend ``key`` (and its aliases).

    When a module in ``metadata["requires_module"]`` is missing, or ``load()`` raises
    ImportError, the backend is declared unavailable instead: it stays known, and selecting it
    says what to install (``metadata["requires_install"]``).
    """
    required = metadata.get("requires_module") or ()
    if isinstance(required, str):
        required = (required,)
    missing = [name for name in required if not installed(name)]
    reason: str | None = None
    backend_class: Any = None
    if missing:
        reason = f"{', '.join(missing)} is not installed"
        hint = metadata.get("requires_install")
        if hint:
            reason += f". Install with: {hint}"
    else:
        try:
            backend_class = load()
        except ImportError as exc:
            reason = str(exc)
    if reason is not None:
        registry.declare_unavailable(key, metadata=metadata, reason=reason, aliases=tuple(aliases))
        logger.debug("Backend '%s' is unavailable: %s", key, reason)
        return
    registry.register(key, backend_class, override=override, metadata=metadata)
    for alias in aliases:
        registry.register(alias, backend_class, override=override)


def available_backends(registry: BackendRegistry) -> list[str]:
    """The names of the backends usable here, sorted."""
    return registry.list_canonical_keys()


def backend_available(registry: BackendRegistry, backend_type: str) -> bool:
    """Whether ``backend_type`` (a name or alias) is usable here."""
    return registry.is_registered(backend_type)


def backend_info(registry: BackendRegistry, backend_type: str) -> dict[str, Any]:
    """What the registry knows about ``backend_type``; for an unknown name, a description
    that says so and an ``"error"``."""
    metadata = registry.get_metadata(backend_type, follow_alias=True)
    if metadata:
        return metadata
    return {"description": "Unknown backend", "error": f"Backend '{backend_type}' not recognized"}


def build_backend(
    backend_class: Any, options: dict[str, Any], *, kind: str, backend_type: str
) -> Any:
    """``backend_class.from_config(options)``.

    Raises:
        ValueError: the registered object has no ``from_config``.
    """
    from_config = getattr(backend_class, "from_config", None)
    if from_config is None:
        shown = getattr(backend_class, "__name__", type(backend_class).__name__)
        raise ValueError(
            f"The {kind} backend '{backend_type}' ({shown}) has no 'from_config' classmethod, "
            f"so it cannot be built from a config; register a backend class."
        )
    return from_config(options)


def select_backend(
    config: dict[str, Any],
    registry: BackendRegistry,
    *,
    kind: str,
    unknown_message: Callable[[str, str], str] | None = None,
) -> tuple[Any, str, dict[str, Any]]:
    """(backend class, backend name as given, the rest of the config) for ``config``.

    Raises:
        ValueError: the backend is unknown (``unknown_message(name, available)`` words it when
            given), or known but not usable here (with its install hint).
    """
    remaining = {k: v for k, v in config.items() if k != "backend"}
    if "backend" in config:
        backend_type = normalize_backend(config["backend"])
    else:
        backend_type = DEFAULT_BACKEND
        logger.warning(
            "No 'backend' key in this %s config; using '%s', which keeps records in process "
            "memory only: nothing persists, and a fresh one answers every query with nothing.",
            kind,
            DEFAULT_BACKEND,
        )
    backend_class = registry.get_factory(backend_type)
    if backend_class is None:
        available = ", ".join(available_backends(registry))
        hint = registry.get_metadata(backend_type).get("requires_install")
        if isinstance(hint, str) and hint:
            raise ValueError(
                f"Backend '{backend_type}' is known but not available here. Install with: {hint}"
            )
        if unknown_message is not None:
            raise ValueError(unknown_message(backend_type, available))
        raise ValueError(f"Unknown backend type: {backend_type}. Available backends: {available}")
    return backend_class, backend_type, remaining
