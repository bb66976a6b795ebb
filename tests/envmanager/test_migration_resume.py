"""On the production stack (a real Celery worker and beat on Redis), a worker killed (-9) at
each step of a run: the run goes on by itself within a few seconds, nobody reads its page or
its API, and every object is moved exactly once."""

import time

import pytest
from cryptography.fernet import Fernet

from deployments.airflow_metadata import AirflowMetadataDb
from deployments.services import deployment_update
from envmanager.models import EnvironmentObject, MigrationItem, MigrationRun
from envmanager.services.migration import migration_start, migration_undo

pytestmark = pytest.mark.celery_worker
KEY = Fernet.generate_key().decode()
COUNT = 150
KEYS = [f"c{i:03d}" for i in range(COUNT)]


@pytest.fixture
def small_steps(settings):
    """One object per transaction and a two-second lease, set before the worker starts."""
    settings.ENVMANAGER_MIGRATION_CHUNK_SIZE = 1
    settings.ENVMANAGER_MIGRATION_LEASE_SECONDS = 2


@pytest.fixture
def source(team, airflow_sqlite):
    connections = {k: {"conn_type": "http", "host": k, "password": f"pw-{k}"} for k in KEYS}
    url, _ = airflow_sqlite("resume.db", connections, {}, fernet_key=KEY)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=KEY
    )
    team.deployment.refresh_from_db()
    return team


def wait_for(predicate, timeout=90.0) -> float:
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError("timed out")


def status(run) -> str:
    return MigrationRun.objects.get(pk=run.pk).status


def count(run, state) -> int:
    return run.items.filter(state=state).count()


def rows(team) -> int:
    with AirflowMetadataDb(team.deployment.metadata_db_url, KEY) as db:
        return db.count_connections()


def start(team) -> MigrationRun:
    return migration_start(
        user=team.owner, deployment=team.deployment, object_type="CONNECTION", object_keys=KEYS
    )


def assert_moved_once(team, run) -> None:
    assert status(run) == MigrationRun.Status.SUCCEEDED
    keys = list(EnvironmentObject.objects.values_list("key", flat=True))
    assert sorted(keys) == KEYS  # one object per key: nothing copied twice
    assert count(run, MigrationItem.State.DELETED) == COUNT
    assert rows(team) == 0


def test_killed_while_copying(small_steps, source, celery_worker, celery_beat):
    run = start(source)
    wait_for(lambda: count(run, MigrationItem.State.VERIFIED) >= 10)
    celery_worker.kill()
    assert status(run) == MigrationRun.Status.COPYING
    celery_worker.start()
    took = wait_for(lambda: status(run) == MigrationRun.Status.SUCCEEDED)
    print(f"copy resumed and finished {took:.1f} s after the new worker started")
    assert_moved_once(source, run)


def test_killed_while_waiting_out_the_window(small_steps, source, celery_worker, celery_beat):
    celery_worker.env["ENVMANAGER_PROPAGATION_SECONDS"] = "3"
    celery_worker.restart()
    run = start(source)
    wait_for(lambda: status(run) == MigrationRun.Status.WAITING)
    assert rows(source) == COUNT  # nothing deleted inside the window
    celery_worker.kill()  # it held the delayed delete task, unacknowledged
    celery_worker.start()
    wait_for(lambda: status(run) == MigrationRun.Status.SUCCEEDED)
    assert_moved_once(source, run)


def test_killed_while_deleting(small_steps, source, celery_worker, celery_beat):
    run = start(source)
    wait_for(lambda: count(run, MigrationItem.State.DELETED) >= 10)
    celery_worker.kill()
    assert status(run) == MigrationRun.Status.DELETING
    celery_worker.start()
    wait_for(lambda: status(run) == MigrationRun.Status.SUCCEEDED)
    assert_moved_once(source, run)


def test_killed_while_undoing(small_steps, source, celery_worker, celery_beat):
    run = start(source)
    wait_for(lambda: status(run) == MigrationRun.Status.SUCCEEDED)
    migration_undo(user=source.owner, run=MigrationRun.objects.get(pk=run.pk))
    wait_for(lambda: rows(source) >= 10)
    celery_worker.kill()
    assert status(run) == MigrationRun.Status.UNDOING
    celery_worker.start()
    wait_for(lambda: status(run) == MigrationRun.Status.UNDONE)
    assert rows(source) == COUNT
    assert not EnvironmentObject.objects.exists()
