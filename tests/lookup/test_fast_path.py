"""The lookup fast path in front of Django (`envmanager.wsgi.application`): what it answers
itself, what it leaves to Django, and how it behaves when the database goes away. The
answers themselves are checked through both paths in test_lookup.py."""

import socket
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from deployments.models import LookupCount
from deployments.services import deployment_token_create
from envmanager.lookups import lookup_counter
from envmanager.services import environment_object_create
from tests.lookup.wsgi_client import wsgi_request


@pytest.fixture
def token(team):
    for key, values in {
        "warehouse": {"conn_type": "postgres", "host": "db", "password": "fast-path-secret-1"},
        "team/a:b#1": {"conn_type": "http", "host": "h"},
    }.items():
        environment_object_create(
            user=team.operator,
            workspace=team.workspace,
            object_type="CONNECTION",
            key=key,
            values=values,
            scope="DEPLOYMENT",
            deployment=team.deployment,
        )
    _, plain = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    return plain


def lookup(token: str, key: str = "warehouse", **kwargs):
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return wsgi_request("GET", f"/api/v1/lookup/connections/{key}", headers, **kwargs)


def test_answers_without_django_middleware_and_marks_secrets_uncacheable(token):
    response = lookup(token)
    assert response.status_code == 200
    assert response.json()["password"] == "fast-path-secret-1"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json"
    assert int(response["Content-Length"]) == len(response.content)
    # Django's middleware sets a CSP on every response it handles: this one never went there.
    assert "content-security-policy" not in response.headers


def test_keys_with_slashes_and_hashes_percent_encoded(token):
    assert lookup(token, "team%2Fa%3Ab%231").json()["host"] == "h"


def test_an_unauthorised_lookup_says_how_to_authenticate(token):
    response = lookup("emd_not-a-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["message"] == "A valid Deployment token is required."


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_djangos_answer(token, method):
    # HEAD is served as GET is (tests/lookup/test_lookup.py); the rest is Django's 405.
    response = wsgi_request(
        method, "/api/v1/lookup/connections/warehouse", {"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 405
    assert "content-security-policy" in response.headers
    assert b"fast-path-secret-1" not in response.content


def test_a_key_that_is_not_utf8_is_left_to_django(token):
    response = lookup(token, "%ff%fe")
    assert response.status_code == 404
    assert "content-security-policy" in response.headers  # Django answered


def test_a_host_django_would_refuse_is_refused(token):
    response = lookup(token, headers={"Host": "evil.example.com"})
    assert response.status_code == 400
    assert b"fast-path-secret-1" not in response.content


def test_https_only_leaves_plain_http_to_django_and_sends_hsts(token, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Plain HTTP is left to Django, whose SecurityMiddleware redirects it (it reads the setting
    # once at start, so here, with the setting changed afterwards, it does not).
    assert "content-security-policy" in lookup(token).headers
    over_https = lookup(token, headers={"X-Forwarded-Proto": "https"})
    assert over_https.status_code == 200
    assert over_https["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    proxy_says_http = lookup(
        token, headers={"X-Forwarded-Proto": "http"}, **{"wsgi.url_scheme": "https"}
    )
    assert "content-security-policy" in proxy_says_http.headers


@pytest.mark.postgresql  # PostgreSQL ends a session from the server side; SQLite has none
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_is_replaced_within_the_lookup(token):
    assert lookup(token).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    with psycopg.connect(
        host=params.get("host", ""),
        port=params.get("port", ""),
        user=params["user"],
        dbname=params["dbname"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    response = lookup(token)
    assert response.status_code == 200
    assert response.json()["host"] == "db"


@contextmanager
def database_unreachable(tmp_path):
    """The app's database connection points where nothing answers, for the block."""
    original = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict["PORT"] = _closed_port()
    else:
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-dir" / "db.sqlite3")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_is_a_clear_503_not_a_miss(token, tmp_path, caplog):
    with database_unreachable(tmp_path):
        response = lookup(token)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["message"] == "The database is unavailable; try again in a moment."
    assert lookup(token).status_code == 200  # and back as soon as the database is
    assert token not in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_lookup_counts_wait_out_a_database_outage(token, tmp_path):
    lookup_counter.reset()
    for _ in range(3):
        assert lookup(token).status_code == 200
    with database_unreachable(tmp_path):
        lookup_counter.flush()  # fails quietly, keeps the counts
    assert not LookupCount.objects.exists()
    lookup(token)
    lookup_counter.flush()
    assert LookupCount.objects.get(object_key="warehouse").count == 4


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lookups_without_prepared_statements(token, settings, django_assert_num_queries):
    """As behind a connection pooler that does not keep them: the same answers, one query."""
    settings.ENVMANAGER_LOOKUP_PREPARED_STATEMENTS = False
    lookup(token)
    with django_assert_num_queries(1):
        response = lookup(token)
    assert response.json()["password"] == "fast-path-secret-1"
    assert lookup(token, "nope").status_code == 404
