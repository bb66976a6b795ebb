"""The Deployment tokens page, for every role."""

import json
import re

import pytest
from django.test import Client

from deployments.models import DeploymentToken
from deployments.services import deployment_token_create
from envmanager.lookups import lookup_counter
from envmanager.services import environment_object_create


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(deployment) -> str:
    return f"/deployments/{deployment.pk}/tokens/"


@pytest.mark.parametrize("role", ["owner", "operator"])
def test_operators_and_owners_create_a_token_shown_once_with_the_airflow_settings(team, role):
    client = browser(getattr(team, role))
    posted = client.post(url(team.deployment) + "new/", {"name": "airflow-prod"})
    # Answered with a redirect: reloading the page it leads to makes no second token.
    assert posted.status_code == 302
    response = client.get(posted.url)
    page = response.content.decode()
    plain = re.search(r"emd_[A-Za-z0-9_-]{20,}", page).group(0)
    assert "AIRFLOW__SECRETS__BACKEND=envmanager_secrets.EnvManagerSecretsBackend" in page
    kwargs = re.search(r"AIRFLOW__SECRETS__BACKEND_KWARGS='([^']*)'", page).group(1)
    assert json.loads(kwargs.replace("&quot;", '"')) == {
        "base_url": "http://testserver",
        "token": plain,
    }
    token = DeploymentToken.objects.get(deployment=team.deployment)  # one, not two
    assert (token.name, plain.startswith(token.hint)) == ("airflow-prod", True)
    # Kept for that one view only sealed, then gone from the session.
    assert all(plain not in str(value) for value in client.session.values())
    assert "no-store" in response["Cache-Control"]  # no browser or proxy keeps the answer
    # Shown once: the list afterwards has only the hint.
    again = client.get(url(team.deployment)).content.decode()
    assert plain not in again and f"{token.hint}…" in again


@pytest.mark.parametrize("role", ["author", "member"])
def test_others_see_the_controls_disabled_with_the_reason(team, role):
    deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    page = browser(getattr(team, role)).get(url(team.deployment)).content.decode()
    assert "Operators and Owners create Deployment tokens." in page
    assert "Operators and Owners revoke tokens." in page
    assert "<dialog" not in page


@pytest.mark.parametrize("role", ["author", "member"])
def test_others_cannot_create_or_revoke_by_posting(team, role):
    token, _ = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    client = browser(getattr(team, role))
    client.post(url(team.deployment) + "new/", {"name": "sneaky"})
    client.post(url(team.deployment) + "revoke/", {"token_id": token.pk})
    assert list(DeploymentToken.objects.values_list("name", "revoked_at")) == [("af", None)]


def test_revoke_asks_in_a_dialog_and_then_revokes(team):
    token, _ = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    client = browser(team.operator)
    page = client.get(url(team.deployment)).content.decode()
    assert f'<dialog id="revoke-{token.pk}">' in page
    response = client.post(url(team.deployment) + "revoke/", {"token_id": token.pk})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "revoked" in client.get(url(team.deployment)).content.decode()


def test_a_token_of_another_deployment_cannot_be_revoked_here(team):
    other, _ = deployment_token_create(
        user=team.owner, deployment=team.other_deployment, name="staging"
    )
    browser(team.owner).post(url(team.deployment) + "revoke/", {"token_id": other.pk})
    other.refresh_from_db()
    assert other.revoked_at is None


def test_another_workspaces_deployment_is_404(team, other_team):
    assert browser(team.owner).get(url(other_team.deployment)).status_code == 404
    response = browser(team.owner).post(url(other_team.deployment) + "new/", {"name": "x"})
    assert response.status_code == 404
    assert not DeploymentToken.objects.exists()


def test_the_page_needs_a_login(team):
    response = Client().get(url(team.deployment))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_lookups_per_token_and_key_show_on_the_page_and_in_the_api(team, api):
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="mode",
        values={"value": "prod"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    token, plain = deployment_token_create(
        user=team.operator, deployment=team.deployment, name="airflow-prod"
    )
    lookup_counter.reset()
    lookup = Client(headers={"Authorization": f"Bearer {plain}"})
    for _ in range(3):
        assert lookup.get("/api/v1/lookup/variables/mode").status_code == 200
    assert lookup.get("/api/v1/lookup/connections/missing_conn").status_code == 404
    lookup_counter.flush()

    page = browser(team.author).get(url(team.deployment)).content.decode()
    assert "<code>mode</code>" in page and "<code>missing_conn</code>" in page
    assert "Lookups" not in browser(team.member).get(url(team.deployment)).content.decode()

    api_url = f"/api/v1/deployments/{team.deployment.pk}/lookup-counts"
    counts = api.as_user(team.author).get(api_url).json()["lookupCounts"]
    by_key = {(c["objectType"], c["objectKey"]): (c["hits"], c["misses"]) for c in counts}
    assert by_key == {("AIRFLOW_VARIABLE", "mode"): (3, 0), ("CONNECTION", "missing_conn"): (0, 1)}
    assert {c["tokenName"] for c in counts} == {"airflow-prod"}
    assert api.as_user(team.member).get(api_url).status_code == 403


def test_a_revoke_of_a_malformed_token_id_changes_nothing(team):
    token, _ = deployment_token_create(user=team.operator, deployment=team.deployment, name="af")
    response = browser(team.owner).post(url(team.deployment) + "revoke/", {"token_id": "1 OR 1=1"})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is None
