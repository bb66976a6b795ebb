"""Personal API tokens: the API tokens page and `/api/v1/me/tokens`, and their audit rows."""

import json
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditEvent
from accounts.services import api_token_create, membership_set, workspace_create
from tests import secret_scan
from tests.conftest import make_user

PAGE = "/account/tokens/"
API = "/api/v1/me/tokens"
PASSWORD = "pw-for-tests-123"
PLAIN = re.compile(r"emp_[A-Za-z0-9_-]{20,}")


def remember(plain: str) -> str:
    """The end-of-run log scan (tests/secret_scan.py) looks for this token too."""
    secret_scan.seen_secrets.add(plain)
    return plain


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bearer(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def session(user) -> APIClient:
    """A signed-in browser session talking to the API, CSRF enforced as in a browser."""
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(email=user.email, password=PASSWORD)
    client.get("/login/")
    client.csrf = client.cookies["csrftoken"].value
    return client


def created_on_page(response) -> str:
    return remember(PLAIN.search(response.content.decode()).group(0))


# The page


def test_a_created_token_is_shown_once_and_then_authenticates_the_api(team):
    client = browser(team.operator)
    posted = client.post(PAGE + "new/", {"name": "ci-pipeline"})
    # Answered with a redirect: reloading the page it leads to makes no second token.
    assert posted.status_code == 302
    response = client.get(posted.url)
    assert "shown only once" in response.content.decode()
    plain = created_on_page(response)
    assert "no-store" in response["Cache-Control"]
    assert ApiToken.objects.filter(user=team.operator).count() == 1
    token = ApiToken.objects.get(user=team.operator)
    assert (token.name, plain.startswith(token.hint), token.hint.startswith("emp_")) == (
        "ci-pipeline",
        True,
        True,
    )
    assert plain not in token.token_hash
    # Neither the messages cookie nor the session kept it.
    assert plain not in str(response.cookies)
    assert all(plain not in str(value) for value in client.session.values())

    again = client.get(PAGE).content.decode()
    assert plain not in again
    assert f"{token.hint}…" in again and "ci-pipeline" in again

    workspaces = bearer(plain).get("/api/v1/workspaces")
    assert workspaces.status_code == 200
    assert [w["name"] for w in workspaces.json()["workspaces"]] == ["Data Platform"]
    assert "never" not in client.get(PAGE).content.decode()  # last used is now shown


def test_revoke_asks_in_a_dialog_and_the_token_stops_working(team):
    token, plain = api_token_create(user=team.author, name="laptop")
    remember(plain)
    client = browser(team.author)
    page = client.get(PAGE).content.decode()
    assert f'<dialog id="revoke-{token.pk}">' in page
    response = client.post(PAGE + "revoke/", {"token_id": token.pk})
    assert response.status_code == 302
    assert bearer(plain).get("/api/v1/workspaces").status_code == 401
    page = client.get(PAGE).content.decode()
    assert "Revoked laptop." in page and "revoked" in page
    assert f'<dialog id="revoke-{token.pk}">' not in page


def test_the_page_lists_and_revokes_only_ones_own_tokens(team):
    theirs, plain = api_token_create(user=team.owner, name="owners-token")
    remember(plain)
    client = browser(team.member)
    assert "owners-token" not in client.get(PAGE).content.decode()
    client.post(PAGE + "revoke/", {"token_id": theirs.pk})
    client.post(PAGE + "revoke/", {"token_id": "not-a-number"})
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert bearer(plain).get("/api/v1/workspaces").status_code == 200


def test_a_token_needs_a_name(team):
    response = browser(team.member).post(PAGE + "new/", {"name": "  "}, follow=True)
    assert "A token needs a name" in response.content.decode()
    assert not PLAIN.search(response.content.decode())
    assert not ApiToken.objects.exists()


def test_every_page_links_to_the_api_tokens_page(team):
    page = browser(team.member).get(f"/workspaces/{team.workspace.pk}/").content.decode()
    assert f'href="{PAGE}"' in page


def test_the_page_needs_a_login(db):
    response = Client().get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Client().post(PAGE + "new/", {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


# The API


def test_a_session_creates_lists_and_revokes_tokens(team):
    client = session(team.operator)
    refused = client.post(API, {"name": "ci"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]

    response = client.post(API, {"name": "ci"}, format="json", HTTP_X_CSRFTOKEN=client.csrf)
    assert response.status_code == 201
    body = response.json()
    plain = remember(body["token"])
    assert plain.startswith(body["hint"]) and body["name"] == "ci"
    assert body["revokedAt"] is None and body["lastUsedAt"] is None

    listed = client.get(API)
    assert listed.status_code == 200
    assert [(t["id"], t["name"], t["hint"]) for t in listed.json()["tokens"]] == [
        (body["id"], "ci", body["hint"])
    ]
    assert "token" not in listed.json()["tokens"][0]
    stored_hash = ApiToken.objects.get(pk=body["id"]).token_hash
    assert plain not in listed.content.decode() and stored_hash not in listed.content.decode()

    assert bearer(plain).get(f"/api/v1/workspaces/{team.workspace.pk}").status_code == 200
    revoked = client.post(f"{API}/{body['id']}/revoke", HTTP_X_CSRFTOKEN=client.csrf)
    assert revoked.status_code == 200 and revoked.json()["revokedAt"] is not None
    assert plain not in revoked.content.decode()
    assert bearer(plain).get(f"/api/v1/workspaces/{team.workspace.pk}").status_code == 401


def test_a_personal_token_cannot_create_tokens(team):
    _, plain = api_token_create(user=team.owner, name="leaked")
    remember(plain)
    response = bearer(plain).post(API, {"name": "successor"}, format="json")
    assert response.status_code == 403
    assert "personal API token cannot create API tokens" in response.json()["message"]
    assert not PLAIN.search(response.content.decode())
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["leaked"]
    assert not AuditEvent.objects.filter(action="api_token.create", detail__name="successor")


def test_a_personal_token_lists_and_revokes_its_users_tokens_itself_included(team):
    other, _ = api_token_create(user=team.author, name="other")
    own, plain = api_token_create(user=team.author, name="script")
    remember(plain)
    client = bearer(plain)
    assert {t["name"] for t in client.get(API).json()["tokens"]} == {"other", "script"}
    assert client.post(f"{API}/{other.pk}/revoke").status_code == 200
    assert client.post(f"{API}/{own.pk}/revoke").status_code == 200
    assert client.get(API).status_code == 401
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 0


def test_another_users_token_is_404(api, team):
    theirs, _ = api_token_create(user=team.owner, name="owners")
    client = api.as_user(team.member)
    response = client.post(f"{API}/{theirs.pk}/revoke")
    assert response.status_code == 404
    assert client.post(f"{API}/999999/revoke").status_code == 404
    assert client.get(API).json()["tokens"] == []
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_the_tokens_api_needs_authentication(team):
    assert APIClient().get(API).status_code == 401
    assert APIClient().post(API, {"name": "x"}, format="json").status_code == 401


def test_a_name_is_required_and_at_most_100_characters(api, team):
    client = api.as_user(team.member)
    for name in ("", "x" * 101):
        response = client.post(API, {"name": name}, format="json")
        assert response.status_code == 400
        assert response.json()["fieldErrors"][0]["field"] == "name"
    assert not ApiToken.objects.exists()


# The audit log


def _token_events(workspace, action: str):
    return list(AuditEvent.objects.filter(workspace=workspace, action=action))


@pytest.fixture
def in_two_workspaces(team, other_team):
    """The Operator of `team` is also a Member of the other Workspace; a third stays apart."""
    membership_set(
        actor=other_team.owner,
        workspace=other_team.workspace,
        email=team.operator.email,
        role="MEMBER",
    )
    return team.operator


def test_creating_and_revoking_is_audited_in_each_of_the_users_workspaces(
    in_two_workspaces, team, other_team
):
    user = in_two_workspaces
    apart = make_user("apart@example.com")
    third = workspace_create(user=apart, name="Third")
    client = session(user)
    body = client.post(API, {"name": "ci"}, format="json", HTTP_X_CSRFTOKEN=client.csrf).json()
    plain = remember(body["token"])
    for workspace in (team.workspace, other_team.workspace):
        (event,) = _token_events(workspace, "api_token.create")
        assert event.actor_id == user.pk and event.actor_label == user.email
        assert event.detail == {"tokenId": body["id"], "name": "ci", "hint": body["hint"]}
    assert not _token_events(third, "api_token.create")

    client.post(f"{API}/{body['id']}/revoke", HTTP_X_CSRFTOKEN=client.csrf)
    client.post(f"{API}/{body['id']}/revoke", HTTP_X_CSRFTOKEN=client.csrf)  # changes nothing
    for workspace in (team.workspace, other_team.workspace):
        (event,) = _token_events(workspace, "api_token.revoke")
        assert event.detail["hint"] == body["hint"]
    assert not _token_events(third, "api_token.revoke")

    everything = json.dumps(list(AuditEvent.objects.values("detail", "actor_label")))
    assert plain not in everything


def test_the_audit_log_page_names_the_token_and_filters_by_its_actions(team):
    client = browser(team.owner)
    created = created_on_page(client.post(PAGE + "new/", {"name": "deploy-bot"}, follow=True))
    hint = ApiToken.objects.get().hint
    page = client.get(f"/workspaces/{team.workspace.pk}/audit/", {"action": "api_token.create"})
    text = page.content.decode()
    assert "API token deploy-bot" in text and f"<code>{hint}…</code>" in text
    assert "<code>membership.set</code>" not in text
    assert created not in text


def test_a_failing_audit_write_leaves_no_token_and_revokes_nothing(team, monkeypatch):
    from accounts import services

    kept, plain = api_token_create(user=team.owner, name="kept")
    remember(plain)

    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "audit_record", broken)
    with pytest.raises(RuntimeError):
        services.api_token_create(user=team.owner, name="ci")
    with pytest.raises(RuntimeError):
        services.api_token_revoke(user=team.owner, token=kept)
    assert list(ApiToken.objects.values_list("name", "revoked_at")) == [("kept", None)]
