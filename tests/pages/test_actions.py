"""What each page's forms do, for each role: changes that land, refusals that change nothing,
errors next to the fields, and secrets that never come back to the browser."""

import pytest
from cryptography.fernet import Fernet
from django.test import Client
from guardian.shortcuts import assign_perm

from deployments.models import Deployment, IdeProject
from envmanager.models import EnvironmentObject, Link
from envmanager.services import environment_object_create, link_create

SECRET = "actions-Secret-987"
FERNET = Fernet.generate_key().decode()
DB_URL = f"postgresql://airflow:{SECRET}-db@db:5432/airflow"


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def conn(team):
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={
            "conn_type": "postgres",
            "host": "db",
            "password": SECRET,
            "extra": {"sslmode": "require", "token": SECRET + "-x"},
        },
    )
    team.link = link_create(user=team.owner, obj=obj, deployment=team.deployment)
    team.conn = obj
    return team


def object_url(team) -> str:
    return f"/workspaces/{team.workspace.pk}/environment/{team.conn.pk}/"


def env_url(team, slug: str = "connections") -> str:
    return f"/workspaces/{team.workspace.pk}/environment/?type={slug}"


def tab_url(team, slug: str = "connections") -> str:
    return f"/deployments/{team.deployment.pk}/environment/?type={slug}"


# Log in, log out, the Workspace picker


PAGES = [
    "/",
    "/workspaces/{w}/",
    "/workspaces/{w}/environment/",
    "/deployments/{d}/environment/",
    "/deployments/{d}/settings/",
]


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(team, page):
    url = page.format(w=team.workspace.pk, d=team.deployment.pk)
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_log_in_with_email_and_password_then_log_out(team):
    client = Client()
    assert b"Log in" in client.get("/login/").content
    response = client.post("/login/", {"username": team.author.email, "password": "wrong"})
    assert response.status_code == 200 and b"Please enter a correct" in response.content
    response = client.post(
        "/login/", {"username": team.author.email, "password": "pw-for-tests-123"}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"/workspaces/{team.workspace.pk}/"
    assert team.author.email.encode() in response.content
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_the_picker_lists_only_the_users_workspaces(team, other_team):
    content = browser(team.owner).get("/?all=1").content.decode()
    assert team.workspace.name in content and other_team.workspace.name not in content


def test_a_single_workspace_opens_at_once(team):
    response = browser(team.member).get("/")
    assert response["Location"] == f"/workspaces/{team.workspace.pk}/"


# Creating things per role


def test_a_member_cannot_post_to_the_environment_pages(conn):
    client = browser(conn.member)
    before = EnvironmentObject.objects.count()
    data = {"type": "connections", "new-key": "x", "new-conn_type": "http"}
    assert client.post(env_url(conn), data).status_code == 403
    assert client.post(tab_url(conn), data).status_code == 403
    assert client.post(f"{object_url(conn)}delete/").status_code == 404
    assert EnvironmentObject.objects.count() == before


def test_an_author_is_refused_with_a_message_and_nothing_changes(conn):
    client = browser(conn.author)
    before = EnvironmentObject.objects.count()
    response = client.post(
        env_url(conn), {"type": "connections", "new-key": "x", "new-conn_type": "http"}
    )
    assert "does not allow" in response.content.decode()
    client.post(f"{object_url(conn)}links/{conn.link.pk}/unlink/", follow=True)
    client.post(f"{object_url(conn)}delete/")
    assert EnvironmentObject.objects.count() == before
    assert Link.objects.filter(pk=conn.link.pk).exists()


def test_another_tenant_cannot_post_anywhere(conn, other_team):
    client = browser(other_team.owner)
    assert client.post(f"{object_url(conn)}delete/").status_code == 404
    assert client.post(env_url(conn), {"new-key": "x"}).status_code == 404
    response = client.post(f"/deployments/{conn.deployment.pk}/settings/", {"name": "hacked"})
    assert response.status_code == 404
    assert EnvironmentObject.objects.filter(pk=conn.conn.pk).exists()
    assert Deployment.objects.get(pk=conn.deployment.pk).name == "production"


@pytest.mark.parametrize(
    ("slug", "data", "check"),
    [
        (
            "airflow-variables",
            {"new-key": "env.mode", "new-value": '{"a": 1}', "new-description": "d"},
            {"value": '{"a": 1}', "description": "d", "is_secret": False},
        ),
        (
            "environment-variables",
            {"new-key": "API_TOKEN", "new-value": SECRET, "new-is_secret": "on"},
            {"value": SECRET, "is_secret": True},
        ),
        (
            "metrics-exports",
            {
                "new-key": "prom",
                "new-endpoint": "https://prom.example.com/api/v1/write",
                "new-auth_type": "BASIC",
                "new-username": "u",
                "new-password": SECRET,
                "new-labels": '{"team": "data"}',
            },
            {"auth_type": "BASIC", "password": SECRET, "labels": {"team": "data"}},
        ),
    ],
)
def test_an_operator_creates_each_type(team, slug, data, check):
    response = browser(team.operator).post(env_url(team, slug), {"type": slug, **data})
    assert response.status_code == 302
    values = EnvironmentObject.objects.get(key=data["new-key"]).values
    assert {k: values[k] for k in check} == check
    page = browser(team.operator).get(env_url(team, slug)).content.decode()
    assert data["new-key"] in page and SECRET not in page


def test_an_oversize_value_is_refused_next_to_the_field(team):
    response = browser(team.operator).post(
        env_url(team, "airflow-variables"),
        {"type": "airflow-variables", "new-key": "big", "new-value": "x" * (1024 * 1024 + 1)},
    )
    assert response.status_code == 200
    assert "at most 1 MiB" in response.content.decode()
    assert not EnvironmentObject.objects.filter(key="big").exists()


def test_a_uri_alone_creates_a_connection_with_its_quoted_password(team):
    browser(team.operator).post(
        env_url(team),
        {
            "type": "connections",
            "new-key": "from_uri",
            "new-uri": "postgresql://etl:p%3A%2F%40%3F%23%25w%C3%B6rd@db.internal:5432/dwh",
        },
    )
    values = EnvironmentObject.objects.get(key="from_uri").values
    assert (values["conn_type"], values["password"], values["schema"]) == (
        "postgres",
        "p:/@?#%wörd",
        "dwh",
    )


# Overrides


def test_override_single_keys_of_extra_then_fall_back(conn):
    client = browser(conn.operator)
    prefix = f"link{conn.link.pk}"
    client.post(
        f"{object_url(conn)}links/{conn.link.pk}/override/",
        {f"{prefix}-extra_keys": '{"sslmode": "x"}'},
    )
    conn.link.refresh_from_db()
    assert conn.link.overrides == {"extra.sslmode": "x"}
    tab = browser(conn.author).get(tab_url(conn)).content.decode()
    assert "Override: extra.sslmode" in tab
    client.post(
        f"{object_url(conn)}links/{conn.link.pk}/override/",
        {f"{prefix}-unset_extra.sslmode": "on"},
    )
    conn.link.refresh_from_db()
    assert conn.link.overrides == {}


def test_a_bad_override_reopens_its_dialog_with_the_error_and_changes_nothing(conn):
    response = browser(conn.operator).post(
        f"{object_url(conn)}links/{conn.link.pk}/override/",
        {f"link{conn.link.pk}-port": "99999"},
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert f'id="override-{conn.link.pk}" class="wide" data-open-on-load' in content
    assert "65535" in content
    conn.link.refresh_from_db()
    assert conn.link.overrides == {}


def test_a_secret_override_is_masked_on_every_page(conn):
    browser(conn.operator).post(
        f"{object_url(conn)}links/{conn.link.pk}/override/",
        {
            f"link{conn.link.pk}-password": SECRET + "-prod",
        },
    )
    conn.link.refresh_from_db()
    assert conn.link.overrides == {"password": SECRET + "-prod"}
    for user in (conn.owner, conn.operator, conn.author):
        for url in (object_url(conn), tab_url(conn), env_url(conn)):
            assert SECRET.encode() not in browser(user).get(url).content


def test_an_auto_linked_object_excludes_one_deployment(team):
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="everywhere",
        values={"value": "1"},
        auto_link_deployments=True,
    )
    link = obj.links.get(deployment=team.other_deployment)
    url = f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/"
    assert f'id="exclude-{link.pk}"' in browser(team.operator).get(url).content.decode()
    browser(team.operator).post(f"{url}links/{link.pk}/exclude/")
    assert not obj.links.filter(deployment=team.other_deployment).exists()


# The Deployment tab


def test_the_tab_pages_and_searches_its_objects(team):
    for i in range(60):
        environment_object_create(
            user=team.owner,
            workspace=team.workspace,
            object_type="ENVIRONMENT_VARIABLE",
            key=f"VAR_{i:02d}",
            values={"value": str(i)},
            scope="DEPLOYMENT",
            deployment=team.deployment,
        )
    client = browser(team.author)
    first = client.get(tab_url(team, "environment-variables")).content.decode()
    assert "VAR_00" in first and "VAR_49" in first and "VAR_50" not in first
    assert "1–50 of 60" in first
    second = client.get(tab_url(team, "environment-variables") + "&page=2").content.decode()
    assert "VAR_59" in second and "VAR_00" not in second
    found = client.get(tab_url(team, "environment-variables") + "&q=var_07").content.decode()
    assert "VAR_07" in found and "VAR_08" not in found


def test_the_tab_deletes_an_own_object_from_its_menu_dialog(team):
    own = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="scratch",
        values={"value": "1"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    client = browser(team.operator)
    tab = client.get(tab_url(team, "airflow-variables")).content.decode()
    assert f'data-open-dialog="delete-{own.pk}"' in tab and f'<dialog id="delete-{own.pk}">' in tab
    client.post(f"/deployments/{team.deployment.pk}/environment/{own.pk}/delete/")
    assert not EnvironmentObject.objects.filter(pk=own.pk).exists()


def test_the_tab_leaves_places_for_promote_and_migrate(team):
    content = browser(team.operator).get(tab_url(team)).content.decode()
    assert "Migrate from Airflow (issue 5)" not in content  # template comments stay server-side
    assert 'disabled title="Only Workspace Owners can migrate from Airflow."' in content
    variables = browser(team.operator).get(tab_url(team, "environment-variables")).content
    assert b"Migrate from Airflow" not in variables


def test_a_per_deployment_grant_creates_own_objects_but_not_workspace_ones(team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    client = browser(team.author)
    data = {"type": "airflow-variables", "new-key": "granted", "new-value": "1"}
    assert client.post(tab_url(team, "airflow-variables"), data).status_code == 302
    assert EnvironmentObject.objects.get(key="granted").deployment_id == team.deployment.pk
    client.post(env_url(team, "airflow-variables"), {**data, "new-key": "not_granted"})
    assert not EnvironmentObject.objects.filter(key="not_granted").exists()
    other = f"/deployments/{team.other_deployment.pk}/environment/?type=airflow-variables"
    client.post(other, {**data, "new-key": "elsewhere"})
    assert not EnvironmentObject.objects.filter(key="elsewhere").exists()


# Deployments and IDE projects


def settings_url(team) -> str:
    return f"/deployments/{team.deployment.pk}/settings/"


def test_deployment_settings_keep_stored_secrets_when_left_empty(team, airflow_sqlite):
    url, key = airflow_sqlite(f"{SECRET}.db")
    client = browser(team.owner)
    base = {"name": "production", "kind": "STANDARD", "description": ""}
    client.post(settings_url(team), {**base, "metadata_db_url": url, "fernet_key": key})
    client.post(settings_url(team), {**base, "name": "prod", "description": "main"})
    deployment = Deployment.objects.get(pk=team.deployment.pk)
    assert (deployment.name, deployment.description) == ("prod", "main")
    assert (deployment.metadata_db_url, deployment.fernet_key) == (url, key)
    page = client.get(settings_url(team)).content.decode()
    assert SECRET not in page and key not in page and "(unchanged)" in page


def test_the_settings_page_clears_the_url_and_the_keys(team, airflow_sqlite):
    url, key = airflow_sqlite()
    client = browser(team.owner)
    base = {"name": "production", "kind": "STANDARD", "description": ""}
    client.post(settings_url(team), {**base, "metadata_db_url": url, "fernet_key": key})
    page = client.get(settings_url(team)).content.decode()
    assert 'name="clear_metadata_db_url"' in page and 'name="clear_fernet_key"' in page
    client.post(
        settings_url(team), {**base, "clear_metadata_db_url": "on", "clear_fernet_key": "on"}
    )
    deployment = Deployment.objects.get(pk=team.deployment.pk)
    assert (deployment.metadata_db_url, deployment.fernet_key) == ("", "")
    assert deployment.metadata_db_fingerprint is None


def test_an_operator_updates_a_deployment_but_not_its_metadata_database(team, airflow_sqlite):
    url, key = airflow_sqlite()
    client = browser(team.operator)
    page = client.get(settings_url(team)).content.decode()
    assert 'name="metadata_db_url"' not in page and 'name="fernet_key"' not in page
    assert "Owners" in page
    client.post(
        settings_url(team),
        {"name": "prod", "kind": "STANDARD", "metadata_db_url": url, "fernet_key": key},
    )
    deployment = Deployment.objects.get(pk=team.deployment.pk)
    assert deployment.name == "prod"
    assert (deployment.metadata_db_url, deployment.fernet_key) == ("", "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fernet_key": "not-a-key"}, "32 url-safe base64 bytes"),
        ({"metadata_db_url": "mysql://x"}, "postgresql://user:password@host"),
        ({"metadata_db_url": "sqlite:////etc/passwd"}, "cannot be used"),
        ({"name": "staging"}, "already exists"),
        ({"name": ""}, "This field is required"),
    ],
)
def test_bad_deployment_settings_are_shown_next_to_the_field(team, data, message):
    base = {"name": "production", "kind": "STANDARD"}
    response = browser(team.owner).post(settings_url(team), {**base, **data})
    assert response.status_code == 200
    assert message in response.content.decode()
    deployment = Deployment.objects.get(pk=team.deployment.pk)
    assert (deployment.name, deployment.metadata_db_url) == ("production", "")


def test_an_author_sees_settings_read_only_and_cannot_change_them(team):
    client = browser(team.author)
    page = client.get(settings_url(team)).content.decode()
    assert "disabled title=" in page and 'name="fernet_key"' not in page
    client.post(settings_url(team), {"name": "renamed", "kind": "STANDARD"})
    assert Deployment.objects.get(pk=team.deployment.pk).name == "production"


def test_a_per_deployment_grant_updates_that_deployment(team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    browser(team.author).post(settings_url(team), {"name": "renamed", "kind": "STANDARD"})
    assert Deployment.objects.get(pk=team.deployment.pk).name == "renamed"


def test_an_operator_creates_a_deployment_and_an_ide_project(team):
    client = browser(team.operator)
    url = f"/workspaces/{team.workspace.pk}/"
    client.post(
        f"{url}deployments/new/",
        {
            "deployment-name": "dev",
            "deployment-kind": "REMOTE_EXECUTION",
            "deployment-fernet_key": FERNET,  # not offered to Operators: ignored
        },
    )
    dev = Deployment.objects.get(workspace=team.workspace, name="dev")
    assert (dev.kind, dev.fernet_key) == ("REMOTE_EXECUTION", "")
    client.post(f"{url}ide-projects/new/", {"project-name": "notebooks"})
    assert IdeProject.objects.filter(workspace=team.workspace, name="notebooks").exists()
    page = client.get(url).content.decode()
    assert "dev" in page and "notebooks" in page and 'name="deployment-fernet_key"' not in page


def test_an_owner_creates_a_deployment_with_its_metadata_database(team, airflow_sqlite):
    db_url, key = airflow_sqlite()
    browser(team.owner).post(
        f"/workspaces/{team.workspace.pk}/deployments/new/",
        {
            "deployment-name": "dev",
            "deployment-kind": "STANDARD",
            "deployment-metadata_db_url": db_url,
            "deployment-fernet_key": key,
        },
    )
    dev = Deployment.objects.get(workspace=team.workspace, name="dev")
    assert (dev.metadata_db_url, dev.fernet_key) == (db_url, key)
    assert dev.metadata_db_fingerprint


def test_a_duplicate_deployment_name_is_shown_next_to_the_field(team):
    response = browser(team.operator).post(
        f"/workspaces/{team.workspace.pk}/deployments/new/",
        {
            "deployment-name": "staging",
            "deployment-kind": "STANDARD",
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Deployment.objects.filter(workspace=team.workspace).count() == 2


def test_authors_see_the_create_buttons_disabled_and_cannot_create(team):
    client = browser(team.author)
    page = client.get(f"/workspaces/{team.workspace.pk}/").content.decode()
    assert 'disabled title="Operators and Owners create Deployments."' in page
    assert 'disabled title="Operators and Owners create IDE projects."' in page
    client.post(
        f"/workspaces/{team.workspace.pk}/deployments/new/",
        {"deployment-name": "x", "deployment-kind": "STANDARD"},
    )
    client.post(
        f"/workspaces/{team.workspace.pk}/ide-projects/new/",
        {"project-name": "y"},
    )
    assert not Deployment.objects.filter(name="x").exists()
    assert not IdeProject.objects.filter(name="y").exists()


def test_an_owner_saves_the_workspace_settings_and_others_change_nothing(team):
    url = f"/workspaces/{team.workspace.pk}/settings/"
    page = browser(team.owner).get(f"/workspaces/{team.workspace.pk}/").content.decode()
    assert f'action="{url}"' in page
    for role in ("OPERATOR", "AUTHOR", "MEMBER"):
        response = browser(team.user(role)).post(url, {"local_development_secrets": "on"})
        assert response.status_code == 302
        team.workspace.refresh_from_db()
        assert team.workspace.local_development_secrets is False
    saved = browser(team.owner).post(url, {"local_development_secrets": "on"}, follow=True)
    assert "Saved." in saved.content.decode()
    team.workspace.refresh_from_db()
    assert team.workspace.local_development_secrets is True
    browser(team.owner).post(url, {})  # the box left unticked turns it off
    team.workspace.refresh_from_db()
    assert team.workspace.local_development_secrets is False


def test_each_workspace_action_has_its_own_url_and_the_page_itself_takes_no_post(team):
    client = browser(team.owner)
    ws = f"/workspaces/{team.workspace.pk}/"
    assert (
        client.post(ws, {"action": "create_deployment", "deployment-name": "x"}).status_code == 405
    )
    assert client.get(f"{ws}deployments/new/").status_code == 405
    assert not Deployment.objects.filter(name="x").exists()


def test_an_objects_page_takes_no_post_its_actions_have_their_own_urls(conn):
    client = browser(conn.operator)
    page = f"/workspaces/{conn.workspace.pk}/environment/{conn.conn.pk}/"
    assert client.post(page, {"action": "delete"}).status_code == 405
    assert client.get(f"{page}delete/").status_code == 405
    assert EnvironmentObject.objects.filter(pk=conn.conn.pk).exists()
