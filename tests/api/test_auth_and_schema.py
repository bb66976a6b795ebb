"""Personal tokens, session auth with CSRF, IDE projects, and the OpenAPI schema."""

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.services import api_token_create
from deployments.models import IdeProject
from tests.api.conftest import body, field_names, objects_url


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_personal_token_reads_and_writes(team):
    _, plain = api_token_create(user=team.operator, name="ci")
    client = _bearer(plain)
    assert client.post(objects_url(team), body(), format="json").status_code == 201
    assert client.get(objects_url(team)).json()["totalCount"] == 1


def test_a_personal_token_carries_its_users_role(team):
    _, plain = api_token_create(user=team.author, name="ci")
    assert _bearer(plain).post(objects_url(team), body(), format="json").status_code == 403


def test_an_unknown_token_is_a_401(team):
    response = _bearer("emp_not-a-real-token").get(objects_url(team))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.fixture
def session(team):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(email=team.operator.email, password="pw-for-tests-123")
    return client


def test_a_session_reads_without_csrf(session, team):
    assert session.get(objects_url(team)).status_code == 200


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_a_session_needs_the_csrf_token_to_write(session, team, method):
    response = getattr(session, method)(objects_url(team), body(), format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]


def test_a_session_writes_with_the_csrf_token(session, team):
    session.get("/login/")
    token = session.cookies["csrftoken"].value
    response = session.post(objects_url(team), body(), format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


# IDE projects


def test_an_operator_creates_an_ide_project_and_members_list_it(api, team):
    url = f"/api/v1/workspaces/{team.workspace.pk}/ide-projects"
    response = api.as_user(team.operator).post(
        url, {"name": "notebooks", "description": "Data science"}, format="json"
    )
    assert response.status_code == 201
    project = IdeProject.objects.get(pk=response.json()["id"])
    assert (project.name, project.description) == ("notebooks", "Data science")
    listed = api.as_user(team.member).get(url).json()["ideProjects"]
    assert [(p["id"], p["name"], p["workspaceId"]) for p in listed] == [
        (project.pk, "notebooks", team.workspace.pk)
    ]


def test_ide_project_names_are_unique_and_required(api, team):
    url = f"/api/v1/workspaces/{team.workspace.pk}/ide-projects"
    client = api.as_user(team.operator)
    client.post(url, {"name": "notebooks"}, format="json")
    duplicate = client.post(url, {"name": "notebooks"}, format="json")
    assert duplicate.status_code == 409
    assert field_names(duplicate) == ["name"]
    assert field_names(client.post(url, {"name": ""}, format="json")) == ["name"]
    assert field_names(client.post(url, {"name": 5}, format="json")) == ["name"]


def test_ide_projects_of_another_workspace_are_404(api, team, other_team):
    url = f"/api/v1/workspaces/{other_team.workspace.pk}/ide-projects"
    assert api.as_user(team.owner).get(url).status_code == 404


# The schema


def test_the_openapi_schema_generates_and_validates(tmp_path, db):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    paths = schema["paths"]
    base = "/api/v1/workspaces/{workspace_id}"
    assert set(paths[f"{base}/environment-objects"]) == {"get", "post"}
    assert set(paths[f"{base}/environment-objects/{{object_id}}"]) == {"get", "patch", "delete"}
    assert set(paths[f"{base}/environment-objects/{{object_id}}/exclude-linking"]) == {"post"}
    assert set(paths[f"{base}/ide-projects"]) == {"get", "post"}
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_schema_never_offers_a_secret_field_in_a_response(db, tmp_path):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(path))
    components = yaml.safe_load(path.read_text())["components"]["schemas"]
    assert set(components["ConnectionBlock"]["properties"]) == {
        "type",
        "description",
        "host",
        "schema",
        "login",
        "port",
    }
    assert {"password", "basicToken", "headers"}.isdisjoint(
        components["MetricsExportBlock"]["properties"]
    )
    assert {"password", "extra"} <= set(components["ConnectionBlockRequest"]["properties"])


def test_the_served_schema_is_json_for_any_signed_in_user(api, team):
    response = api.as_user(team.member).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
