"""Small things a walk through every page found: wording, buttons, copy buttons, tabs."""

import pytest
from django.test import Client

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
