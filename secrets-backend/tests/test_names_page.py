"""The plugin's parts that need no Airflow: reading the names lookup (cache for the backend's
TTL, then revalidation by ETag; errors never carry the token) and the page's HTML (everything
escaped, links only to envmanager's own pages). Against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from envmanager_secrets import EnvManagerSecretsBackend
from envmanager_secrets.backend import EnvManagerBackendError
from envmanager_secrets.names import NamesCache
from envmanager_secrets.page import envmanager_link, render_page

TOKEN = "tok-NAMES-SECRET-456"
DOCUMENT = {
    "deployment": {"id": 3, "name": "production", "path": "/deployments/3/environment/"},
    "workspace": {"id": 1, "name": "Data Platform"},
    "connections": [
        {
            "key": "warehouse",
            "source": "OVERRIDE",
            "overriddenFields": ["host", "password"],
            "objectId": 7,
            "path": "/workspaces/1/environment/7/",
            "isSecret": False,
            "connType": "postgres",
            "host": "prod-db.internal",
        }
    ],
    "variables": [
        {
            "key": "mode",
            "source": "WORKSPACE",
            "overriddenFields": [],
            "objectId": 8,
            "path": "/workspaces/1/environment/8/",
            "isSecret": False,
        }
    ],
    "environmentVariables": [
        {
            "key": "API_TOKEN",
            "source": "DEPLOYMENT",
            "overriddenFields": [],
            "objectId": 9,
            "path": "/deployments/3/environment/9/",
            "isSecret": True,
        }
    ],
    "metricsExports": [],
}


class NamesServer:
    """Answers the names lookup with `document` and an ETag, 304 when it matches; `status`
    forces an answer."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = json.loads(json.dumps(DOCUMENT))
        self.etag = '"v1"'
        self.status: int | None = None
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(dict(self.headers))
                status, body = 200, json.dumps(server.document).encode()
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, body = 401, b'{"message": "no"}'
                elif self.path != "/api/v1/lookup/names":
                    status, body = 404, b'{"message": "no route"}'
                elif server.status:
                    status, body = server.status, b'{"message": "forced"}'
                elif self.headers.get("If-None-Match") == server.etag:
                    status, body = 304, b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status in (200, 304):
                    self.send_header("ETag", server.etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server():
    srv = NamesServer()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def backend(server: NamesServer, **kw: Any) -> EnvManagerSecretsBackend:
    return EnvManagerSecretsBackend(base_url=server.base_url, token=kw.pop("token", TOKEN), **kw)


def test_names_are_kept_for_the_backends_ttl(server):
    cache = NamesCache()
    b = backend(server, cache_ttl=60)
    first, read_at = cache.get(b)
    assert first == DOCUMENT
    assert cache.get(b) == (first, read_at)
    assert len(server.requests) == 1
    assert server.requests[0]["Authorization"] == f"Bearer {TOKEN}"


def test_after_the_ttl_names_are_revalidated_by_etag(server):
    cache = NamesCache()
    b = backend(server, cache_ttl=0)
    first, _ = cache.get(b)
    again, _ = cache.get(b)
    assert again == first
    assert server.requests[1]["If-None-Match"] == '"v1"'  # answered 304: kept
    server.document["variables"] = []
    server.etag = '"v2"'
    changed, _ = cache.get(b)
    assert changed["variables"] == []


@pytest.mark.parametrize(
    ("status", "says"),
    [(401, "token rejected"), (500, "HTTP 500"), (404, "HTTP 404"), (200, "unexpected")],
)
def test_a_failed_names_lookup_is_an_error_without_the_token(server, status, says):
    if status == 401:
        b = backend(server, token="tok-WRONG-SECRET")
    elif status == 404:
        b = EnvManagerSecretsBackend(base_url=server.base_url + "/elsewhere", token=TOKEN)
    else:
        b = backend(server)
        if status == 200:
            server.document = {"not": "the names document"}
        else:
            server.status = status
    with pytest.raises(EnvManagerBackendError) as info:
        NamesCache().get(b)
    assert says in str(info.value)
    assert TOKEN not in str(info.value) and "SECRET" not in str(info.value)


def test_an_unreachable_server_is_an_error(server):
    b = backend(server, timeout=0.5, connect_timeout=0.5)
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(EnvManagerBackendError, match="ConnectionError"):
        NamesCache().get(b)


def test_the_page_lists_keys_sources_and_shadowed_rows():
    html = render_page(
        document=DOCUMENT,
        shadowed={"connections": {"warehouse"}, "variables": set()},
        ui_url="https://envmanager.example.com/",
        read_at=0,
        cache_ttl=10,
    )
    assert "<code>warehouse</code>" in html and "prod-db.internal" in html
    assert "Workspace object with a Deployment override</span> overrides" in html
    assert "<code>host</code>, <code>password</code>" in html
    assert "shadows the metastore connection" in html
    assert html.count("shadows the metastore") == 1  # mode has no metastore row
    assert 'href="https://envmanager.example.com/workspaces/1/environment/7/"' in html
    assert 'href="https://envmanager.example.com/deployments/3/environment/"' in html
    assert "Metrics exports <span" in html and "None from envmanager." in html
    assert '<span class="badge secret">secret</span>' in html  # API_TOKEN
    assert "<script" not in html  # without a nonce, no script


def test_the_page_escapes_what_the_server_sends():
    hostile = json.loads(json.dumps(DOCUMENT))
    hostile["deployment"]["name"] = "<img src=x onerror=alert(1)>"
    entry = hostile["connections"][0]
    entry.update(key='"><script>alert(1)</script>', host="<b>h</b>", path="javascript:alert(1)")
    hostile["variables"][0]["path"] = "//evil.example.com/x"
    hostile["variables"][0]["overriddenFields"] = ["<i>x</i>"]
    hostile["variables"][0]["source"] = "OVERRIDE"
    html = render_page(document=hostile, shadowed={}, ui_url="https://envmanager.example.com")
    assert "<script>alert" not in html and "<img" not in html and "<b>h" not in html
    assert "<i>x" not in html and "&lt;i&gt;x&lt;/i&gt;" in html
    assert "javascript:" not in html and "evil.example.com" not in html


def test_links_go_only_to_envmanagers_own_pages():
    base = "https://em.example.com/"
    assert envmanager_link(base, "/workspaces/1/") == "https://em.example.com/workspaces/1/"
    for path in ("//evil/x", "https://evil/x", "javascript:x", "/a\\b", "/a b", None, 3):
        assert envmanager_link(base, path) is None
    assert envmanager_link("javascript:alert(1)", "/x") is None


def test_a_nonce_adds_the_one_script():
    html = render_page(document=DOCUMENT, shadowed={}, ui_url="http://x", nonce="abc")
    assert '<script nonce="abc">' in html and "window.top.open" in html
