"""The HTTP side of the Hub stand-in (``hub_server.py``): a threaded server on 127.0.0.1 that hands each request to
a :class:`~hub_server.FakeHub`; ``fake_hub()`` runs it for the length of a ``with`` block."""

from __future__ import annotations

import contextlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
from typing import Any, Iterator
import urllib.parse

from hub_server import MAX_BODY, SOCKET_TIMEOUT_S, FakeHub, HubError, Request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S  # socket timeout: an idle or stuck client cannot hold a thread forever
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise HubError(413, "Body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise HubError(413, "Body too large")
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        hub = self.server.hub
        parsed = urllib.parse.urlsplit(self.path)
        request = Request(
            self.command,
            urllib.parse.unquote(parsed.path),
            urllib.parse.parse_qs(parsed.query),
            {k.lower(): v for k, v in self.headers.items()},
            b"",
        )
        with hub.lock:
            hub.requests.append(request)
        headers: dict[str, str] = {}
        try:
            request.body = self._read_body()
            status, headers, payload = hub.handle(request)
        except HubError as error:
            status, payload = error.status, {"error": error.message}
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self.close_connection = True
        except Exception as error:  # a bug here must fail the client at once: a 4xx is not retried, a 5xx is
            status, payload = 400, {"error": f"fake Hub failure: {type(error).__name__}: {error}"}
            headers = {"X-Error-Message": payload["error"]}
            self.close_connection = True
        request.status = status
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never wait on a client's open keep-alive connection when stopping
    allow_reuse_address = False

    def __init__(self, hub: FakeHub):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub


@contextlib.contextmanager
def fake_hub() -> Iterator[FakeHub]:
    """Runs a fake Hub on 127.0.0.1 (free port) for the duration of the block; yields its state (``.url``...)."""
    hub = FakeHub()
    server = _Server(hub)
    host, port = server.server_address[:2]
    hub.url = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="fake-hub")
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
