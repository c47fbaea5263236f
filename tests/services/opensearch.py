"""A throwaway OpenSearch node for the tests.

``DKDATA_ES_URL`` points the tests at a node (or Elasticsearch) that already runs. Otherwise the
first test that needs one builds the small Maven project in ``tests/services/opensearch/`` (once:
jars resolved from Maven Central into the repo's ignored ``target/m2``, classes and the runtime
classpath into ``target/opensearch``; rebuilt only when its sources change) and starts one
OpenSearch 2.19 node in its own JVM (``java -cp ... Main``; Java 17 and, for the build, Maven),
on 127.0.0.1 and free ports, with its home, data and log in a temp folder. The session stops it at
its end. With ``CI=true`` a node that cannot start fails the test; elsewhere the test is skipped.

The node has no security plugin: plain HTTP, no authentication.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ServiceUnavailable, SessionService, free_ports

ENV_URL = "DKDATA_ES_URL"
START_TIMEOUT_S = 180
BUILD_TIMEOUT_S = 900
STOP_TIMEOUT_S = 30
JVM_OPTS = ("-Xms512m", "-Xmx1g", "-Djava.net.preferIPv4Stack=true")

PROJECT = Path(__file__).resolve().parent / "opensearch"
REPO = PROJECT.parents[2]
BUILD = REPO / "target" / "opensearch"
#: Maven's local repository for this project only: a clean clone resolves from Central once,
#: a warm checkout builds offline.
M2 = REPO / "target" / "m2"
CLASSES = BUILD / "classes"
CLASSPATH = BUILD / "classpath.txt"
#: Holds the digest of the sources the current build was made from.
STAMP = BUILD / "sources.sha256"
LOG_NAME = "node.log"
#: Cluster settings every node started here gets once it is green (see _launch).
DEFAULTS = {"persistent": {"cluster.default_number_of_replicas": 0}}
#: Seconds from spawn to green of every node started in this process, for the run's summary.
START_TIMES: list[float] = []


@dataclass
class OpenSearchService:
    """Where the tests' node listens; ``stop`` ends a node this module started."""

    url: str
    #: Seconds from spawning the JVM to a green cluster (None: not started here).
    started_in: float | None = None
    root: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _argv: list[str] = field(default_factory=list, repr=False)

    def config(self, **extra: Any) -> dict[str, Any]:
        """Backend config (0.11.0's keys) for a fresh index on this node; ``extra`` is merged."""
        return {"hosts": [self.url], "index": f"t_{uuid.uuid4().hex}", **extra}

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        """One REST call straight to the node (no client library): ``body`` is JSON-encoded
        unless it is already bytes/str (NDJSON for ``_bulk``); returns the decoded JSON answer.
        An error status raises ``urllib.error.HTTPError`` with the node's answer as its reason."""
        return http_json(self.url, method, path, body, timeout)

    @property
    def owned(self) -> bool:
        """Whether this module started the node."""
        return self._proc is not None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def log_tail(self) -> str:
        return "" if self.root is None else _log_tail(self.root)

    def kill(self) -> None:
        """Ends the node at once (SIGKILL), keeping its data folder for ``restart``: what it
        acknowledged is in its translog, what it did not may be anywhere."""
        if self._proc is None:
            raise ServiceUnavailable("only a node started by the tests can be killed")
        _end(self._proc, signal.SIGKILL)

    def restart(self) -> None:
        """Starts a killed (or stopped-by-signal) node again on the same ports and data."""
        if self.root is None or not self._argv:
            raise ServiceUnavailable("only a node started by the tests can be restarted")
        if self._proc is not None and self._proc.poll() is None:
            _end(self._proc, signal.SIGTERM)
        self._proc = _launch(self._argv, self.url, self.root)

    def stop(self) -> None:
        """SIGTERM (the node closes and exits 0), a kill if it outlives the wait, and the temp
        folder removed."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc, signal.SIGTERM)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def http_json(url: str, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
    """``method path`` on the node at ``url``; see ``OpenSearchService.request``."""
    data: bytes | None
    if body is None:
        data, ctype = None, "application/json"
    elif isinstance(body, bytes | str):
        data = body.encode() if isinstance(body, str) else body
        ctype = "application/x-ndjson"
    else:
        data, ctype = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        # The node says what was wrong in the body; HTTPError's own text only has the status.
        detail = exc.read().decode("utf-8", "replace")
        raise urllib.error.HTTPError(exc.url, exc.code, detail, exc.headers, None) from None
    return json.loads(raw) if raw else None


def _from_url(url: str) -> OpenSearchService:
    return OpenSearchService(url=url.rstrip("/"))


def _tool(name: str, hint: str) -> str:
    # JAVA_HOME first, as Maven does, so the classes run on the JDK that compiled them.
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", name)
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise ServiceUnavailable(f"no `{name}` on PATH: {hint} or set {ENV_URL}")
    return found


def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in PROJECT.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(PROJECT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _built(digest: str) -> bool:
    try:
        return CLASSES.joinpath("Main.class").is_file() and STAMP.read_text() == digest
    except OSError:
        return False


def build() -> None:
    """Compiles the node's main and writes its runtime classpath, unless the stamp says the
    build is of the current sources. Offline first (a warm ``target/m2``), then from Central.
    Raises ServiceUnavailable with Maven's output."""
    digest = _sources_digest()
    if _built(digest):
        return
    mvn = _tool("mvn", "install Maven (Debian's maven package)")
    BUILD.mkdir(parents=True, exist_ok=True)
    # Two test processes of one checkout must not build into the same folder at once.
    with open(BUILD / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _built(digest):
            return
        argv = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(PROJECT / "pom.xml"),
            f"-Dmaven.repo.local={M2}",
            "compile",
            "dependency:build-classpath",
            f"-Dmdep.outputFile={CLASSPATH}",
        ]
        done = subprocess.run(
            [argv[0], "-o", *argv[1:]], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
        )
        if done.returncode != 0:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if done.returncode != 0 or not CLASSPATH.is_file():
            out = (done.stdout + done.stderr).strip()[-3000:]
            raise ServiceUnavailable(f"building the OpenSearch node failed (mvn):\n{out}")
        STAMP.write_text(digest)


def _log_tail(root: str) -> str:
    try:
        with open(os.path.join(root, LOG_NAME), encoding="utf-8", errors="replace") as f:
            return f.read()[-3000:]
    except OSError:
        return ""


def _wait_green(proc: subprocess.Popen[bytes], url: str, root: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    health = url + "/_cluster/health?wait_for_status=green&timeout=1s"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(
                f"the OpenSearch node exited {proc.returncode}:\n{_log_tail(root)}"
            )
        try:
            with urllib.request.urlopen(health, timeout=5) as resp:
                if json.loads(resp.read()).get("status") == "green":
                    return
        except (OSError, ValueError):
            # Not listening yet (refused), or listening but not green (408 from the wait).
            time.sleep(0.2)
    raise ServiceUnavailable(
        f"the OpenSearch node was not green within {START_TIMEOUT_S} s:\n{_log_tail(root)}"
    )


def _end(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Sends ``sig``, waits, and kills a JVM that outlives the wait."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
    if proc.stdin is not None:
        proc.stdin.close()


def _launch(argv: list[str], url: str, root: str) -> subprocess.Popen[bytes]:
    """Spawns the node (its output appended to the log in ``root``) and waits for green; a node
    that does not get there is killed."""
    log = open(os.path.join(root, LOG_NAME), "ab")  # noqa: SIM115 - the child owns it
    try:
        # stdin is a pipe the node watches: it ends when our end closes, even if we die unclean.
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=root
        )
    finally:
        log.close()
    try:
        _wait_green(proc, url, root)
        # One node: a replica could never be assigned, and an index created without settings
        # would stay yellow (and a restarted node never green). As a node setting 2.19 shows
        # this default but does not apply it; as a persistent cluster setting it does.
        http_json(url, "PUT", "/_cluster/settings", DEFAULTS)
    except BaseException:
        _end(proc, signal.SIGKILL)
        raise
    return proc


def start_node() -> OpenSearchService:
    """Builds (if needed) and starts one node on free 127.0.0.1 ports in a fresh temp folder,
    waits for green, and prints the start time once; raises ServiceUnavailable."""
    build()
    java = _tool("java", "install a JDK 17 (Debian's openjdk-17-jdk-headless)")
    classpath = f"{CLASSES}{os.pathsep}{CLASSPATH.read_text().strip()}"
    root = tempfile.mkdtemp(prefix="dkdata-os-")
    http_port, transport_port = free_ports(2)
    url = f"http://127.0.0.1:{http_port}"
    argv = [java, *JVM_OPTS, "-cp", classpath, "Main", root, str(http_port), str(transport_port)]
    argv.append("--exit-on-stdin-eof")
    began = time.monotonic()
    try:
        proc = _launch(argv, url, root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    started_in = time.monotonic() - began
    START_TIMES.append(started_in)
    print(f"opensearch: green in {started_in:.1f} s ({url})", file=sys.stderr)
    return OpenSearchService(url=url, started_in=started_in, root=root, _proc=proc, _argv=argv)


_session = SessionService("OpenSearch", ENV_URL, _from_url, start_node)


def service() -> OpenSearchService:
    """The session's node, started on first call (see SessionService)."""
    return _session.get()


def stop() -> None:
    """Stop the node this session started (a DKDATA_ES_URL node is left alone)."""
    _session.stop()
