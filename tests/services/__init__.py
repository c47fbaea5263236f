"""Throwaway servers for the tests (started on first use, stopped at session end)."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import pytest


class ServiceUnavailable(RuntimeError):
    """The server could not be reached or started."""


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


class SessionService(Generic[S]):
    """One server for the test session: the one a DSN variable names, else one started on
    first use and stopped at the end. A server that cannot be had fails the calling test under
    CI (``CI=true``) and skips it elsewhere; the first failure is remembered, not retried."""

    def __init__(
        self, label: str, env_dsn: str, from_dsn: Callable[[str], S], start: Callable[[], S]
    ) -> None:
        self.label = label
        self.env_dsn = env_dsn
        self._from_dsn = from_dsn
        self._start = start
        self._service: S | None = None
        self._failure: str | None = None

    def get(self) -> S:
        if self._service is None and self._failure is None:
            dsn = os.environ.get(self.env_dsn)
            try:
                self._service = self._from_dsn(dsn) if dsn else self._start()
                atexit.register(self.stop)
            except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
                self._failure = f"{self.label} unavailable: {exc}"
        if self._service is not None:
            return self._service
        reason = self._failure or f"{self.label} unavailable"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise ServiceUnavailable(reason)
        pytest.skip(reason)

    def stop(self) -> None:
        """Stop the server this session started (one named by the DSN variable is left alone:
        its ``stop`` knows that)."""
        if self._service is not None:
            self._service.stop()
            self._service = None


def free_ports(n: int) -> list[int]:
    """``n`` distinct 127.0.0.1 ports free now (all held open together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()
