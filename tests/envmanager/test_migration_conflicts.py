"""Migrate from Airflow never changes what a Deployment resolves: a key it already resolves
through a linked Workspace object (explicit or auto-linked, with or without an override) is a
conflict, like a key of its own Deployment-scoped objects, and its metadata-DB row stays."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client

from deployments.airflow_metadata import AirflowMetadataDb
from deployments.services import deployment_update
from envmanager.models import Link, MigrationItem, MigrationRun
from envmanager.selectors import deployment_resolve_one
from envmanager.services import auto_link_exclude, environment_object_create, link_create
from envmanager.services.migration import migration_candidates, migration_copy, migration_start
from tests.airflow_support import make_metadata_db

pytestmark = pytest.mark.airflow

KEY = Fernet.generate_key().decode()
STALE = {
    "conn_type": "postgres",
    "host": "prod-db.internal",
    "login": "etl",
    "password": "prod-only-p@ss",
    "schema": "analytics",
    "port": 5432,
}
CONNECTIONS = {"warehouse": STALE, "legacy_ftp": {"conn_type": "ftp", "host": "ftp.example"}}
WORKSPACE_VALUES = {**STALE, "host": "staging-db.internal", "password": "staging-pass"}


@pytest.fixture
def metadata(team, tmp_path):
    url = make_metadata_db(tmp_path, fernet_key=KEY, connections=CONNECTIONS)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=KEY
    )
    team.deployment.refresh_from_db()
    return url


def warehouse(team, **options):
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values=WORKSPACE_VALUES,
        **options,
    )


def linked_with_an_override(team):
    obj = warehouse(team)
    link_create(user=team.owner, obj=obj, deployment=team.other_deployment)
    return link_create(
        user=team.owner,
        obj=obj,
        deployment=team.deployment,
        overrides={"host": "prod-db.internal", "password": "prod-pass"},
    )


def statuses(team) -> dict[str, tuple[str, str]]:
    return {
        c.object_key: (c.status, c.reason)
        for c in migration_candidates(
            user=team.owner, deployment=team.deployment, object_type="CONNECTION"
        )
    }


def resolved_password(deployment) -> str:
    return deployment_resolve_one(deployment, "CONNECTION", "warehouse").values["password"]


def rows_left(team) -> list[str]:
    with AirflowMetadataDb(team.deployment.metadata_db_url, team.deployment.fernet_key) as db:
        return [c.conn_id for c in db.connections()]


def migrate(team, keys, capture) -> MigrationRun:
    with capture(execute=True):
        run = migration_start(
            user=team.owner, deployment=team.deployment, object_type="CONNECTION", object_keys=keys
        )
    run.refresh_from_db()
    return run


def test_a_key_linked_with_an_override_is_a_conflict_and_what_dags_see_stays(
    team, metadata, django_capture_on_commit_callbacks
):
    link = linked_with_an_override(team)
    status, reason = statuses(team)["warehouse"]
    assert status == "CONFLICT"
    assert "Workspace object warehouse" in reason and "shadowed" in reason
    assert "override of host, password" in reason
    run = migrate(team, ["warehouse", "legacy_ftp"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.PARTIAL
    item = run.items.get(object_key="warehouse")
    assert item.state == MigrationItem.State.CONFLICT and item.reason == reason
    assert item.environment_object is None and item.source_row is None
    link.refresh_from_db()
    assert link.overrides == {"host": "prod-db.internal", "password": "prod-pass"}
    assert resolved_password(team.deployment) == "prod-pass"
    assert resolved_password(team.other_deployment) == "staging-pass"
    assert rows_left(team) == ["warehouse"]


def test_a_key_linked_without_an_override_is_a_conflict(
    team, metadata, django_capture_on_commit_callbacks
):
    link_create(user=team.owner, obj=warehouse(team), deployment=team.deployment)
    status, reason = statuses(team)["warehouse"]
    assert status == "CONFLICT" and "(linked)" in reason
    run = migrate(team, ["warehouse"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.FAILED
    assert run.items.get().state == MigrationItem.State.CONFLICT
    assert Link.objects.get(deployment=team.deployment).overrides == {}
    assert resolved_password(team.deployment) == "staging-pass"
    assert "warehouse" in rows_left(team)


def test_an_auto_linked_workspace_object_is_a_conflict_too(
    team, metadata, django_capture_on_commit_callbacks
):
    warehouse(team, auto_link_deployments=True)
    status, reason = statuses(team)["warehouse"]
    assert status == "CONFLICT" and "auto-linked" in reason
    run = migrate(team, ["warehouse"], django_capture_on_commit_callbacks)
    assert run.items.get().state == MigrationItem.State.CONFLICT
    assert resolved_password(team.deployment) == "staging-pass"
    assert "warehouse" in rows_left(team)


def test_a_workspace_object_not_linked_here_still_gets_an_override(
    team, metadata, django_capture_on_commit_callbacks
):
    obj = warehouse(team, auto_link_deployments=True)
    auto_link_exclude(user=team.owner, obj=obj, deployment=team.deployment)
    assert statuses(team)["warehouse"][0] == "EXISTS_IN_WORKSPACE"
    run = migrate(team, ["warehouse"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.SUCCEEDED
    link = Link.objects.get(environment_object=obj, deployment=team.deployment)
    assert link.overrides == {"host": "prod-db.internal", "password": "prod-only-p@ss"}
    assert resolved_password(team.other_deployment) == "staging-pass"


def test_a_key_linked_after_it_was_selected_ends_as_a_conflict(
    team, metadata, django_capture_on_commit_callbacks
):
    obj = warehouse(team)
    assert statuses(team)["warehouse"][0] == "EXISTS_IN_WORKSPACE"
    with django_capture_on_commit_callbacks(execute=False):
        run = migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=["warehouse"],
        )
    link = link_create(
        user=team.owner, obj=obj, deployment=team.deployment, overrides={"password": "prod-pass"}
    )
    migration_copy(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.FAILED
    item = run.items.get()
    assert item.state == MigrationItem.State.CONFLICT and "shadowed" in item.reason
    link.refresh_from_db()
    assert link.overrides == {"password": "prod-pass"}
    assert resolved_password(team.deployment) == "prod-pass"
    assert "warehouse" in rows_left(team)


def test_the_api_reports_the_conflict_with_its_reason(team, metadata, api):
    linked_with_an_override(team)
    response = api.as_user(team.owner).get(
        f"/api/v1/deployments/{team.deployment.pk}/migration-candidates",
        {"objectType": "CONNECTION"},
    )
    candidates = {c["objectKey"]: c for c in response.json()["candidates"]}
    assert candidates["warehouse"]["status"] == "CONFLICT"
    assert "Workspace object warehouse" in candidates["warehouse"]["reason"]
    assert candidates["legacy_ftp"]["status"] == "NEW"
    assert "prod-pass" not in response.content.decode()


def test_the_selection_page_does_not_offer_a_linked_key(team, metadata):
    linked_with_an_override(team)
    client = Client()
    client.force_login(team.owner)
    page = client.get(f"/deployments/{team.deployment.pk}/migrate/connections/").content.decode()
    assert 'value="warehouse" aria-label="Select warehouse" disabled' in page
    assert 'value="legacy_ftp" aria-label="Select legacy_ftp" >' in page
    assert "Already resolved here from the Workspace object warehouse" in page


def test_the_command_shows_the_conflict_and_does_not_migrate_it(transactional_db, team, metadata):
    # Real commits: the command waits for the run its on-commit hook starts (eager Celery).
    linked_with_an_override(team)
    command = ["migrate_from_airflow", team.deployment.pk, "connections", "--as", team.owner.email]
    out = StringIO()
    call_command(*command, stdout=out)
    text = out.getvalue()
    assert "CONFLICT" in text and "Workspace object warehouse" in text
    assert "Dry run: 1 would be migrated, 1 left in Airflow" in text
    out = StringIO()
    call_command(
        *command, "--keys", "warehouse,legacy_ftp", "--execute", "--wait", "30", stdout=out
    )
    assert "not migrated: Already resolved here" in out.getvalue()
    run = MigrationRun.objects.get()
    assert run.status == MigrationRun.Status.SUCCEEDED
    assert list(run.items.values_list("object_key", flat=True)) == ["legacy_ftp"]
    assert resolved_password(team.deployment) == "prod-pass"
    assert rows_left(team) == ["warehouse"]
