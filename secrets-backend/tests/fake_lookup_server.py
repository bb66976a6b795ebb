"""A tiny stand-in for envmanager's lookup API, for tests and manual checks against Airflow.

Use it in-process (``FakeLookupServer``) or as a script::

    python fake_lookup_server.py --port 8765 --token T --data data.json

where data.json is ``{"connections": {id: {...}}, "variables": {key: "value"}}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

PREFIX = "/api/v1/lookup/"


class FakeLookupServer:
    """Serves ``connections`` / ``variables``; ``status`` and ``delay`` force failures."""

    def __init__(
        self,
        token: str = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        keep_alive: bool = False,
    ):
        self.token = token
        # HTTP/1.1 keeps each client's connection open between requests (as gunicorn's gthread
        # workers do); HTTP/1.0 closes it after every answer (as its sync workers do).
        self.keep_alive = keep_alive
        self.connections_opened = 0
        self._sockets: list[Any] = []
        self.connections: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, str] = {}
        # What /api/v1/lookup/environment answers (the whole document, as envmanager builds it).
        self.environment: dict[str, Any] = {
            "connections": {},
            "variables": {},
            "environmentVariables": {},
            "dotenv": "",
            "metricsExports": {},
        }
        self.status: int | None = None  # when set, every request gets this status
        self.delay = 0.0  # seconds to sleep before answering (timeouts)
        self.requests: list[dict[str, Any]] = []  # raw path and headers of each request
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeLookupServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def drop_connections(self) -> None:
        """Close every client connection from the server's side (an idle timeout, a restart)."""
        for sock in self._sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)
        self._sockets.clear()

    def _answer(self, path: str, auth: str | None) -> tuple[int, Any]:
        if self.delay:
            time.sleep(self.delay)
        if self.status is not None:
            return self.status, {"message": "forced", "secret": "BODY-SECRET"}
        if auth != f"Bearer {self.token}":
            return 401, {"message": "bad token"}
        if path == PREFIX + "environment":
            return 200, self.environment
        if not path.startswith(PREFIX) or path.count("/") != 5:
            return 404, {"message": "no route"}
        kind, key = path[len(PREFIX) :].split("/")
        key = unquote(key)
        if kind == "connections" and key in self.connections:
            return 200, self.connections[key]
        if kind == "variables" and key in self.variables:
            return 200, {"value": self.variables[key]}
        return 404, {
            "message": "not found",
            "statusCode": 404,
            "requestId": "fake",
            "fieldErrors": [],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if server.keep_alive else "HTTP/1.0"

            def setup(self) -> None:
                server.connections_opened += 1
                server._sockets.append(self.request)
                super().setup()

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                server.requests.append({"path": self.path, "headers": dict(self.headers)})
                status, body = server._answer(self.path, self.headers.get("Authorization"))
                raw = json.dumps(body).encode()
                etag = None
                if status == 200 and self.path == PREFIX + "environment":
                    # As envmanager: an ETag of the document; If-None-Match with it is a 304.
                    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
                    if self.headers.get("If-None-Match") == etag:
                        status, raw = 304, b""
                try:
                    self.send_response(status)
                    if etag:
                        self.send_header("ETag", etag)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

            def log_message(self, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--data", help="JSON file with 'connections' and 'variables'")
    args = parser.parse_args()
    srv = FakeLookupServer(token=args.token, port=args.port)
    if args.data:
        with open(args.data) as f:
            data = json.load(f)
        srv.connections = data.get("connections", {})
        srv.variables = data.get("variables", {})
    print(srv.base_url, flush=True)
    srv._httpd.serve_forever()


if __name__ == "__main__":
    main()
