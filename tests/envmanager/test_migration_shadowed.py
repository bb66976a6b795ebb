"""Shadowed rows can leave: a metadata-DB row the Deployment already resolves with the very same
values is removed from Airflow (verified, after the window, compare-and-delete, recorded,
undoable); one that differs stays, with the differing fields named."""

import sqlite3

import pytest
from django.test import Client

from accounts.models import AuditEvent
from deployments.airflow_metadata import AirflowMetadataDb
from deployments.services import deployment_update
from envmanager.kernel.errors import InvalidInput
from envmanager.models import EnvironmentObject, MigrationItem, MigrationRun
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import environment_object_create, link_create
from envmanager.services.migration import (
    migration_candidates,
    migration_remove_shadowed,
    migration_undo,
)

WAREHOUSE = {
    "conn_type": "postgres",
    "description": "main",
    "host": "db.internal",
    "schema": "analytics",
    "login": "etl",
    "password": "shadow-pw-1",
    "port": 5432,
    "extra": {"sslmode": "require"},
}
LEGACY = {**WAREHOUSE, "host": "ftp.old", "password": "shadow-pw-2"}


@pytest.fixture
def shadowed(team, airflow_sqlite):
    url, key = airflow_sqlite("shadowed.db", {"warehouse": WAREHOUSE, "legacy": LEGACY}, {})
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=key
    )
    team.deployment.refresh_from_db()
    for name, values in (("warehouse", WAREHOUSE), ("legacy", {**LEGACY, "host": "ftp.new"})):
        obj = environment_object_create(
            user=team.owner,
            workspace=team.workspace,
            object_type="CONNECTION",
            key=name,
            values=values,
        )
        link_create(user=team.owner, obj=obj, deployment=team.deployment)
    team.url, team.key = url, key
    return team


def rows(team) -> list[str]:
    with AirflowMetadataDb(team.url, team.key) as db:
        return [c.conn_id for c in db.connections()]


def resolved(team) -> dict:
    env = deployment_resolved_environment(team.deployment)["CONNECTION"]
    return {k: item.values for k, item in env.items()}


def remove(team, keys, capture) -> MigrationRun:
    with capture(execute=True):
        run = migration_remove_shadowed(
            user=team.owner, deployment=team.deployment, object_type="CONNECTION", object_keys=keys
        )
    run.refresh_from_db()
    return run


def test_candidates_say_which_conflicts_can_leave(shadowed):
    candidates = {
        c.object_key: c
        for c in migration_candidates(
            user=shadowed.owner, deployment=shadowed.deployment, object_type="CONNECTION"
        )
    }
    assert candidates["warehouse"].status == "CONFLICT" and candidates["warehouse"].removable
    assert not candidates["legacy"].removable
    assert candidates["legacy"].difference == "Differs in host."


def test_an_identical_row_is_removed_and_nothing_a_dag_sees_changes(
    shadowed, django_capture_on_commit_callbacks
):
    before = resolved(shadowed)
    run = remove(shadowed, ["warehouse"], django_capture_on_commit_callbacks)
    assert (run.mode, run.status) == (MigrationRun.Mode.REMOVE_SHADOWED, "SUCCEEDED")
    item = run.items.get()
    assert (item.state, item.action) == (MigrationItem.State.DELETED, "SHADOWED")
    assert rows(shadowed) == ["legacy"]
    assert resolved(shadowed) == before
    assert EnvironmentObject.objects.count() == 2
    assert AuditEvent.objects.filter(action="migration.start", detail__runId=run.pk).exists()
    # Undo puts the row back and leaves the objects alone.
    with django_capture_on_commit_callbacks(execute=True):
        migration_undo(user=shadowed.owner, run=run)
    assert rows(shadowed) == ["legacy", "warehouse"]
    assert resolved(shadowed) == before


def test_a_differing_row_is_refused_naming_the_fields(shadowed, django_capture_on_commit_callbacks):
    with pytest.raises(InvalidInput) as error:
        remove(shadowed, ["warehouse", "legacy"], django_capture_on_commit_callbacks)
    assert "legacy: Differs in host." in error.value.message
    assert "shadow-pw" not in error.value.message and "ftp" not in error.value.message
    assert not MigrationRun.objects.exists() and rows(shadowed) == ["legacy", "warehouse"]


def test_a_key_the_deployment_does_not_resolve_is_refused(
    shadowed, django_capture_on_commit_callbacks
):
    EnvironmentObject.objects.filter(key="warehouse").delete()
    with pytest.raises(InvalidInput, match="migrate it instead"):
        remove(shadowed, ["warehouse"], django_capture_on_commit_callbacks)


def test_a_row_changed_in_airflow_during_the_window_stays(
    shadowed, settings, django_capture_on_commit_callbacks
):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    run = remove(shadowed, ["warehouse"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.WAITING
    with sqlite3.connect(shadowed.url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE connection SET host = 'db.changed' WHERE conn_id = 'warehouse'")
    from django.utils import timezone

    from envmanager.services.migration import migration_delete_sources

    MigrationRun.objects.filter(pk=run.pk).update(delete_after=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        migration_delete_sources(run_id=run.pk)
    run.refresh_from_db()
    assert run.items.get().state == MigrationItem.State.KEPT_CHANGED
    assert rows(shadowed) == ["legacy", "warehouse"]
    assert EnvironmentObject.objects.count() == 2


def test_the_api_and_the_page_offer_it(shadowed, api, django_capture_on_commit_callbacks):
    client = api.as_user(shadowed.owner)
    base = f"/api/v1/deployments/{shadowed.deployment.pk}"
    candidates = client.get(f"{base}/migration-candidates?objectType=CONNECTION").json()
    flags = {c["objectKey"]: (c["removable"], c["difference"]) for c in candidates["candidates"]}
    assert flags == {"legacy": (False, "Differs in host."), "warehouse": (True, "")}
    page = Client()
    page.force_login(shadowed.owner)
    html = page.get(f"/deployments/{shadowed.deployment.pk}/migrate/connections/").content.decode()
    assert 'id="remove-shadowed-form"' in html and 'value="warehouse" checked' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{base}/migrations",
            {"objectType": "CONNECTION", "objectKeys": ["warehouse"], "mode": "REMOVE_SHADOWED"},
            format="json",
        )
    assert response.status_code == 202 and response.json()["mode"] == "REMOVE_SHADOWED"
    assert rows(shadowed) == ["legacy"]
