"""The audit log page: actions in words, the object and Deployment of each event, linked while
they exist, and migration runs linked."""

import re

import pytest
from django.test import Client

from deployments.services import deployment_update
from envmanager.services import environment_object_create, environment_object_delete, link_create
from envmanager.services.migration import migration_start

pytestmark = pytest.mark.django_db


def audit_page(team, **params) -> str:
    client = Client()
    client.force_login(team.owner)
    response = client.get(f"/workspaces/{team.workspace.pk}/audit/", params)
    assert response.status_code == 200
    return response.content.decode()


def test_actions_read_as_words_with_the_code_kept_for_the_filter(team):
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="mode",
        values={"value": "prod"},
    )
    html = audit_page(team)
    assert '<span title="environment_object.create">Object created</span>' in html
    assert '<span title="membership.set">Member role set</span>' in html
    assert "<code>environment_object.create</code>" not in html
    # The filter still takes the code (a prefix): it offers each with its name.
    assert '<option value="link.override">Override saved</option>' in html


def test_objects_and_deployments_are_linked_while_they_exist(team):
    kept = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres"},
    )
    link_create(user=team.owner, obj=kept, deployment=team.deployment)
    own = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="OWN",
        values={"value": "1"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    gone = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="gone",
        values={"value": "1"},
    )
    environment_object_delete(user=team.owner, obj=gone)
    html = audit_page(team)
    w, d = team.workspace.pk, team.deployment.pk
    assert (
        f'Connection <a href="/workspaces/{w}/environment/{kept.pk}/"><code>warehouse</code></a>'
        in html
    )
    assert f'<a href="/deployments/{d}/environment/{own.pk}/"><code>OWN</code></a>' in html
    # A deleted object is named, not linked.
    assert "Airflow variable <code>gone</code>" in html
    assert f'/environment/{gone.pk}/"' not in html
    # The link's Deployment, and the Deployment-scoped object's.
    assert html.count(f'<a href="/deployments/{d}/environment/">production</a>') >= 2


def test_migration_events_link_their_run(team, airflow_sqlite, django_capture_on_commit_callbacks):
    url, key = airflow_sqlite("audit.db", {"legacy": {"conn_type": "ftp"}}, {})
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=key
    )
    team.deployment.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        run = migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=["legacy"],
        )
    html = audit_page(team, action="migration")
    assert '<span title="migration.start">Migration started</span>' in html
    assert len(re.findall(rf'<a href="/migrations/{run.pk}/">run #{run.pk}</a>', html)) >= 3
