"""Authors see every field of an object on its page, read-only, with secrets masked."""

import pytest
from django.test import Client

from envmanager.services import environment_object_create

pytestmark = pytest.mark.django_db


def page(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_an_author_sees_every_field_of_a_connection_with_secrets_masked(team):
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={
            "conn_type": "postgres",
            "description": "The warehouse",
            "host": "db.internal",
            "schema": "",
            "login": "etl",
            "password": "pw-readonly-1",
            "port": 5432,
            "extra": {"sslmode": "require-secret-extra"},
        },
    )
    html = page(team.author, f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/")
    for shown in ("postgres", "The warehouse", "db.internal", "etl", "5432"):
        assert f"<code>{shown}</code>" in html
    assert '<dd data-field="schema"> <span class="muted small">empty</span>' in html
    assert "pw-readonly-1" not in html and "require-secret-extra" not in html
    assert html.count("secret, set") == 2  # password and extra
    assert 'name="conn_type"' not in html  # no form to change it


def test_an_author_sees_a_deployment_variable_and_its_secret_flag(team):
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="api_key",
        values={"value": "v-readonly-secret", "is_secret": True},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    html = page(team.author, f"/deployments/{team.deployment.pk}/environment/{obj.pk}/")
    assert "v-readonly-secret" not in html
    assert '<dd data-field="value"><code>••••••••</code>' in html
    assert '<dd data-field="description"> <span class="muted small">not set</span>' in html
    assert '<dd data-field="is_secret"><code>Yes</code>' in html


def test_json_fields_show_whole_when_they_are_not_secret(team):
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="METRICS_EXPORT",
        key="prom",
        values={"endpoint": "https://prom.example.com/api/v1/write", "labels": {"team": "data"}},
    )
    html = page(team.author, f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/")
    assert "https://prom.example.com/api/v1/write" in html
    assert "&quot;team&quot;: &quot;data&quot;" in html
