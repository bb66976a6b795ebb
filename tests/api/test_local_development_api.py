"""GET /api/v1/deployments/{id}/local-development (what `envmanager-env pull` reads): a
Deployment's whole resolved environment with its secrets, under the rule that shows secrets
(the Workspace allows local development; Authors and above), each object audited; refused
with the reason otherwise, and then nothing is revealed or recorded."""

import json

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from accounts.services import api_token_create, workspace_update
from deployments.services import deployment_token_create
from envmanager.services import environment_object_create, link_create

ENV_SECRET = "env-S3CRET-local"
CONN_PASSWORD = "conn-pw-S3CRET-local"
OVERRIDE_PASSWORD = "over-pw-S3CRET-local"


def url(deployment) -> str:
    return f"/api/v1/deployments/{deployment.pk}/local-development"


@pytest.fixture
def environment(team):
    region = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="REGION",
        values={"value": "us-east-1"},
    )
    link_create(
        user=team.operator, obj=region, deployment=team.deployment, overrides={"value": "eu"}
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="API_TOKEN",
        values={"value": ENV_SECRET, "is_secret": True},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "db", "password": CONN_PASSWORD, "schema": ""},
    )
    link_create(
        user=team.operator,
        obj=conn,
        deployment=team.deployment,
        overrides={"password": OVERRIDE_PASSWORD},
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="batch_size",
        values={"value": "500"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    # Not linked to this Deployment: not pulled.
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="ELSEWHERE",
        values={"value": "x"},
    )
    return team


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_an_author_pulls_the_whole_resolved_environment_with_a_personal_token(environment):
    team = environment
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    _, token = api_token_create(user=team.author, name="laptop")
    response = bearer(token).get(url(team.deployment))
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["deploymentId"] == team.deployment.pk
    assert body["environmentVariables"] == {"API_TOKEN": ENV_SECRET, "REGION": "eu"}
    assert body["dotenv"] == f"API_TOKEN='{ENV_SECRET}'\nREGION='eu'\n"
    connections = json.loads(body["connectionsFile"])
    assert connections == {
        "warehouse": {
            "conn_type": "postgres",
            "description": None,
            "login": None,
            "password": OVERRIDE_PASSWORD,  # the Deployment's override
            "host": "db",
            "port": None,
            "schema": "",  # empty text stays empty text
            "extra": None,
        }
    }
    assert json.loads(body["variablesFile"]) == {"batch_size": 500}
    # One audit row per object revealed, naming the Deployment.
    events = AuditEvent.objects.filter(action="secrets.reveal", actor=team.author)
    assert sorted(events.values_list("object_key", flat=True)) == [
        "API_TOKEN",
        "REGION",
        "batch_size",
        "warehouse",
    ]
    assert {e.deployment_id for e in events} == {team.deployment.pk}
    assert {e.detail["via"] for e in events} == {"pull"}


def test_refused_with_the_reason_where_the_workspace_does_not_allow_it(api, environment):
    team = environment
    response = api.as_user(team.owner).get(url(team.deployment))
    assert response.status_code == 403
    assert "local development" in response.json()["message"]
    for secret in (ENV_SECRET, CONN_PASSWORD, OVERRIDE_PASSWORD):
        assert secret not in response.content.decode()
    assert not AuditEvent.objects.filter(action="secrets.reveal").exists()


def test_a_member_is_refused_and_another_workspace_sees_no_deployment(api, environment, other_team):
    team = environment
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    assert api.as_user(team.member).get(url(team.deployment)).status_code == 403
    assert api.as_user(other_team.owner).get(url(team.deployment)).status_code == 404
    assert not AuditEvent.objects.filter(action="secrets.reveal").exists()


def test_a_deployment_token_is_no_personal_token(environment):
    team = environment
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    assert bearer(token).get(url(team.deployment)).status_code == 401
