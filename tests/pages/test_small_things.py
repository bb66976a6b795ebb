"""Small things a walk through every page found: wording, buttons, copy buttons, tabs."""

import pytest
from django.test import Client

from envmanager.models import EnvironmentObject
from envmanager.services import environment_object_create

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_airflow_variable_keeps_its_capital_everywhere(team, airflow_sqlite):
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="mode",
        values={"value": "prod"},
    )
    client = browser(team.owner)
    w, d = team.workspace.pk, team.deployment.pk
    pages = [
        f"/workspaces/{w}/environment/?type=airflow-variables",
        f"/workspaces/{w}/environment/{obj.pk}/",
        f"/workspaces/{w}/environment/{obj.pk}/history/",
        f"/deployments/{d}/environment/?type=airflow-variables",
        f"/deployments/{d}/migrate/variables/",
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert "airflow variable" not in html, url
    listing = client.get(pages[0]).content.decode()
    assert "New Airflow variable" in listing
    assert "Workspace Airflow variable" in client.get(pages[1]).content.decode()
    assert "Migrate Airflow variables from Airflow" in client.get(pages[4]).content.decode()


def test_create_panels_have_a_cancel(team):
    client = browser(team.owner)
    w = team.workspace.pk
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres"},
    )
    for url in (
        f"/workspaces/{w}/",
        f"/workspaces/{w}/environment/?type=connections",
        f"/workspaces/{w}/environment/{obj.pk}/",
        f"/deployments/{team.deployment.pk}/environment/?type=connections",
    ):
        html = client.get(url).content.decode()
        assert '<button class="btn" type="button" data-close-details>Cancel</button>' in html, url


def test_the_tokens_page_has_the_deployments_tabs(team):
    html = browser(team.member).get(f"/deployments/{team.deployment.pk}/tokens/").content.decode()
    assert 'aria-current="page">Tokens</a>' in html
    assert f'href="/deployments/{team.deployment.pk}/settings/"' in html
    # A Member's Environment tab is dimmed with the reason, not a link to a refusal.
    assert f'href="/deployments/{team.deployment.pk}/environment/"' not in html
    assert 'title="Members see a Deployment, not its environment objects' in html


def test_keys_on_the_deployment_tab_open_their_object(team):
    shared = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres"},
        auto_link_deployments=True,
    )
    own = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="scratch",
        values={"conn_type": "sqlite"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    d = team.deployment.pk
    html = browser(team.author).get(f"/deployments/{d}/environment/").content.decode()
    w = team.workspace.pk
    assert f'<a href="/workspaces/{w}/environment/{shared.pk}/"><code>warehouse</code></a>' in html
    assert f'<a href="/deployments/{d}/environment/{own.pk}/"><code>scratch</code></a>' in html


def test_the_header_links_the_api_docs(team):
    client = browser(team.member)
    html = client.get(f"/workspaces/{team.workspace.pk}/").content.decode()
    assert '<a href="/api/v1/docs/">API docs</a>' in html
    assert client.get("/api/v1/docs/").status_code == 200


def test_the_promote_dialog_says_up_front_when_the_workspace_has_the_key(team):
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="mode",
        values={"value": "shared"},
    )
    for key in ("mode", "fresh"):
        environment_object_create(
            user=team.owner,
            workspace=team.workspace,
            object_type="AIRFLOW_VARIABLE",
            key=key,
            values={"value": "own"},
            scope="DEPLOYMENT",
            deployment=team.deployment,
        )
    d = team.deployment.pk
    client = browser(team.operator)
    tab = client.get(f"/deployments/{d}/environment/?type=airflow-variables").content.decode()
    assert tab.count("data-promote-exists") == 1
    assert "The Workspace already has Airflow variable mode." in tab
    for key, exists in (("mode", True), ("fresh", False)):
        obj = EnvironmentObject.objects.get(key=key, scope="DEPLOYMENT")
        page = client.get(f"/deployments/{d}/environment/{obj.pk}/").content.decode()
        assert ("data-promote-exists" in page) is exists
