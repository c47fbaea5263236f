"""An HTTP proxy on 127.0.0.1 between the S3 client and a real server, for the fault tests.

It forwards one request at a time per connection and can add latency, answer some requests
``503 SlowDown`` itself (throttling: those never reach the server), or forward only the first N
requests and then act as a server that went away (connections refused and cut). Because the
proxy decides, the tests know exactly which requests reached the server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse

SLOW_DOWN = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FaultProxy:
    """Forwards to ``upstream`` (``http://host:port``); see the module docstring."""

    def __init__(self, upstream: str) -> None:
        url = urllib.parse.urlparse(upstream)
        self._upstream = (url.hostname or "127.0.0.1", url.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        #: Seconds added before each request is forwarded.
        self.delay = 0.0
        #: Answer every n-th request with 503 SlowDown (0: never).
        self.throttle_every = 0
        #: Forward this many requests, then refuse everything (None: no limit).
        self.fail_after: int | None = None
        self.seen = 0
        self.forwarded = 0
        self.throttled = 0
        self._lock = threading.Lock()
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def down(self) -> bool:
        return self.fail_after is not None and self.forwarded >= self.fail_after

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

    def _decide(self) -> str:
        with self._lock:
            self.seen += 1
            if self.fail_after is not None and self.forwarded >= self.fail_after:
                return "down"
            if self.throttle_every and self.seen % self.throttle_every == 0:
                self.throttled += 1
                return "throttle"
            self.forwarded += 1
            return "forward"

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                request, buf = _read_request(conn, buf)
                if request is None:
                    return
                verdict = self._decide()
                if verdict == "down":
                    _cut(conn)
                    return
                if verdict == "throttle":
                    conn.sendall(
                        b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                        + f"Content-Length: {len(SLOW_DOWN)}\r\n\r\n".encode()
                        + SLOW_DOWN
                    )
                    continue
                if self.delay:
                    time.sleep(self.delay)
                conn.sendall(self._forward(request))
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
