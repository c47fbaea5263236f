"""An HTTP proxy on 127.0.0.1 between a client and a real server, for the fault tests (S3 and
search alike).

It forwards one request at a time per connection and can add latency, answer chosen requests
itself (throttling with 429/503: those never reach the server), or forward only the first N
requests and then act as a server that went away (connections refused and cut). Because the
proxy decides, the tests know exactly which requests reached the server: ``history`` lists every
request with what was done with it.

Bodies are read by ``Content-Length`` (what the clients under test send); a chunked request body
is not supported.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """A response the proxy sends instead of forwarding."""

    status: int
    reason: str
    body: bytes = b""
    content_type: str = "application/json"

    def encode(self) -> bytes:
        return (
            f"HTTP/1.1 {self.status} {self.reason}\r\nContent-Type: {self.content_type}\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        ).encode() + self.body


#: S3's throttling answer.
SLOW_DOWN = Reply(
    503,
    "Slow Down",
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>",
    "application/xml",
)
#: OpenSearch's / Elasticsearch's answer when a node rejects work (its write queue is full).
TOO_MANY_REQUESTS = Reply(
    429,
    "Too Many Requests",
    b'{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected '
    b'by the test proxy"}],"type":"es_rejected_execution_exception","reason":"rejected by the '
    b'test proxy"},"status":429}',
)
#: A search node that is not ready to serve.
UNAVAILABLE = Reply(
    503,
    "Service Unavailable",
    b'{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"unavailable (test '
    b'proxy)"}],"type":"cluster_block_exception","reason":"unavailable (test proxy)"},'
    b'"status":503}',
)


@dataclass(frozen=True)
class Request:
    """One request the proxy received."""

    method: str
    #: The request target as sent: path and query string.
    target: str
    body: bytes
    #: The request's header lines as (lowercased name, value), in order.
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((v for n, v in self.headers if n == wanted), None)


class FaultProxy:
    """Forwards to ``upstream`` (``http://host:port``); see the module docstring."""

    def __init__(self, upstream: str) -> None:
        url = urllib.parse.urlparse(upstream)
        self._upstream = (url.hostname or "127.0.0.1", url.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        #: Seconds added before each request is forwarded.
        self.delay = 0.0
        #: Answer every n-th request with ``throttle_reply`` (0: never).
        self.throttle_every = 0
        self.throttle_reply = SLOW_DOWN
        #: Forward this many requests, then refuse everything (None: no limit).
        self.fail_after: int | None = None
        self.seen = 0
        self.forwarded = 0
        self.throttled = 0
        #: Every request received, with what was done: "forward", "throttle", "reject", "down".
        self.history: list[tuple[Request, str]] = []
        self._rejects: list[tuple[Callable[[Request], bool], Reply, list[int]]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def down(self) -> bool:
        return self.fail_after is not None and self.forwarded >= self.fail_after

    def reject(
        self, reply: Reply, times: int = 1, where: Callable[[Request], bool] | None = None
    ) -> None:
        """Answer the next ``times`` requests for which ``where`` holds (all, without it) with
        ``reply`` instead of forwarding them. Several rules apply in the order they were set."""
        with self._lock:
            self._rejects.append((where or (lambda _r: True), reply, [times]))

    def count(
        self, verdict: str | None = None, where: Callable[[Request], bool] | None = None
    ) -> int:
        """How many requests got ``verdict`` (any, without it) and match ``where``."""
        with self._lock:
            return sum(
                1
                for r, v in self.history
                if (verdict is None or v == verdict) and (where is None or where(r))
            )

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for c in self._conns:
                _cut(c)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _decide(self, request: Request) -> tuple[str, Reply | None]:
        with self._lock:
            self.seen += 1
            verdict, reply = "forward", None
            if self.fail_after is not None and self.forwarded >= self.fail_after:
                verdict = "down"
            elif self.throttle_every and self.seen % self.throttle_every == 0:
                self.throttled += 1
                verdict, reply = "throttle", self.throttle_reply
            else:
                for where, rule_reply, left in self._rejects:
                    if left[0] > 0 and where(request):
                        left[0] -= 1
                        verdict, reply = "reject", rule_reply
                        break
            if verdict == "forward":
                self.forwarded += 1
            self.history.append((request, verdict))
            return verdict, reply

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                raw, buf = _read_request(conn, buf)
                if raw is None:
                    return
                verdict, reply = self._decide(_parse(raw))
                if verdict == "down":
                    _cut(conn)
                    return
                if reply is not None:
                    conn.sendall(reply.encode())
                    continue
                if self.delay:
                    time.sleep(self.delay)
                conn.sendall(self._forward(raw))
        except OSError:
            return
        finally:
            _cut(conn)

    def _forward(self, request: bytes) -> bytes:
        head, _, body = request.partition(b"\r\n\r\n")
        lines = [
            line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")
        ]
        lines.append(b"Connection: close")
        with socket.create_connection(self._upstream, timeout=60) as up:
            up.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            chunks = []
            while chunk := up.recv(65536):
                chunks.append(chunk)
        response = b"".join(chunks)
        # The upstream closed after one response; the client may keep its connection.
        rhead, sep, rbody = response.partition(b"\r\n\r\n")
        kept = [
            line for line in rhead.split(b"\r\n") if not line.lower().startswith(b"connection:")
        ]
        return b"\r\n".join(kept) + sep + rbody


def _parse(raw: bytes) -> Request:
    head, _, body = raw.partition(b"\r\n\r\n")
    method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
    target = rest.rpartition(b" ")[0] or rest
    headers = tuple(
        (name.strip().lower().decode("latin-1"), value.strip().decode("latin-1"))
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    )
    return Request(method.decode("latin-1"), target.decode("latin-1"), body, headers)


def _cut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def _read_request(conn: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
    """One whole request (head and Content-Length body) and what followed it."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]
