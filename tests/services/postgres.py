"""A throwaway PostgreSQL cluster for the tests.

``DKDATA_PG_DSN`` points the tests at a server that already runs. Otherwise the first test that
needs PostgreSQL starts a cluster from Debian's ``postgresql`` package in a temp folder, on
127.0.0.1 and a free port, and the session stops it at its end. With ``CI=true`` a server that
cannot start fails the test; elsewhere the test is skipped with the reason.

The cluster takes TLS connections with a server certificate for ``localhost`` (not for
127.0.0.1, so that ``verify-full`` through the address fails and ``verify-ca`` passes) signed by
a throwaway CA in ``ca_file``; clients in ``prefer`` mode (the default) encrypt.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass, field

from . import ServiceUnavailable, SessionService, free_ports

ENV_DSN = "DKDATA_PG_DSN"
#: initdb refuses root, so a root caller runs the cluster as this system user.
SYSTEM_USER = "postgres"
START_TIMEOUT_S = 60


@dataclass
class PostgresService:
    """Where the tests' server listens; ``stop`` removes a cluster this module started."""

    host: str
    port: int
    user: str
    database: str
    password: str | None = None
    data_dir: str | None = None
    #: The CA that signed the server certificate (None: the server's TLS is not ours to know).
    ca_file: str | None = None
    _bin: str | None = field(default=None, repr=False)

    @property
    def dsn(self) -> str:
        auth = urllib.parse.quote(self.user, safe="")
        if self.password:
            auth += ":" + urllib.parse.quote(self.password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}"

    def config(self) -> dict[str, object]:
        """Backend config keys (API.md §5) for this server."""
        cfg: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "database": self.database,
        }
        if self.password:
            cfg["password"] = self.password
        return cfg

    @property
    def owned(self) -> bool:
        """Whether this module started the cluster (and so may restart it)."""
        return self.data_dir is not None

    def psql(self, sql: str, timeout: float = 30) -> str:
        """Runs ``sql`` with psql (the cluster's own, else the one on PATH); returns its output."""
        exe = os.path.join(self._bin, "psql") if self._bin else (shutil.which("psql") or "psql")
        done = subprocess.run(
            [exe, self.dsn, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PGPASSWORD": self.password or ""},
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def psql_background(self, sql: str) -> subprocess.Popen[str]:
        """Starts psql on ``sql`` without waiting (to hold a lock, say)."""
        exe = os.path.join(self._bin, "psql") if self._bin else (shutil.which("psql") or "psql")
        return subprocess.Popen(
            [exe, self.dsn, "-X", "-At", "-c", sql],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PGPASSWORD": self.password or ""},
        )

    def restart(self) -> None:
        """Restarts a cluster this module started, on the same port."""
        if self.data_dir is None or self._bin is None:
            raise ServiceUnavailable("only a cluster started by the tests can be restarted")
        pg_ctl = os.path.join(self._bin, "pg_ctl")
        timeout = str(START_TIMEOUT_S)
        # With a log file, or the server's output would hold psql's pipe open.
        log = os.path.join(os.path.dirname(self.data_dir), "server.log")
        _run_as_owner(
            [pg_ctl, "restart", "-D", self.data_dir, "-m", "fast", "-w", "-t", timeout, "-l", log]
        )

    def stop(self) -> None:
        if self.data_dir is None or self._bin is None:
            return
        data_dir, self.data_dir = self.data_dir, None
        # Immediate: nothing in a throwaway cluster is worth a checkpoint.
        _run_as_owner(
            [os.path.join(self._bin, "pg_ctl"), "stop", "-D", data_dir, "-m", "immediate", "-s"],
            check=False,
        )
        shutil.rmtree(os.path.dirname(data_dir), ignore_errors=True)


def _as_root() -> bool:
    return os.geteuid() == 0


def _run_as_owner(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if _as_root():
        cmd = ["runuser", "-u", SYSTEM_USER, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    if check and done.returncode != 0:
        raise ServiceUnavailable(
            f"{' '.join(cmd)} exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
        )
    return done


def _bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise ServiceUnavailable(
            "no /usr/lib/postgresql/*/bin/initdb: install Debian's postgresql package "
            "(make services does) or set DKDATA_PG_DSN"
        )
    # The newest major version sorts last only by accident of digits; compare numerically.
    found.sort(key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1])


def _from_dsn(dsn: str) -> PostgresService:
    url = urllib.parse.urlparse(dsn)
    if url.scheme not in ("postgres", "postgresql") or not url.hostname:
        raise ServiceUnavailable(f"{ENV_DSN} must be postgresql://user[:pw]@host[:port]/db")
    return PostgresService(
        host=url.hostname,
        port=url.port or 5432,
        user=urllib.parse.unquote(url.username or "postgres"),
        database=(url.path or "/").lstrip("/") or "postgres",
        password=urllib.parse.unquote(url.password) if url.password else None,
    )


def _make_certs(
    root: str, owner_uid: int | None, owner_gid: int | None
) -> tuple[str, str, str] | None:
    """A CA and a server certificate for ``localhost`` signed by it: (ca, cert, key) paths;
    None without openssl (the cluster then takes plain connections only)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    ca_key, ca, key, csr, cert, ext = (
        os.path.join(root, name)
        for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "san.ext")
    )
    with open(ext, "w", encoding="ascii") as fh:
        fh.write("subjectAltName=DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=dkdata test CA"],
        [openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ):  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ServiceUnavailable(f"openssl failed: {done.stderr.strip()}")
    os.chmod(key, 0o600)
    if owner_uid is not None and owner_gid is not None:
        for path in (key, cert):
            os.chown(path, owner_uid, owner_gid)
    return ca, cert, key


def start_cluster() -> PostgresService:
    """initdb + pg_ctl start in a fresh temp folder; raises ServiceUnavailable."""
    bin_dir = _bin_dir()
    if _as_root():
        try:
            import pwd

            owner = pwd.getpwnam(SYSTEM_USER)
        except KeyError as exc:
            raise ServiceUnavailable(f"running as root but no {SYSTEM_USER!r} user") from exc
    root = tempfile.mkdtemp(prefix="dkdata-pg-")
    data_dir = os.path.join(root, "data")
    try:
        if _as_root():
            os.chown(root, owner.pw_uid, owner.pw_gid)
        _run_as_owner(
            [
                os.path.join(bin_dir, "initdb"),
                "-D",
                data_dir,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        (port,) = free_ports(1)
        certs = _make_certs(
            root,
            owner.pw_uid if _as_root() else None,
            owner.pw_gid if _as_root() else None,
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        if certs is not None:
            opts += f" -c ssl=on -c ssl_cert_file={certs[1]} -c ssl_key_file={certs[2]}"
        _run_as_owner(
            [
                os.path.join(bin_dir, "pg_ctl"),
                "start",
                "-D",
                data_dir,
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-s",
                "-l",
                os.path.join(root, "server.log"),
                "-o",
                opts,
            ]
        )
    except BaseException as exc:
        log = os.path.join(root, "server.log")
        detail = ""
        if os.path.exists(log):
            with open(log, encoding="utf-8", errors="replace") as f:
                detail = "\n" + f.read()[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        if isinstance(exc, ServiceUnavailable):
            raise ServiceUnavailable(f"{exc}{detail}") from exc
        raise
    return PostgresService(
        host="127.0.0.1",
        port=port,
        user="postgres",
        database="postgres",
        data_dir=data_dir,
        ca_file=None if certs is None else certs[0],
        _bin=bin_dir,
    )


_session = SessionService("PostgreSQL", ENV_DSN, _from_dsn, start_cluster)


def service() -> PostgresService:
    """The session's server, started on first call (see SessionService)."""
    return _session.get()


def stop() -> None:
    """Stop the cluster this session started (a DKDATA_PG_DSN server is left alone)."""
    _session.stop()
