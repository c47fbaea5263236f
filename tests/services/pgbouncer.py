"""A throwaway PgBouncer in transaction pooling, in front of the tests' PostgreSQL.

``DKDATA_PGBOUNCER_DSN`` points the tests at a PgBouncer that already runs (it must pool in
transaction mode). Otherwise the first test that needs it starts Debian's ``pgbouncer`` on
127.0.0.1 and a free port, with ``pool_mode = transaction`` and a small ``default_pool_size`` so
that concurrent clients share (and swap) server connections, in front of the session's
PostgreSQL (tests/services/postgres.py); the session stops it at its end. With ``CI=true`` a
PgBouncer that cannot start fails the test; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from . import ServiceUnavailable, SessionService, free_ports, postgres
from .postgres import SYSTEM_USER, PostgresService, _as_root

ENV_DSN = "DKDATA_PGBOUNCER_DSN"
#: Server connections per (database, user): small, so that 50 concurrent clients take turns.
POOL_SIZE = 2


@dataclass
class PgBouncerService:
    """Where the tests' PgBouncer listens (``server``: where it connects); ``stop`` ends a
    PgBouncer this module started."""

    bouncer: PostgresService
    server: PostgresService | None = None
    workdir: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def config(self) -> dict[str, object]:
        """Backend config keys (API.md §5) that connect through PgBouncer."""
        return self.bouncer.config()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=postgres.START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def _binary() -> str:
    exe = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )
    if exe is None:
        raise ServiceUnavailable(
            "no pgbouncer: install Debian's pgbouncer package (make services does) "
            f"or set {ENV_DSN}"
        )
    return exe


def _ini(server: PostgresService, port: int, workdir: str) -> str:
    target = f"host={server.host} port={server.port}"
    if server.password:
        # PgBouncer logs in to the server with it; clients are trusted (auth_type below).
        target += f" password={server.password}"
    return "\n".join(
        [
            "[databases]",
            f"* = {target}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            # No Unix socket: nothing but the tests talk to it, over TCP.
            "unix_socket_dir =",
            "auth_type = trust",
            # Trust still requires the user to be listed.
            f"auth_file = {os.path.join(workdir, 'userlist.txt')}",
            "pool_mode = transaction",
            f"default_pool_size = {POOL_SIZE}",
            "max_client_conn = 1000",
            f"logfile = {os.path.join(workdir, 'pgbouncer.log')}",
            f"pidfile = {os.path.join(workdir, 'pgbouncer.pid')}",
            "",
        ]
    )


def _tail(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return "\n" + f.read()[-2000:]


def start_bouncer(server: PostgresService) -> PgBouncerService:
    """Starts pgbouncer in front of ``server`` and waits until it accepts connections; raises
    ServiceUnavailable."""
    exe = _binary()
    owner = None
    if _as_root():
        # PgBouncer refuses to run as root.
        import pwd

        try:
            owner = pwd.getpwnam(SYSTEM_USER)
        except KeyError as exc:
            raise ServiceUnavailable(f"running as root but no {SYSTEM_USER!r} user") from exc
    workdir = tempfile.mkdtemp(prefix="dkdata-pgbouncer-")
    (port,) = free_ports(1)
    ini = os.path.join(workdir, "pgbouncer.ini")
    with open(ini, "w", encoding="utf-8") as f:
        f.write(_ini(server, port, workdir))
    with open(os.path.join(workdir, "userlist.txt"), "w", encoding="utf-8") as f:
        f.write(f'"{server.user}" ""\n')
    if owner is not None:
        for path in (workdir, ini, os.path.join(workdir, "userlist.txt")):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    output = os.path.join(workdir, "output.log")
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [exe, ini],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=None if owner is None else owner.pw_uid,
            group=None if owner is None else owner.pw_gid,
            extra_groups=None if owner is None else [],
        )
    service = PgBouncerService(
        bouncer=PostgresService(
            host="127.0.0.1",
            port=port,
            user=server.user,
            database=server.database,
            password=server.password,
        ),
        server=server,
        workdir=workdir,
        _proc=proc,
    )
    deadline = time.monotonic() + postgres.START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            detail = _tail(output) + _tail(os.path.join(workdir, "pgbouncer.log"))
            service.stop()
            raise ServiceUnavailable(f"pgbouncer exited {proc.returncode}{detail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return service
        except OSError:
            if time.monotonic() > deadline:
                service.stop()
                raise ServiceUnavailable(
                    f"pgbouncer did not listen on 127.0.0.1:{port} within "
                    f"{postgres.START_TIMEOUT_S}s"
                ) from None
            time.sleep(0.05)


def _from_dsn(dsn: str) -> PgBouncerService:
    return PgBouncerService(bouncer=postgres._from_dsn(dsn))


_session = SessionService(
    "PgBouncer", ENV_DSN, _from_dsn, lambda: start_bouncer(postgres.service())
)


def service() -> PgBouncerService:
    """The session's PgBouncer, started on first call after the PostgreSQL it fronts (see
    SessionService)."""
    return _session.get()


def stop() -> None:
    """Stop the PgBouncer this session started (a DKDATA_PGBOUNCER_DSN one is left alone)."""
    _session.stop()
