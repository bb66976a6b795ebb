"""A real Celery worker, killed (-9) in the middle of a migration: a retry resumes where the
run stopped, with nothing duplicated and nothing lost."""

import time

import pytest
from cryptography.fernet import Fernet

from deployments.airflow_metadata import AirflowMetadataDb
from deployments.services import deployment_update
from envmanager.models import EnvironmentObject, MigrationItem, MigrationRun
from envmanager.services.migration import (
    migration_retry,
    migration_run_resume_due,
    migration_start,
)
from tests.airflow_support import make_metadata_db

pytestmark = [pytest.mark.airflow, pytest.mark.celery_worker]
KEY = Fernet.generate_key().decode()
COUNT = 300


@pytest.fixture
def small_steps(settings):
    """One object per transaction and a short lease, set before the worker starts."""
    settings.ENVMANAGER_MIGRATION_CHUNK_SIZE = 1
    settings.ENVMANAGER_MIGRATION_LEASE_SECONDS = 2


@pytest.fixture
def source(team, tmp_path):
    connections = {
        f"c{i:03d}": {"conn_type": "http", "host": f"h{i}", "password": f"pw-{i}"}
        for i in range(COUNT)
    }
    url = make_metadata_db(tmp_path, fernet_key=KEY, connections=connections)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=KEY
    )
    team.deployment.refresh_from_db()
    return team


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def verified(run) -> int:
    return run.items.filter(state=MigrationItem.State.VERIFIED).count()


def test_worker_killed_while_copying_then_retried(small_steps, source, celery_worker):
    run = migration_start(
        user=source.owner,
        deployment=source.deployment,
        object_type="CONNECTION",
        object_keys=[f"c{i:03d}" for i in range(COUNT)],
    )
    wait_for(lambda: verified(run) >= 20)
    celery_worker.kill()
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.COPYING and verified(run) < COUNT
    celery_worker.start()
    time.sleep(2.2)  # the dead worker's lease runs out
    migration_retry(user=source.owner, run=run)
    wait_for(lambda: MigrationRun.objects.get(pk=run.pk).status == "SUCCEEDED", timeout=120)
    keys = list(EnvironmentObject.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys)) == COUNT
    with AirflowMetadataDb(source.deployment.metadata_db_url, KEY) as db:
        assert db.count_connections() == 0


def test_worker_killed_while_waiting_to_delete_then_resumed(small_steps, source, celery_worker):
    # The worker runs the steps, so the window is its setting: a 2-second one.
    celery_worker.env["ENVMANAGER_PROPAGATION_SECONDS"] = "2"
    celery_worker.restart()
    run = migration_start(
        user=source.owner,
        deployment=source.deployment,
        object_type="CONNECTION",
        object_keys=["c001", "c002"],
    )
    wait_for(lambda: MigrationRun.objects.get(pk=run.pk).status == "WAITING")
    with AirflowMetadataDb(source.deployment.metadata_db_url, KEY) as db:
        assert db.count_connections() == COUNT  # nothing deleted inside the window
    celery_worker.kill()  # it held the delayed delete task, unacknowledged
    celery_worker.start()
    time.sleep(2.5)
    # The broker may hand the task back to the new worker; if not, looking at the run
    # re-enqueues the due step. Either way the run finishes, and only once.
    migration_run_resume_due(run=MigrationRun.objects.get(pk=run.pk))
    wait_for(lambda: MigrationRun.objects.get(pk=run.pk).status == "SUCCEEDED")
    assert list(run.items.values_list("state", flat=True)) == ["DELETED", "DELETED"]
    with AirflowMetadataDb(source.deployment.metadata_db_url, KEY) as db:
        assert db.count_connections() == COUNT - 2
