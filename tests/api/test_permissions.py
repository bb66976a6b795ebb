"""Every endpoint × every role: Owner, Operator, Author, Member, and an outsider (the Owner of
another Workspace, who must not learn that the Workspace exists)."""

import pytest
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts.services import membership_set
from envmanager.services import environment_object_create
from tests.api.conftest import body, object_url, objects_url
from tests.conftest import make_user
from tests.envmanager.test_environment_objects import PG

ROLES = ["OWNER", "OPERATOR", "AUTHOR", "MEMBER", "OUTSIDER"]


def _object(team, **kwargs):
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values=PG,
        **kwargs,
    )


def _colleague(team):
    """A member who is none of the callers, to change or remove."""
    user = make_user("colleague@example.com")
    membership_set(actor=team.owner, workspace=team.workspace, email=user.email, role="AUTHOR")
    return user


def _request(client, team, endpoint: str):
    obj = _object(team, auto_link_deployments=True)
    ws = f"/api/v1/workspaces/{team.workspace.pk}"
    calls = {
        "list": lambda: client.get(objects_url(team)),
        "create": lambda: client.post(objects_url(team), body("AIRFLOW_VARIABLE"), format="json"),
        "get": lambda: client.get(object_url(team, obj)),
        "patch": lambda: client.patch(
            object_url(team, obj), {"connection": {"host": "new.internal"}}, format="json"
        ),
        "delete": lambda: client.delete(object_url(team, obj)),
        "exclude": lambda: client.post(
            f"{object_url(team, obj)}/exclude-linking",
            {"scope": "DEPLOYMENT", "scopeEntityId": team.deployment.pk},
            format="json",
        ),
        "ide_list": lambda: client.get(f"{ws}/ide-projects"),
        "ide_create": lambda: client.post(f"{ws}/ide-projects", {"name": "dev"}, format="json"),
        "members_list": lambda: client.get(f"{ws}/members"),
        "member_role": lambda: client.post(
            f"{ws}/members", {"email": _colleague(team).email, "role": "OPERATOR"}, format="json"
        ),
        "member_remove": lambda: client.delete(f"{ws}/members/{_colleague(team).pk}"),
    }
    return calls[endpoint]()


#                 endpoint      Owner Operator Author Member Outsider
MATRIX = {
    "list": (200, 200, 200, 403, 404),
    "create": (201, 201, 403, 403, 404),
    "get": (200, 200, 200, 403, 404),
    "patch": (200, 200, 403, 403, 404),
    "delete": (204, 204, 403, 403, 404),
    "exclude": (200, 200, 403, 403, 404),
    "ide_list": (200, 200, 200, 200, 404),
    "ide_create": (201, 201, 403, 403, 404),
    "members_list": (200, 200, 200, 200, 404),
    "member_role": (201, 403, 403, 403, 404),
    "member_remove": (204, 403, 403, 403, 404),
}
CASES = [
    (endpoint, role, expected)
    for endpoint, statuses in MATRIX.items()
    for role, expected in zip(ROLES, statuses, strict=True)
]


@pytest.mark.parametrize(("endpoint", "role", "expected"), CASES)
def test_permission_matrix(api, team, other_team, endpoint, role, expected):
    user = other_team.owner if role == "OUTSIDER" else team.user(role)
    response = _request(api.as_user(user), team, endpoint)
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert set(response.json()) == {"message", "statusCode", "requestId", "fieldErrors"}
        assert response.json()["statusCode"] == expected


@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_every_endpoint_needs_authentication(team, endpoint):
    response = _request(APIClient(), team, endpoint)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_member_is_told_why_environment_objects_are_hidden(api, team):
    response = api.as_user(team.member).get(objects_url(team))
    assert response.status_code == 403
    assert "see environment objects" in response.json()["message"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_object_of_another_workspace_is_404_in_ones_own(api, team, other_team, method):
    theirs = _object(other_team)
    response = getattr(api.as_user(team.owner), method)(object_url(team, theirs), {}, format="json")
    assert response.status_code == 404


def test_exclude_linking_an_object_of_another_workspace_is_404(api, team, other_team):
    theirs = _object(other_team, auto_link_deployments=True)
    response = api.as_user(team.owner).post(
        f"{object_url(team, theirs)}/exclude-linking",
        {"scope": "DEPLOYMENT", "scopeEntityId": other_team.deployment.pk},
        format="json",
    )
    assert response.status_code == 404


def test_an_author_with_a_deployment_grant_creates_that_deployments_objects(api, team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    client = api.as_user(team.author)
    own = body("ENVIRONMENT_VARIABLE", scope="DEPLOYMENT", scopeEntityId=team.deployment.pk)
    assert client.post(objects_url(team), own, format="json").status_code == 201
    other = body("ENVIRONMENT_VARIABLE", scope="DEPLOYMENT", scopeEntityId=team.other_deployment.pk)
    assert client.post(objects_url(team), other, format="json").status_code == 403
    shared = body("ENVIRONMENT_VARIABLE")
    assert client.post(objects_url(team), shared, format="json").status_code == 403
