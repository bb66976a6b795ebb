"""Members and roles on the Workspace page, controls a role may not use shown dimmed with the
reason instead of leading to a refusal, and messages that say what is wrong in words."""

import re

import pytest

from accounts.models import Role
from envmanager.services import link_create
from tests.envmanager.test_environment_objects import create
from tests.pages.test_pages import browser


def workspace_url(team) -> str:
    return f"/workspaces/{team.workspace.pk}/"


def role_of(team, user) -> str:
    return team.workspace.memberships.get(user=user).role


# Members and roles


def test_adding_a_member_defaults_to_the_member_role(team):
    html = browser(team.owner).get(workspace_url(team)).content.decode()
    add = html[html.index(f'action="{workspace_url(team)}members/"') :]
    add = add[: add.index("</form>")]
    assert re.findall(r'<option value="(\w+)" selected>', add) == ["MEMBER"]


def test_an_owner_changes_a_role_from_the_members_row(team):
    html = browser(team.owner).get(workspace_url(team)).content.decode()
    assert f'action="{workspace_url(team)}members/{team.author.pk}/role/"' in html
    assert f'aria-label="Role of {team.author.email}"' in html
    response = browser(team.owner).post(
        f"{workspace_url(team)}members/{team.author.pk}/role/", {"role": "OPERATOR"}, follow=True
    )
    assert f"{team.author.email} is now Operator in {team.workspace.name}." in (
        response.content.decode()
    )
    assert role_of(team, team.author) == Role.OPERATOR


def test_the_sole_owners_role_control_is_disabled_with_the_reason(team):
    html = browser(team.owner).get(workspace_url(team)).content.decode()
    row = html[html.index(f"<td>{team.owner.email}</td>") :]
    row = row[: row.index("</tr>")]
    assert 'disabled title="A Workspace needs at least one Owner' in row
    response = browser(team.owner).post(
        f"{workspace_url(team)}members/{team.owner.pk}/role/", {"role": "MEMBER"}, follow=True
    )
    assert role_of(team, team.owner) == Role.OWNER
    assert "A Workspace needs at least one Owner" in response.content.decode()


@pytest.mark.parametrize("role", ["OPERATOR", "AUTHOR", "MEMBER"])
def test_only_owners_get_role_controls_and_others_cannot_change_roles(team, role):
    html = browser(team.user(role)).get(workspace_url(team)).content.decode()
    assert "/role/" not in html and 'name="role"' not in html
    browser(team.user(role)).post(
        f"{workspace_url(team)}members/{team.member.pk}/role/", {"role": "OWNER"}
    )
    assert role_of(team, team.member) == Role.MEMBER


# What Members may open


def test_a_members_deployment_links_open_pages_they_may_see(team):
    client = browser(team.member)
    html = client.get(workspace_url(team)).content.decode()
    deployment = html[html.index("<h2>Deployments</h2>") : html.index("<h2>IDE projects</h2>")]
    for href in set(re.findall(r'href="([^"]+)"', deployment)):
        assert client.get(href).status_code == 200, href
    assert f'href="/deployments/{team.deployment.pk}/settings/"><strong>production' in deployment


def test_a_members_deployment_tabs_dim_the_environment_with_the_reason(team):
    html = browser(team.member).get(f"/deployments/{team.deployment.pk}/settings/").content
    html = html.decode()
    assert f'href="/deployments/{team.deployment.pk}/environment/"' not in html
    assert '<span class="disabled" title="Members see a Deployment' in html
    author = browser(team.author).get(f"/deployments/{team.deployment.pk}/settings/").content
    assert f'href="/deployments/{team.deployment.pk}/environment/"'.encode() in author


def test_every_link_a_member_is_shown_opens(team):
    client = browser(team.member)
    html = client.get(workspace_url(team)).content.decode()
    environment = f'href="/workspaces/{team.workspace.pk}/environment/"'
    assert environment not in html
    assert 'aria-disabled="true">Environment</span>' in html
    for href in set(re.findall(r'href="(/[^"]*)"', html)):
        assert client.get(href).status_code == 200, href
    assert environment in browser(team.author).get(workspace_url(team)).content.decode()


# Wording


@pytest.mark.parametrize(
    ("slug", "key", "message"),
    [
        ("airflow-variables", "a b", "An Airflow variable key may contain only"),
        ("environment-variables", "A B", "An environment variable key may contain only"),
        ("connections", "a b", "A connection key may contain only"),
        ("metrics-exports", "a b", "A metrics export key may contain only"),
    ],
)
def test_key_errors_use_the_right_article(team, slug, key, message):
    response = browser(team.operator).post(
        f"/workspaces/{team.workspace.pk}/environment/?type={slug}",
        {"type": slug, "new-key": key, "new-conn_type": "http", "new-endpoint": "https://x.io"},
    )
    assert message in response.content.decode()


def test_an_oversize_connection_names_the_whole_object_not_a_field(team):
    response = browser(team.operator).post(
        f"/workspaces/{team.workspace.pk}/environment/?type=connections",
        {
            "type": "connections",
            "new-key": "big",
            "new-conn_type": "http",
            "new-description": "x" * (1024 * 1024 + 1),
        },
    )
    html = response.content.decode()
    assert "This object&#x27;s values may be at most 1 MiB all together." in html
    assert "value:" not in html


@pytest.mark.parametrize("name", ["", "   "])
def test_a_workspace_without_a_name_is_asked_for_one(team, name):
    response = browser(team.owner).post("/", {"name": name})
    html = response.content.decode()
    assert response.status_code == 200 and "Give the new Workspace a name." in html
    assert "cannot be blank" not in html and "name:" not in html


def test_a_too_long_workspace_name_says_the_limit(team):
    html = browser(team.owner).post("/", {"name": "w" * 101}).content.decode()
    assert "A Workspace name is at most 100 characters (this one has 101)." in html


def obj(team, key, **where):
    return create(team, "AIRFLOW_VARIABLE", key, {"value": "1"}, **where)


def post_update(team, o, key, url=None):
    url = url or f"/workspaces/{team.workspace.pk}/environment/{o.pk}/"
    return browser(team.operator).post(f"{url}update/", {"key": key, "value": "1"})


def test_renaming_to_a_key_in_use_says_which_key_and_where(team):
    obj(team, "taken")
    mine = obj(team, "mine")
    html = post_update(team, mine, "taken").content.decode()
    assert "This Workspace already has an Airflow variable &#x27;taken&#x27;." in html
    assert "Already in use." not in html


def test_renaming_to_a_key_a_linked_deployment_resolves_names_the_deployment(team):
    obj(team, "taken", scope="DEPLOYMENT", deployment=team.deployment)
    mine = obj(team, "mine")
    link_create(user=team.owner, obj=mine, deployment=team.deployment)
    html = post_update(team, mine, "taken").content.decode()
    assert (
        "Deployment &#x27;production&#x27; already resolves an Airflow variable "
        "&#x27;taken&#x27; from one of its own objects." in html
    )


def test_renaming_a_deployment_object_to_a_key_it_has_names_the_deployment(team):
    obj(team, "taken", scope="DEPLOYMENT", deployment=team.deployment)
    mine = obj(team, "mine", scope="DEPLOYMENT", deployment=team.deployment)
    url = f"/deployments/{team.deployment.pk}/environment/{mine.pk}/"
    html = post_update(team, mine, "taken", url).content.decode()
    assert (
        "Deployment &#x27;production&#x27; already has its own Airflow variable "
        "&#x27;taken&#x27;." in html
    )


@pytest.mark.parametrize("scope", ["WORKSPACE", "DEPLOYMENT"])
def test_creating_a_key_in_use_says_which_key_and_where(team, scope):
    where = {"scope": "DEPLOYMENT", "deployment": team.deployment} if scope == "DEPLOYMENT" else {}
    obj(team, "taken", **where)
    url = (
        f"/deployments/{team.deployment.pk}/environment/?type=airflow-variables"
        if where
        else f"/workspaces/{team.workspace.pk}/environment/?type=airflow-variables"
    )
    data = {"type": "airflow-variables", "new-key": "taken", "new-value": "2"}
    html = browser(team.operator).post(url, data).content.decode()
    expected = (
        "Deployment &#x27;production&#x27; already has its own Airflow variable &#x27;taken&#x27;."
        if where
        else "This Workspace already has an Airflow variable &#x27;taken&#x27;."
    )
    assert expected in html
    assert "a airflow" not in html.lower()


def test_a_deployment_object_whose_key_a_linked_object_has_names_its_source(team):
    linked = obj(team, "shared")
    link_create(user=team.owner, obj=linked, deployment=team.deployment)
    html = (
        browser(team.operator)
        .post(
            f"/deployments/{team.deployment.pk}/environment/?type=airflow-variables",
            {"type": "airflow-variables", "new-key": "shared", "new-value": "2"},
        )
        .content.decode()
    )
    assert (
        "Deployment &#x27;production&#x27; already resolves an Airflow variable "
        "&#x27;shared&#x27; from a linked Workspace object." in html
    )
