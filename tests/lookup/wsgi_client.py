"""Requests through `envmanager.wsgi.application`, the entry gunicorn serves, in process: the
lookup fast path in front of Django, as production runs it."""

import io
import json
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from envmanager.wsgi import application, django_application


@dataclass
class WsgiResponse:
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self):
        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]


def wsgi_request(
    method: str, path: str, headers: dict[str, str] | None = None, *, django=False, **environ
):
    """`headers` as HTTP names (`Authorization`), `environ` as WSGI keys (`wsgi.url_scheme`).
    With `django`, straight to Django's WSGI handler, past the lookup fast path."""
    base = {
        "REQUEST_METHOD": method,
        # As a server hands it over: percent-decoded bytes as latin-1 text.
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    for name, value in (headers or {}).items():
        base[f"HTTP_{name.upper().replace('-', '_')}"] = value
    base.update(environ)
    started: list = []

    def start_response(status, response_headers, exc_info=None):
        started.append((int(status.split()[0]), response_headers))

    # As Django's test client does: the test's transaction holds the connection open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = (django_application if django else application)(base, start_response)
        try:
            content = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    status, response_headers = started[0]
    return WsgiResponse(status, content, {k.lower(): v for k, v in response_headers})
