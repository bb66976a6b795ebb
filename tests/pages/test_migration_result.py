"""The migration run's result page: each key opens its object, the Workspace Environment is a
click away, and after an undo each object says what the undo did to it."""

import pytest
from django.test import Client

from deployments.services import deployment_update
from envmanager.models import EnvironmentObject, MigrationRun
from envmanager.services import environment_object_create, environment_object_update
from envmanager.services.migration import migration_start, migration_undo

CONNECTIONS = {
    "legacy_ftp": {"conn_type": "ftp", "host": "ftp.old"},
    "reports": {"conn_type": "http", "host": "reports.old"},
    "warehouse": {"conn_type": "postgres", "host": "db"},
}


@pytest.fixture
def migrated(team, airflow_sqlite, django_capture_on_commit_callbacks):
    # warehouse exists in the Workspace (not linked): the run overrides it for production.
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "db.workspace"},
    )
    url, key = airflow_sqlite("result.db", CONNECTIONS, {})
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
    team.run = run
    return team


def result_page(team) -> str:
    client = Client()
    client.force_login(team.owner)
    response = client.get(f"/migrations/{team.run.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_each_key_opens_its_object_and_the_workspace_environment_is_linked(migrated):
    html = result_page(migrated)
    workspace = migrated.workspace.pk
    for key in CONNECTIONS:
        obj = EnvironmentObject.objects.get(key=key)
        assert f'href="/workspaces/{workspace}/environment/{obj.pk}/"><code>{key}</code>' in html
    assert (
        f'href="/workspaces/{workspace}/environment/?type=connections">View in Workspace '
        "Environment</a>" in html
    )


def test_after_an_undo_each_object_says_what_the_undo_did(
    migrated, django_capture_on_commit_callbacks
):
    legacy = EnvironmentObject.objects.get(key="legacy_ftp")
    environment_object_update(
        user=migrated.owner, obj=legacy, values={**legacy.values, "host": "ftp.edited"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        migration_undo(user=migrated.owner, run=migrated.run, choices={"legacy_ftp": "undo"})
    html = result_page(migrated)
    reasons = {item.object_key: item.reason for item in migrated.run.items.all()}
    assert reasons == {
        "legacy_ftp": "Restored its row in Airflow. Withdrew this Deployment's link; kept the "
        "Workspace object for the work done since: It was edited since the migration.",
        "reports": "Restored its row in Airflow. Removed the Workspace object the migration made.",
        "warehouse": "Restored its row in Airflow. Withdrew this Deployment's link to the "
        "existing Workspace object; the object stays.",
    }
    assert "What the undo did" in html
    for reason in reasons.values():
        assert reason.replace("'", "&#x27;") in html
    # The removed object is text now; the kept ones are no longer this run's to link.
    assert "<td><code>reports</code></td>" in html
