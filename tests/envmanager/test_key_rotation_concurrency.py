"""Key rotation, version purge and restore while the app serves: nothing a writer committed is
taken back. The concurrent tests run on PostgreSQL, with sessions of their own (threads)."""

import io
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from deployments.models import Deployment
from envmanager.kernel.encryption import encrypted_fields, is_current, stored_tokens
from envmanager.kernel.errors import NotFound
from envmanager.models import EnvironmentObject, MigrationItem, MigrationRun, ObjectVersion
from envmanager.object_types import ObjectType, Scope
from envmanager.services import (
    encryption_keys_rotate,
    environment_object_create,
    environment_object_delete,
    environment_object_update,
)
from envmanager.services.encryption_keys import RETRY_PAUSES
from envmanager.services.versions import deleted_objects_purge, environment_object_restore_version
from tests.conftest import TEST_ENCRYPTION_KEY, _database_url_for_subprocess

CONNECTIONS = 3_000


def seed_connections(team, n: int) -> list[EnvironmentObject]:
    """`n` Workspace connections (stored under the current key), in pk order. One goes through
    the service, so the rest have exactly the shape the service stores."""
    first = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="conn_00000",
        values={"conn_type": "postgres", "host": "db0.internal", "password": "old-password-0"},
    )
    EnvironmentObject.objects.bulk_create(
        [
            EnvironmentObject(
                workspace=team.workspace,
                scope=Scope.WORKSPACE,
                object_type=ObjectType.CONNECTION,
                key=f"conn_{i:05d}",
                values={**first.values, "host": f"db{i}.internal", "password": f"old-password-{i}"},
            )
            for i in range(1, n)
        ],
        batch_size=500,
    )
    return list(EnvironmentObject.objects.filter(workspace=team.workspace).order_by("pk"))


def new_key_first(settings) -> str:
    new_key = Fernet.generate_key().decode()
    settings.ENVMANAGER_ENCRYPTION_KEYS = [new_key, TEST_ENCRYPTION_KEY]
    return new_key


def assert_everything_readable_with_only(settings, key: str) -> None:
    """Every stored secret decrypts with `key` alone, and is stored under it."""
    settings.ENVMANAGER_ENCRYPTION_KEYS = [key]
    for model, names in encrypted_fields():
        for row in model._base_manager.values_list(*names):
            assert row is not None  # decrypted (an old-key token would raise)
        for _pk, *tokens in stored_tokens(model, names):
            assert all(map(is_current, tokens)), model._meta.label


def in_thread(target, *args):
    """Run `target` in a thread with its own database session; `.result`, `.error` and
    `.finished_at` (monotonic) after `.join()`."""

    def run():
        try:
            thread.result = target(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            thread.error = error
        finally:
            thread.finished_at = time.monotonic()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.result = thread.error = None
    thread.start()
    return thread


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_rotation_keeps_every_update_committed_while_it_runs(team, settings):
    objects = seed_connections(team, CONNECTIONS)
    new_key = new_key_first(settings)
    # Rows the rotation reaches late, so an update can land before its row's turn comes.
    targets = [objects[i] for i in (1500, 1800, 2100, 2400, 2700, CONNECTIONS - 1)]
    started = time.monotonic()
    rotation = in_thread(encryption_keys_rotate)
    committed_at = []
    for obj in targets:
        time.sleep(0.03)
        environment_object_update(
            user=team.operator, obj=obj, values={"password": f"new-password-{obj.key}"}
        )
        committed_at.append(time.monotonic())
    rotation.join(timeout=120)
    assert rotation.error is None
    during = [t for t in committed_at if started < t < rotation.finished_at]
    assert len(during) >= 3, "the updates must overlap the rotation for this test to mean much"

    lost = [
        obj.key
        for obj in EnvironmentObject.objects.filter(pk__in=[t.pk for t in targets])
        if obj.values["password"] != f"new-password-{obj.key}"
    ]
    assert lost == []
    assert_everything_readable_with_only(settings, new_key)
    counts = rotation.result.by_model["envmanager.EnvironmentObject"]
    assert counts.left == 0
    assert counts.rewritten + counts.current == CONNECTIONS


@pytest.mark.django_db
def test_a_second_rotation_rewrites_nothing(team, settings):
    seed_connections(team, 50)
    # Columns that hold NULL or "" beside a token: a migration item without previous
    # overrides, a Deployment with a URL and no Fernet key, one with neither.
    run = MigrationRun.objects.create(
        workspace=team.workspace, deployment=team.deployment, object_type="CONNECTION"
    )
    MigrationItem.objects.create(run=run, object_key="c", source_row={"password": "x-secret"})
    Deployment.objects.filter(pk=team.deployment.pk).update(
        metadata_db_url="postgresql://airflow:db-secret@db/airflow"
    )
    new_key = new_key_first(settings)
    first = encryption_keys_rotate(chunk_size=20)
    objects = first.by_model["envmanager.EnvironmentObject"]
    assert (objects.rewritten, objects.current, objects.retries, objects.left) == (50, 0, 0, 0)
    assert first.by_model["envmanager.MigrationItem"].rewritten == 1
    deployments = first.by_model["deployments.Deployment"]
    assert (deployments.rewritten, deployments.current) == (1, 1)
    before = {
        model: list(stored_tokens(model, names).order_by("pk"))
        for model, names in encrypted_fields()
    }

    second = encryption_keys_rotate(chunk_size=20)
    assert second.total.rewritten == 0
    assert second.total.current == first.total.rewritten + first.total.current
    assert (second.total.retries, second.total.left) == (0, 0)
    for model, names in encrypted_fields():
        assert list(stored_tokens(model, names).order_by("pk")) == before[model]
    assert_everything_readable_with_only(settings, new_key)


@pytest.mark.django_db
def test_the_command_prints_counts_and_no_secret(team, settings):
    seed_connections(team, 5)
    new_key_first(settings)
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    printed = out.getvalue()
    assert (
        "envmanager.EnvironmentObject: 5 rows re-encrypted, 0 already current, 0 retries, "
        "0 left under an old key" in printed
    )
    assert "total:" in printed
    assert "password" not in printed


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_rotation_finishes_around_a_row_that_stays_locked_and_says_so(team, settings):
    objects = seed_connections(team, 1_200)
    new_key_first(settings)
    held = objects[700]
    # Another session holds one row for the whole run, as a writer that keeps changing it would.
    with psycopg.connect(_database_url_for_subprocess()) as writer:
        writer.execute(
            "SELECT id FROM envmanager_environmentobject WHERE id = %s FOR UPDATE", [held.pk]
        )
        out = io.StringIO()
        rotation = in_thread(lambda: call_command("rotate_encryption_keys", stdout=out))
        rotation.join(timeout=30)
        finished_while_held = not rotation.is_alive()
    rotation.join(timeout=60)  # the writer is done: a rotation that waited for it goes on
    assert finished_while_held, "the rotation waited for the writer"
    assert isinstance(rotation.error, CommandError)
    assert "1 rows kept changing" in str(rotation.error)
    assert (
        f"envmanager.EnvironmentObject: 1199 rows re-encrypted, 0 already current, "
        f"{len(RETRY_PAUSES)} retries, 1 left under an old key" in out.getvalue()
    )
    # Once the writer is done, the next run rewrites only that row.
    again = encryption_keys_rotate()
    counts = again.by_model["envmanager.EnvironmentObject"]
    assert (counts.rewritten, counts.current, counts.left) == (1, 1_199, 0)


def _deleted_object(team) -> ObjectVersion:
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="gone",
        values={"value": "secret-value-to-forget"},
    )
    environment_object_delete(user=team.operator, obj=obj)
    return ObjectVersion.objects.get(environment_object_id=obj.pk)


@pytest.mark.django_db
def test_restoring_a_version_purged_meanwhile_is_not_found(team):
    version = _deleted_object(team)  # as a page or the API read it
    assert deleted_objects_purge(now=timezone.now() + timedelta(days=31)) == 1
    with pytest.raises(NotFound):
        environment_object_restore_version(user=team.operator, version=version)
    assert not EnvironmentObject.objects.filter(pk=version.environment_object_id).exists()


def _sessions_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_purge_keeps_the_history_of_an_object_restored_meanwhile(team):
    version = _deleted_object(team)
    restored, commit = threading.Event(), threading.Event()

    def restore():
        with transaction.atomic():
            environment_object_restore_version(user=team.operator, version=version)
            restored.set()
            assert commit.wait(timeout=30)

    restoring = in_thread(restore)
    assert restored.wait(timeout=30)
    purging = in_thread(lambda: deleted_objects_purge(now=timezone.now() + timedelta(days=31)))
    deadline = time.monotonic() + 30
    while _sessions_waiting_on_a_lock() == 0 and purging.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    commit.set()
    restoring.join(timeout=30)
    purging.join(timeout=30)
    assert restoring.error is None and purging.error is None

    assert EnvironmentObject.objects.filter(pk=version.environment_object_id).exists()
    assert ObjectVersion.objects.filter(pk=version.pk).exists()
    assert purging.result == 0


@pytest.mark.django_db
def test_the_celery_task_rotates_and_returns_counts_only(team, settings):
    from envmanager import tasks

    seed_connections(team, 3)
    new_key = new_key_first(settings)
    counts = tasks.encryption_keys_rotate.apply().get()
    assert counts["rewritten"] == 3 and counts["left"] == 0
    assert set(counts) == {"rewritten", "current", "retries", "left"}
    assert_everything_readable_with_only(settings, new_key)
