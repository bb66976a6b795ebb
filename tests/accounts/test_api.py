import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.services import api_token_create
from deployments.models import Deployment


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_unauthenticated_requests_get_401_json(db):
    response = APIClient().get("/api/v1/workspaces")
    assert response.status_code == 401
    assert set(response.json()) == {"message", "statusCode", "requestId", "fieldErrors"}


def test_personal_token_authenticates_and_lists_only_own_workspaces(team, other_team):
    _, plain = api_token_create(user=team.author, name="script")
    response = bearer(plain).get("/api/v1/workspaces")
    assert response.status_code == 200
    assert [w["name"] for w in response.json()["workspaces"]] == ["Data Platform"]


def test_token_is_stored_hashed_and_revocation_stops_it(team):
    from accounts.models import ApiToken
    from accounts.services import api_token_revoke

    token, plain = api_token_create(user=team.owner, name="ci")
    assert plain not in ApiToken.objects.filter(pk=token.pk).values_list("token_hash", flat=True)[0]
    assert bearer(plain).get("/api/v1/workspaces").status_code == 200
    api_token_revoke(user=team.owner, token=token)
    assert bearer(plain).get("/api/v1/workspaces").status_code == 401


def test_create_api_token_command_prints_a_working_token(team, capsys):
    call_command("create_api_token", team.operator.email)
    plain = capsys.readouterr().out.strip()
    assert bearer(plain).get(f"/api/v1/workspaces/{team.workspace.pk}").status_code == 200


def test_creating_a_workspace_makes_the_caller_owner(api, team):
    response = api.as_user(team.member).post("/api/v1/workspaces", {"name": "Mine"}, format="json")
    assert response.status_code == 201
    members = api.get(f"/api/v1/workspaces/{response.json()['id']}/members").json()["members"]
    assert [(m["email"], m["role"]) for m in members] == [(team.member.email, "OWNER")]


def test_workspace_create_refuses_a_blank_name(api, team):
    response = api.as_user(team.owner).post("/api/v1/workspaces", {"name": ""}, format="json")
    assert response.status_code == 400
    assert response.json()["fieldErrors"][0]["field"] == "name"


def test_another_tenants_workspace_is_404(api, team, other_team):
    client = api.as_user(team.owner)
    wid = other_team.workspace.pk
    assert client.get(f"/api/v1/workspaces/{wid}").status_code == 404
    assert client.get(f"/api/v1/workspaces/{wid}/members").status_code == 404
    assert client.get(f"/api/v1/workspaces/{wid}/deployments").status_code == 404
    assert (
        client.post(
            f"/api/v1/deployments/{other_team.deployment.pk}/tokens", {"name": "x"}, format="json"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("role", "status"), [("OWNER", 201), ("OPERATOR", 403), ("AUTHOR", 403), ("MEMBER", 403)]
)
def test_only_owners_add_members(api, team, role, status):
    from tests.conftest import make_user

    make_user("new@example.com")
    response = api.as_user(team.user(role)).post(
        f"/api/v1/workspaces/{team.workspace.pk}/members",
        {"email": "new@example.com", "role": "AUTHOR"},
        format="json",
    )
    assert response.status_code == status


def test_adding_an_unknown_email_or_role_is_a_clear_error(api, team):
    url = f"/api/v1/workspaces/{team.workspace.pk}/members"
    client = api.as_user(team.owner)
    assert (
        client.post(
            url, {"email": "nobody@example.com", "role": "AUTHOR"}, format="json"
        ).status_code
        == 404
    )
    response = client.post(url, {"email": team.member.email, "role": "KING"}, format="json")
    assert response.status_code == 400
    assert response.json()["fieldErrors"][0]["field"] == "role"


@pytest.mark.parametrize(
    ("role", "status"), [("OWNER", 201), ("OPERATOR", 201), ("AUTHOR", 403), ("MEMBER", 403)]
)
def test_deployment_create_by_role(api, team, role, status):
    response = api.as_user(team.user(role)).post(
        f"/api/v1/workspaces/{team.workspace.pk}/deployments",
        {"name": "new-one", "kind": "STANDARD"},
        format="json",
    )
    assert response.status_code == status


def test_only_owners_give_a_new_deployment_a_metadata_database(api, team, airflow_sqlite):
    url, key = airflow_sqlite()
    payload = {"name": "new-one", "metadataDbUrl": url, "fernetKey": key}
    path = f"/api/v1/workspaces/{team.workspace.pk}/deployments"
    assert api.as_user(team.operator).post(path, payload, format="json").status_code == 403
    assert not Deployment.objects.filter(name="new-one").exists()
    assert api.as_user(team.owner).post(path, payload, format="json").status_code == 201


def test_deployment_secrets_are_write_only(api, team, airflow_sqlite):
    url, key = airflow_sqlite("hunter2-airflow.db")
    response = api.as_user(team.owner).post(
        f"/api/v1/workspaces/{team.workspace.pk}/deployments",
        {"name": "secretive", "metadataDbUrl": url, "fernetKey": key},
        format="json",
    )
    assert response.status_code == 201
    body = response.content.decode()
    assert "hunter2" not in body and key not in body
    assert response.json()["hasMetadataDbUrl"] is True
    listing = api.get(f"/api/v1/workspaces/{team.workspace.pk}/deployments").content.decode()
    assert "hunter2" not in listing and key not in listing


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ({"name": "x", "metadataDbUrl": "mysql://db/af"}, "metadataDbUrl", 400),
        ({"name": "x", "fernetKey": "not-a-key"}, "fernetKey", 400),
        ({"name": "x", "kind": "HYBRID"}, "kind", 400),
        ({"name": "production"}, "name", 409),  # the name of a Deployment that exists
    ],
)
def test_bad_deployment_input_is_refused(api, team, payload, field, status):
    response = api.as_user(team.owner).post(
        f"/api/v1/workspaces/{team.workspace.pk}/deployments", payload, format="json"
    )
    assert response.status_code == status
    assert field in [f["field"] for f in response.json()["fieldErrors"]]
    assert "not-a-key" not in response.content.decode()


def test_deployment_tokens_shown_once_and_only_operators_create_them(api, team):
    url = f"/api/v1/deployments/{team.deployment.pk}/tokens"
    assert api.as_user(team.author).post(url, {"name": "af"}, format="json").status_code == 403
    response = api.as_user(team.operator).post(url, {"name": "af"}, format="json")
    assert response.status_code == 201
    plain = response.json()["token"]
    assert plain.startswith("emd_")
    listed = api.get(url).content.decode()
    assert plain not in listed


def test_session_api_requires_csrf_for_writes(team):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username=team.owner.email, password="pw-for-tests-123")
    assert client.get("/api/v1/workspaces").status_code == 200
    response = client.post("/api/v1/workspaces", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]


def test_openapi_schema_is_served(api, team):
    response = api.as_user(team.member).get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"/api/v1/workspaces" in response.content
