"""Every page shows a moment with its date, time and time zone, the same way."""

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.test import Client

from deployments.services import deployment_token_create
from envmanager.services import environment_object_create, environment_object_delete


def render(value) -> str:
    return Template("{% load times %}{{ value|when|default:'never' }}").render(
        Context({"value": value})
    )


def test_a_moment_reads_with_date_time_and_zone():
    moment = datetime(2026, 12, 4, 13, 5, 9, tzinfo=UTC)
    assert (
        render(moment)
        == '<time datetime="2026-12-04T13:05:09+00:00">2026-12-04 13:05:09 UTC</time>'
    )
    assert render(None) == "never"


@pytest.mark.django_db
def test_tokens_audit_history_and_deleted_objects_show_the_zone(team):
    deployment_token_create(user=team.owner, deployment=team.deployment, name="airflow-prod")
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="gone",
        values={"value": "1"},
    )
    environment_object_delete(user=team.owner, obj=obj)
    client = Client()
    client.force_login(team.owner)
    w = team.workspace.pk
    for url in (
        f"/deployments/{team.deployment.pk}/tokens/",
        f"/workspaces/{w}/audit/",
        f"/workspaces/{w}/environment/{obj.pk}/history/",
        f"/workspaces/{w}/environment/deleted/",
    ):
        html = client.get(url).content.decode()
        assert " UTC</time>" in html, url
