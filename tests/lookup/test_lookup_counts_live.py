"""Lookup counts as production keeps them: real gunicorn (two sync workers) on PostgreSQL.
Every lookup served is counted, once, with the time of the last lookup: written by each
worker's timer without any later request, and what is still in memory when the server is
stopped (SIGTERM) is written on the way out."""

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.gunicorn_server import AppDatabase, GunicornServer, Seeded, server_env


@pytest.fixture(scope="module")
def app(tmp_path_factory, metadata_db_allowlist):
    data_dir: Path = tmp_path_factory.mktemp("lookup-counts")
    database = AppDatabase(f"envmanager_lookupcounts_{os.getpid()}")
    try:
        database.create()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") or os.environ.get("ENVMANAGER_CI"):
            pytest.fail(f"PostgreSQL is unreachable at {database.server_url} under CI: {exc}")
        pytest.skip(f"PostgreSQL is unreachable at {database.server_url}: {exc}")
    try:
        env = server_env(database.url, data_dir)
        seeded = database.migrate_and_seed(env)
        yield database, env, seeded, data_dir
    finally:
        database.drop()


def counts(database: AppDatabase, key: str) -> tuple[int, datetime | None]:
    with psycopg.connect(database.url, connect_timeout=5) as c:
        row = c.execute(
            "SELECT coalesce(sum(count), 0), max(last_at) FROM envmanager_lookupcount"
            " WHERE object_key = %s",
            [key],
        ).fetchone()
    return int(row[0]), row[1]


def serve_lookups(server: GunicornServer, seeded: Seeded, key: str, n: int) -> float:
    """n lookups of `key`, each on a connection of its own (so both workers serve some); the
    time the last one was answered."""
    headers = {"Authorization": f"Bearer {seeded.deployment_token}"}
    for _ in range(n):
        status, _, _ = server.request("GET", f"/api/v1/lookup/connections/{key}", headers=headers)
        assert status in (200, 404)
    return time.time()


def test_counts_still_in_memory_are_written_when_the_server_stops(app):
    database, env, seeded, data_dir = app
    # No timer write in this test's time: only the exit can write them.
    server = GunicornServer(
        {**env, "ENVMANAGER_LOOKUP_COUNT_SECONDS": "3600"}, data_dir / "stop.log", workers=2
    )
    server.start()
    try:
        served = 17 + 23
        last = serve_lookups(server, seeded, seeded.connection_key, 17)
        last = serve_lookups(server, seeded, "no-such-connection", 23)
        assert counts(database, seeded.connection_key)[0] == 0
        time.sleep(2)  # so the stop time and the last lookup's time are told apart
        stopped_at = time.time()
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log()[-2000:]
    found, found_at = counts(database, seeded.connection_key)
    missing, missing_at = counts(database, "no-such-connection")
    assert found + missing == served
    assert (found, missing) == (17, 23)
    # The time of the last lookup, not of the write at the stop.
    assert abs(missing_at.timestamp() - last) < 1.0
    assert missing_at.timestamp() < stopped_at - 1
    assert found_at < missing_at


def test_the_timer_writes_counts_without_a_later_request(app):
    database, env, seeded, data_dir = app
    key = "timer-written"
    server = GunicornServer(
        {**env, "ENVMANAGER_LOOKUP_COUNT_SECONDS": "1"}, data_dir / "timer.log", workers=2
    )
    server.start()
    try:
        last = serve_lookups(server, seeded, key, 11)
        deadline = time.monotonic() + 10
        while counts(database, key)[0] < 11 and time.monotonic() < deadline:
            time.sleep(0.2)
        written, written_at = counts(database, key)
        assert written == 11
        assert abs(written_at.timestamp() - last) < 1.0
        # Nothing written twice by a later timer round or by the exit.
        time.sleep(1.5)
    finally:
        server.stop()
    assert counts(database, key) == (written, written_at)
    assert datetime.now(UTC) > written_at
