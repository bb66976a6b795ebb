"""Removing a member and changing a role, on the Workspace page and through the API."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Membership
from accounts.services import api_token_create, membership_set

LAST_OWNER = "A Workspace needs at least one Owner; make someone else Owner first."


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_url(team) -> str:
    return f"/workspaces/{team.workspace.pk}/"


def member_url(team, user) -> str:
    return f"/api/v1/workspaces/{team.workspace.pk}/members/{user.pk}"


def members(team) -> dict[str, str]:
    return dict(
        Membership.objects.filter(workspace=team.workspace).values_list("user__email", "role")
    )


def remove_on_page(client, team, user):
    return client.post(f"{page_url(team)}members/{user.pk}/remove/")


# The page


def test_an_owner_removes_a_member_after_a_dialog_and_they_lose_the_workspace(team):
    client = browser(team.owner)
    page = client.get(page_url(team)).content.decode()
    assert f'<dialog id="remove-member-{team.author.pk}">' in page
    response = remove_on_page(client, team, team.author)
    assert response.status_code == 302
    assert team.author.email not in members(team)
    assert f"Removed {team.author.email}" in client.get(page_url(team)).content.decode()
    removed = browser(team.author)
    assert removed.get(page_url(team)).status_code == 404
    assert removed.get(f"/deployments/{team.deployment.pk}/settings/").status_code == 404
    event = AuditEvent.objects.get(workspace=team.workspace, action="membership.remove")
    assert event.detail["email"] == team.author.email and event.actor_id == team.owner.pk


@pytest.mark.parametrize("role", ["OPERATOR", "AUTHOR", "MEMBER"])
def test_others_see_remove_disabled_with_the_reason_and_cannot_remove(team, role):
    client = browser(team.user(role))
    page = client.get(page_url(team)).content.decode()
    assert 'disabled title="Only Owners remove members.">Remove</button>' in page
    assert "remove-member-" not in page
    response = remove_on_page(client, team, team.author)
    assert response.status_code == 302
    assert "manage members" in client.get(page_url(team)).content.decode()
    assert len(members(team)) == 4


def test_the_last_owner_cannot_be_removed_and_the_page_says_why(team):
    client = browser(team.owner)
    page = client.get(page_url(team)).content.decode()
    assert f'disabled title="{LAST_OWNER}">Remove</button>' in page
    assert f'id="remove-member-{team.owner.pk}"' not in page
    after = client.post(f"{page_url(team)}members/{team.owner.pk}/remove/", follow=True)
    assert LAST_OWNER in after.content.decode()
    assert members(team)[team.owner.email] == "OWNER"


def test_with_a_second_owner_an_owner_may_leave_and_lands_on_their_workspaces(team):
    membership_set(
        actor=team.owner, workspace=team.workspace, email=team.operator.email, role="OWNER"
    )
    client = browser(team.owner)
    page = client.get(page_url(team)).content.decode()
    assert f'id="remove-member-{team.owner.pk}"' in page and LAST_OWNER not in page
    response = remove_on_page(client, team, team.owner)
    assert response.status_code == 302 and response["Location"] == "/"
    assert team.owner.email not in members(team)
    assert client.get(page_url(team)).status_code == 404


def test_removing_someone_who_is_not_a_member_is_404_and_changes_nothing(team, other_team):
    client = browser(team.owner)
    assert remove_on_page(client, team, other_team.owner).status_code == 404
    bad = client.post(f"{page_url(team)}members/x/remove/")
    assert bad.status_code == 404
    assert len(members(team)) == 4
    # Another tenant's Workspace page is a 404 too, for a member id of it.
    assert remove_on_page(client, other_team, other_team.owner).status_code == 404
    assert Membership.objects.filter(workspace=other_team.workspace).count() == 4


# The API


@pytest.mark.parametrize(
    ("role", "status"), [("OWNER", 204), ("OPERATOR", 403), ("AUTHOR", 403), ("MEMBER", 403)]
)
def test_only_owners_remove_members_through_the_api(api, team, role, status):
    response = api.as_user(team.user(role)).delete(member_url(team, team.author))
    assert response.status_code == status
    assert (team.author.email in members(team)) is (status != 204)
    if status == 403:
        assert "manage members" in response.json()["message"]


def test_a_removed_member_then_gets_404_for_the_workspace_even_with_a_token(api, team):
    _, plain = api_token_create(user=team.member, name="script")
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    ws = f"/api/v1/workspaces/{team.workspace.pk}"
    assert token_client.get(ws).status_code == 200
    assert api.as_user(team.owner).delete(member_url(team, team.member)).status_code == 204
    for path in (ws, f"{ws}/members", f"{ws}/deployments"):
        assert token_client.get(path).status_code == 404, path
    assert token_client.get("/api/v1/workspaces").json()["workspaces"] == []


def test_removing_the_last_owner_is_a_409(api, team):
    response = api.as_user(team.owner).delete(member_url(team, team.owner))
    assert response.status_code == 409
    assert response.json()["message"] == LAST_OWNER
    assert members(team)[team.owner.email] == "OWNER"


def test_a_user_not_in_the_workspace_or_of_another_tenant_is_404(api, team, other_team):
    client = api.as_user(team.owner)
    assert client.delete(member_url(team, other_team.owner)).status_code == 404
    assert client.delete(f"/api/v1/workspaces/{team.workspace.pk}/members/999999").status_code == (
        404
    )
    theirs = f"/api/v1/workspaces/{other_team.workspace.pk}/members/{other_team.member.pk}"
    assert client.delete(theirs).status_code == 404
    assert Membership.objects.filter(workspace=other_team.workspace).count() == 4


def test_posting_an_existing_members_email_changes_their_role(api, team):
    url = f"/api/v1/workspaces/{team.workspace.pk}/members"
    client = api.as_user(team.owner)
    response = client.post(url, {"email": team.member.email, "role": "OPERATOR"}, format="json")
    assert response.status_code == 201
    assert (response.json()["userId"], response.json()["role"]) == (team.member.pk, "OPERATOR")
    listed = {m["email"]: m["role"] for m in client.get(url).json()["members"]}
    assert listed[team.member.email] == "OPERATOR" and len(listed) == 4
    demote = client.post(url, {"email": team.owner.email, "role": "MEMBER"}, format="json")
    assert demote.status_code == 409


def test_the_schema_documents_role_changes_and_removal(api, team):
    schema = api.as_user(team.member).get("/api/v1/schema/", {"format": "json"}).json()
    members_path = schema["paths"]["/api/v1/workspaces/{workspace_id}/members"]
    assert "role becomes `role`" in members_path["post"]["description"]
    member_path = schema["paths"]["/api/v1/workspaces/{workspace_id}/members/{user_id}"]
    assert set(member_path["delete"]["responses"]) == {"204", "401", "403", "404", "409"}
