"""Unit tests for EnvManagerSecretsBackend against a real local HTTP server (no Airflow needed)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from fake_lookup_server import FakeLookupServer

from envmanager_secrets import EnvManagerSecretsBackend
from envmanager_secrets.backend import EnvManagerBackendError

TOKEN = "tok-SECRET-123"
CONN = {
    "conn_type": "postgres",
    "description": "main db",
    "host": "db.example.com",
    "login": "alice",
    "password": "p@ss",
    "schema": "public",
    "port": 5432,
    "extra": {"sslmode": "require"},
}


@pytest.fixture
def server():
    srv = FakeLookupServer(token=TOKEN).start()
    yield srv
    srv.stop()


def make_backend(server: FakeLookupServer, **kw) -> EnvManagerSecretsBackend:
    kw.setdefault("cache_ttl", 0)
    return EnvManagerSecretsBackend(base_url=server.base_url + "/", token=TOKEN, **kw)


def test_connection_hit_returns_json_string_with_exactly_the_airflow_keys(server):
    server.connections["db"] = {**CONN, "conn_id": "db", "id": 7}  # extra keys dropped
    value = make_backend(server).get_conn_value("db")
    assert isinstance(value, str)
    assert json.loads(value) == CONN
    assert server.requests[0]["path"] == "/api/v1/lookup/connections/db"


def test_variable_hit(server):
    server.variables["answer"] = "42"
    assert make_backend(server).get_variable("answer") == "42"
    assert server.requests[0]["path"] == "/api/v1/lookup/variables/answer"


def test_404_is_none(server):
    backend = make_backend(server)
    assert backend.get_conn_value("nope") is None
    assert backend.get_variable("nope") is None
    assert backend.get_config("anything") is None
    assert len(server.requests) == 2  # get_config makes no request


def test_a_404_without_our_error_body_is_an_error_not_a_miss(server):
    """A mistyped base_url (or a proxy's page) answers 404 for every path: that must fail the
    lookup, not fall through to stale metastore rows as a miss would."""
    wrong = EnvManagerSecretsBackend(
        base_url=server.base_url + "/not-envmanager/", token=TOKEN, cache_ttl=0
    )
    for lookup in (lambda: wrong.get_conn_value("c"), lambda: wrong.get_variable("v")):
        with pytest.raises(EnvManagerBackendError) as err:
            lookup()
        assert "base_url" in str(err.value) and TOKEN not in str(err.value)


def test_token_sent_as_bearer(server):
    server.variables["v"] = "x"
    make_backend(server).get_variable("v")
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_500_is_retried_then_raises_without_token_or_body(server):
    server.status = 500
    with pytest.raises(EnvManagerBackendError) as err:
        make_backend(server).get_conn_value("db")
    assert len(server.requests) == 3
    msg = str(err.value)
    assert "/api/v1/lookup/connections/db" in msg and "500" in msg
    assert TOKEN not in msg and "BODY-SECRET" not in msg
    assert isinstance(err.value, RuntimeError)


def test_server_error_is_not_cached_as_miss(server):
    backend = make_backend(server, cache_ttl=60)
    server.status = 503
    with pytest.raises(EnvManagerBackendError):
        backend.get_variable("v")
    server.status = None
    server.variables["v"] = "ok"
    assert backend.get_variable("v") == "ok"


def test_timeout_raises(server):
    server.delay = 0.5
    started = time.monotonic()
    with pytest.raises(EnvManagerBackendError) as err:
        make_backend(server, timeout=0.1).get_variable("slow")
    assert "Timeout" in str(err.value) and TOKEN not in str(err.value)
    assert time.monotonic() - started < 2


def test_a_hung_server_costs_a_lookup_at_most_its_total_timeout(server):
    """Three attempts of a 5 s read timeout would stall a task 15 s; the total bound stops the
    lookup (all attempts together) after total_timeout."""
    server.delay = 3
    started = time.monotonic()
    with pytest.raises(EnvManagerBackendError) as err:
        make_backend(server, timeout=5, total_timeout=1).get_variable("slow")
    took = time.monotonic() - started
    assert 0.9 < took < 1.8, took
    assert "Timeout" in str(err.value) and TOKEN not in str(err.value)


def test_the_time_bounds_come_from_airflow_config_as_text(server):
    server.variables["v"] = "x"
    backend = make_backend(server, connect_timeout="0.5", total_timeout="3", timeout="1")
    assert (backend.connect_timeout, backend.total_timeout, backend.timeout) == (0.5, 3.0, 1.0)
    assert backend.get_variable("v") == "x"


def test_connection_refused_raises():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = EnvManagerSecretsBackend(base_url=f"http://127.0.0.1:{port}", token=TOKEN)
    with pytest.raises(EnvManagerBackendError) as err:
        backend.get_conn_value("db")
    assert "ConnectionError" in str(err.value) and TOKEN not in str(err.value)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_token_raises_without_retry(server, status):
    server.status = status
    with pytest.raises(EnvManagerBackendError, match="token rejected") as err:
        make_backend(server).get_conn_value("db")
    assert TOKEN not in str(err.value)
    assert len(server.requests) == 1


def test_wrong_token_raises(server):
    backend = EnvManagerSecretsBackend(base_url=server.base_url, token="wrong")
    with pytest.raises(EnvManagerBackendError, match="401"):
        backend.get_variable("v")


def test_cache_serves_within_ttl_and_refetches_after(server):
    server.connections["db"] = CONN
    backend = make_backend(server, cache_ttl=0.2)
    first = backend.get_conn_value("db")
    assert backend.get_conn_value("db") == first
    assert len(server.requests) == 1
    time.sleep(0.25)  # past the TTL even with +10 % jitter
    server.connections["db"] = {**CONN, "host": "new.example.com"}
    assert json.loads(backend.get_conn_value("db"))["host"] == "new.example.com"
    assert len(server.requests) == 2


def test_cache_keeps_misses_and_separates_kinds(server):
    backend = make_backend(server, cache_ttl=0.2)
    assert backend.get_variable("same") is None
    server.variables["same"] = "now here"
    assert backend.get_variable("same") is None  # cached miss
    assert backend.get_conn_value("same") is None  # other kind: its own request
    assert len(server.requests) == 2
    time.sleep(0.25)
    assert backend.get_variable("same") == "now here"


def test_cache_is_bounded(server, monkeypatch):
    monkeypatch.setattr("envmanager_secrets.backend.MAX_CACHE_ENTRIES", 3)
    backend = make_backend(server, cache_ttl=60)
    for key in "abcd":
        backend.get_variable(key)
    assert len(backend._cache) == 3
    backend.get_variable("a")  # the oldest was dropped, so this is fetched again
    assert len(server.requests) == 5


@pytest.mark.parametrize(
    ("conn_id", "quoted"),
    [
        ("a/b", "a%2Fb"),
        ("with space", "with%20space"),
        ("café ☃", "caf%C3%A9%20%E2%98%83"),
        ("q?x#y", "q%3Fx%23y"),
    ],
)
def test_ids_are_url_quoted(server, conn_id, quoted):
    server.connections[conn_id] = CONN
    assert json.loads(make_backend(server).get_conn_value(conn_id)) == CONN
    assert server.requests[0]["path"] == f"/api/v1/lookup/connections/{quoted}"


def test_kwargs_from_airflow_config():
    # Per-key env overrides hand over strings; unknown keys are ignored.
    backend = EnvManagerSecretsBackend(
        base_url="http://x", token="t", timeout="2.5", cache_ttl="0", region="eu"
    )
    assert backend.timeout == 2.5 and backend.cache_ttl == 0
    assert EnvManagerSecretsBackend(base_url="http://x", token="t").timeout == 5


def test_unexpected_200_body_is_an_error(server):
    server.status = 200  # the fake then answers a body without "value"
    with pytest.raises(EnvManagerBackendError, match="unexpected"):
        make_backend(server).get_variable("v")
