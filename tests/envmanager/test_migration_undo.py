"""Undo takes back only what the run did and nothing since: an object edited, linked to another
Deployment, given an override or deleted since the run is named before anything changes, the
user chooses per object, and an undo never deletes later work."""

import pytest
from django.test import Client

from deployments.airflow_metadata import AirflowMetadataDb
from deployments.services import deployment_update
from envmanager.kernel.errors import Conflict
from envmanager.models import EnvironmentObject, Link, MigrationItem, MigrationRun
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import (
    environment_object_delete,
    environment_object_update,
    link_create,
    link_set_overrides,
)
from envmanager.services.migration import migration_start, migration_undo, migration_undo_plan

CONNECTIONS = {
    "legacy_ftp": {"conn_type": "ftp", "host": "ftp.old", "login": "u", "password": "pw-1"},
    "warehouse": {"conn_type": "postgres", "host": "db", "password": "pw-2"},
}


@pytest.fixture
def migrated(team, airflow_sqlite, django_capture_on_commit_callbacks):
    url, key = airflow_sqlite("undo.db", CONNECTIONS, {})
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=key
    )
    team.deployment.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        run = migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=list(CONNECTIONS),
        )
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.SUCCEEDED
    team.run, team.url, team.key = run, url, key
    return team


def obj(key: str) -> EnvironmentObject:
    return EnvironmentObject.objects.get(key=key)


def airflow_rows(team) -> list[str]:
    with AirflowMetadataDb(team.url, team.key) as db:
        return [c.conn_id for c in db.connections()]


def resolved(deployment) -> dict:
    env = deployment_resolved_environment(deployment)["CONNECTION"]
    return {key: item.values for key, item in env.items()}


def undo(team, capture, **kwargs) -> MigrationRun:
    with capture(execute=True):
        migration_undo(user=team.owner, run=team.run, **kwargs)
    team.run.refresh_from_db()
    return team.run


def test_a_clean_undo_takes_everything_back(migrated, django_capture_on_commit_callbacks):
    assert all(not p.later_work for p in migration_undo_plan(run=migrated.run))
    run = undo(migrated, django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.UNDONE
    assert airflow_rows(migrated) == ["legacy_ftp", "warehouse"]
    assert not EnvironmentObject.objects.exists()


def test_linked_elsewhere_and_edited_stays_for_staging(
    migrated, django_capture_on_commit_callbacks
):
    """The review's case: migrate legacy_ftp from production, link it to staging too and
    change its host, then undo. Staging keeps it, with the new host."""
    legacy = obj("legacy_ftp")
    link_create(user=migrated.owner, obj=legacy, deployment=migrated.other_deployment)
    environment_object_update(
        user=migrated.owner, obj=legacy, values={**legacy.values, "host": "ftp.new"}
    )
    plan = {p.key: p.later_work for p in migration_undo_plan(run=migrated.run)}
    assert plan["warehouse"] == []
    assert plan["legacy_ftp"] == [
        "It was edited since the migration.",
        "It is linked to other Deployments or IDE projects now.",
    ]
    with pytest.raises(Conflict) as error:
        migration_undo(user=migrated.owner, run=migrated.run)
    assert "legacy_ftp" in error.value.message and "Nothing was changed" in error.value.message
    assert MigrationRun.objects.get(pk=migrated.run.pk).status == MigrationRun.Status.SUCCEEDED
    assert airflow_rows(migrated) == []
    run = undo(migrated, django_capture_on_commit_callbacks, choices={"legacy_ftp": "undo"})
    assert run.status == MigrationRun.Status.UNDONE
    assert airflow_rows(migrated) == ["legacy_ftp", "warehouse"]
    # Production reads its Airflow row again; staging still resolves the edited object.
    assert "legacy_ftp" not in resolved(migrated.deployment)
    assert resolved(migrated.other_deployment)["legacy_ftp"]["host"] == "ftp.new"
    assert not EnvironmentObject.objects.filter(key="warehouse").exists()


def test_edited_only_keeps_the_object_and_its_edit(migrated, django_capture_on_commit_callbacks):
    legacy = obj("legacy_ftp")
    environment_object_update(
        user=migrated.owner, obj=legacy, values={**legacy.values, "login": "edited"}
    )
    undo(migrated, django_capture_on_commit_callbacks, choices={"legacy_ftp": "undo"})
    kept = obj("legacy_ftp")
    assert kept.values["login"] == "edited"
    assert not Link.objects.filter(environment_object=kept, deployment=migrated.deployment).exists()
    assert "legacy_ftp" not in resolved(migrated.deployment)
    assert "legacy_ftp" in airflow_rows(migrated)


def test_an_override_given_since_is_named(migrated, django_capture_on_commit_callbacks):
    link = Link.objects.get(environment_object=obj("warehouse"), deployment=migrated.deployment)
    link_set_overrides(user=migrated.owner, link=link, overrides={"host": "db.override"})
    plan = {p.key: p.later_work for p in migration_undo_plan(run=migrated.run)}
    assert plan["warehouse"] == ["It was given an override on this Deployment since."]
    run = undo(migrated, django_capture_on_commit_callbacks, choices={"warehouse": "keep"})
    # Left migrated: its row stays out of Airflow, the object and its override stay.
    assert run.status == MigrationRun.Status.UNDONE
    assert run.items.get(object_key="warehouse").state == MigrationItem.State.LEFT_MIGRATED
    assert airflow_rows(migrated) == ["legacy_ftp"]
    assert resolved(migrated.deployment)["warehouse"]["host"] == "db.override"


def test_an_object_deleted_since_gets_its_row_back_when_chosen(
    migrated, django_capture_on_commit_callbacks
):
    environment_object_delete(user=migrated.owner, obj=obj("warehouse"))
    plan = {p.key: p.later_work for p in migration_undo_plan(run=migrated.run)}
    assert plan["warehouse"] == ["It was deleted since the migration."]
    undo(migrated, django_capture_on_commit_callbacks, choices={"warehouse": "undo"})
    assert airflow_rows(migrated) == ["legacy_ftp", "warehouse"]


def test_undone_twice_is_refused(migrated, django_capture_on_commit_callbacks):
    undo(migrated, django_capture_on_commit_callbacks)
    with pytest.raises(Conflict, match="undone"):
        migration_undo(user=migrated.owner, run=migrated.run)
    assert airflow_rows(migrated) == ["legacy_ftp", "warehouse"]


def test_the_api_shows_the_plan_and_takes_choices(migrated, api):
    link_create(user=migrated.owner, obj=obj("legacy_ftp"), deployment=migrated.other_deployment)
    path = f"/api/v1/migrations/{migrated.run.pk}/undo"
    client = api.as_user(migrated.owner)
    plan = client.get(path).json()["items"]
    assert {p["objectKey"]: p["laterWork"] for p in plan} == {
        "legacy_ftp": ["It is linked to other Deployments or IDE projects now."],
        "warehouse": [],
    }
    response = client.post(path, {}, format="json")
    assert response.status_code == 409
    assert [f["field"] for f in response.json()["fieldErrors"]] == ["choices.legacy_ftp"]
    bad = client.post(path, {"choices": {"legacy_ftp": "maybe"}}, format="json")
    assert bad.status_code == 400
    assert MigrationRun.objects.get(pk=migrated.run.pk).status == MigrationRun.Status.SUCCEEDED
    response = client.post(path, {"choices": {"legacy_ftp": "keep"}}, format="json")
    assert response.status_code == 202
    assert api.as_user(migrated.operator).get(path).status_code == 404  # Owners' runs only


def test_the_page_asks_for_each_changed_object(migrated, django_capture_on_commit_callbacks):
    link_create(user=migrated.owner, obj=obj("legacy_ftp"), deployment=migrated.other_deployment)
    client = Client()
    client.force_login(migrated.owner)
    page = client.get(f"/migrations/{migrated.run.pk}/").content.decode()
    assert 'name="choice-legacy_ftp" value="undo"' in page
    assert 'name="choice-warehouse"' not in page
    response = client.post(f"/migrations/{migrated.run.pk}/undo/", follow=True)
    assert "were changed since: legacy_ftp" in response.content.decode()
    assert MigrationRun.objects.get(pk=migrated.run.pk).status == MigrationRun.Status.SUCCEEDED
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/migrations/{migrated.run.pk}/undo/", {"choice-legacy_ftp": "undo"})
    assert MigrationRun.objects.get(pk=migrated.run.pk).status == MigrationRun.Status.UNDONE
    assert resolved(migrated.other_deployment)["legacy_ftp"]["host"] == "ftp.old"
