"""Faults the service must survive: Redis down, a dropped PostgreSQL connection."""

import psycopg
import pytest
from django.core.cache import caches
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.test import Client

from accounts.models import User
from envmanager.cache import ResilientRedisCache
from tests.conftest import _database_url_for_subprocess


def test_cache_with_redis_down_misses_instead_of_failing():
    cache = ResilientRedisCache(
        "redis://127.0.0.1:1/0", {"OPTIONS": {"socket_connect_timeout": 0.2}}
    )
    assert cache.get("k", "fallback") == "fallback"
    cache.set("k", "v")
    assert cache.add("k", "v") is False
    assert cache.incr("k") == 1


def test_login_works_with_redis_down(team, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "envmanager.cache.ResilientRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    assert isinstance(caches["default"], ResilientRedisCache)
    response = Client().post(
        "/login/", {"username": team.owner.email, "password": "pw-for-tests-123"}
    )
    assert response.status_code == 302


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_dropped_postgresql_connection_is_replaced_at_the_next_request(team):
    assert User.objects.count() == 4
    # Another session kills ours, as a PostgreSQL restart or failover would.
    with psycopg.connect(_database_url_for_subprocess(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (connection.connection.info.backend_pid,))
    # What Django runs when each request starts (the test client skips it): with
    # CONN_HEALTH_CHECKS the dead connection is noticed and replaced, not handed to the view.
    close_old_connections()
    assert User.objects.count() == 4


class LosesTheDatabaseAfterTheView:
    """Stands for a middleware that touches the database after the view (SessionMiddleware
    saving a session, say) when the database has just gone away."""

    error: type[Exception] = OperationalError

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        self.get_response(request)
        raise self.error("server closed the connection unexpectedly")


@pytest.mark.parametrize(
    "error,path,status",
    [
        (OperationalError, "/login/", 503),
        (InterfaceError, "/api/v1/workspaces/", 503),
        (RuntimeError, "/login/", 500),
        (RuntimeError, "/api/v1/workspaces/", 500),
    ],
)
def test_a_database_lost_outside_a_view_is_a_503_too(db, settings, error, path, status):
    LosesTheDatabaseAfterTheView.error = error
    settings.MIDDLEWARE = [f"{__name__}.LosesTheDatabaseAfterTheView", *settings.MIDDLEWARE]
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == status
    if status == 503:
        assert response["Retry-After"] == "1"
    if path.startswith("/api/"):
        assert response.json()["statusCode"] == status
    elif status == 503:
        assert b"Back in a moment" in response.content
