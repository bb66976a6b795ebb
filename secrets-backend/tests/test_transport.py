"""The lookup's transport: kept-alive connections, a server that closes them, proxies, TLS."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_lookup_server import FakeLookupServer

from envmanager_secrets import EnvManagerSecretsBackend
from envmanager_secrets.backend import EnvManagerBackendError

TOKEN = "tok-SECRET-transport"


@pytest.fixture
def keep_alive_server():
    srv = FakeLookupServer(token=TOKEN, keep_alive=True).start()
    yield srv
    srv.stop()


def backend_for(base_url: str, **kw: Any) -> EnvManagerSecretsBackend:
    return EnvManagerSecretsBackend(base_url=base_url, token=TOKEN, cache_ttl=0, **kw)


def test_lookups_reuse_one_connection_where_the_server_keeps_it_alive(keep_alive_server):
    keep_alive_server.variables.update({f"v{i}": str(i) for i in range(20)})
    backend = backend_for(keep_alive_server.base_url)
    assert [backend.get_variable(f"v{i}") for i in range(20)] == [str(i) for i in range(20)]
    assert len(keep_alive_server.requests) == 20
    assert keep_alive_server.connections_opened == 1


def test_a_server_that_closes_after_each_answer_gets_a_new_connection_each_time():
    srv = FakeLookupServer(token=TOKEN).start()  # HTTP/1.0, as gunicorn's sync workers
    try:
        srv.variables["v"] = "x"
        backend = backend_for(srv.base_url)
        assert [backend.get_variable("v") for _ in range(5)] == ["x"] * 5
        assert len(srv.requests) == 5 and srv.connections_opened == 5
    finally:
        srv.stop()


def test_a_kept_alive_connection_the_server_dropped_is_replaced_without_a_failed_attempt(
    keep_alive_server,
):
    keep_alive_server.variables["v"] = "x"
    backend = backend_for(keep_alive_server.base_url)
    assert backend.get_variable("v") == "x"
    # The server closes the idle connection (its keep-alive timeout, a restart).
    keep_alive_server.drop_connections()
    time.sleep(0.05)
    keep_alive_server.variables["v"] = "y"
    started = time.monotonic()
    assert backend.get_variable("v") == "y"
    # No retry pause (0.1 s) was taken: the stale socket is not an attempt.
    assert time.monotonic() - started < 0.1
    assert len(keep_alive_server.requests) == 2
    assert keep_alive_server.connections_opened == 2


def test_a_hung_kept_alive_server_times_out_once_per_attempt(keep_alive_server):
    """The read timeout on a kept connection is a failed attempt, not a reason to reconnect
    and wait again: three attempts cost three timeouts (plus pauses), not six."""
    keep_alive_server.variables["v"] = "x"
    backend = backend_for(keep_alive_server.base_url, timeout=0.3, total_timeout=30)
    assert backend.get_variable("v") == "x"
    keep_alive_server.delay = 2
    started = time.monotonic()
    with pytest.raises(EnvManagerBackendError) as err:
        backend.get_variable("v")
    took = time.monotonic() - started
    assert "ReadTimeout" in str(err.value) and TOKEN not in str(err.value)
    assert 0.9 < took < 1.6, took  # 3 × 0.3 s + 0.1 s + 0.3 s of pauses


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself and records the absolute URI."""

    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.seen.append((self.path, self.headers.get("Authorization")))
        raw = b'{"value": "through-the-proxy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


def test_lookups_go_through_the_proxy_the_environment_names(monkeypatch):
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        backend = backend_for("http://envmanager.example.invalid")
        assert backend.get_variable("v") == "through-the-proxy"
        assert _Proxy.seen == [
            ("http://envmanager.example.invalid/api/v1/lookup/variables/v", f"Bearer {TOKEN}")
        ]
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate):
    srv = FakeLookupServer(token=TOKEN, keep_alive=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    srv._httpd.socket = context.wrap_socket(srv._httpd.socket, server_side=True)
    srv.start()
    srv.variables["v"] = "over-tls"
    yield srv, "https://localhost:" + srv.base_url.rsplit(":", 1)[1]
    srv.stop()


def test_https_is_verified_against_the_ca_bundle_requests_would_use(
    tls_server, certificate, monkeypatch
):
    srv, url = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    backend = backend_for(url)
    assert [backend.get_variable("v") for _ in range(3)] == ["over-tls"] * 3
    assert srv.connections_opened == 1


def test_https_with_a_certificate_nobody_trusts_fails_the_lookup(tls_server, monkeypatch):
    srv, url = tls_server
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(EnvManagerBackendError) as err:
        backend_for(url).get_variable("v")
    assert "ConnectionError" in str(err.value) and TOKEN not in str(err.value)
    assert srv.requests == []
