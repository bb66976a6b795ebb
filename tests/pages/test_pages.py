"""The Environment pages through the Django test client, for every role."""

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm

from envmanager.models import EnvironmentObject, Link
from envmanager.services import environment_object_create, link_create

SECRET = "page-secret-Value-123"
PG = {
    "conn_type": "postgres",
    "host": "db.internal",
    "login": "etl",
    "password": SECRET,
    "port": 5432,
    "extra": {"sslkey": SECRET + "-extra"},
}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def objects(team):
    conn = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values=PG,
    )
    link_create(
        user=team.owner,
        obj=conn,
        deployment=team.deployment,
        overrides={"password": SECRET + "-prod", "host": "prod.internal"},
    )
    own = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="TOKEN",
        values={"value": SECRET + "-env", "is_secret": True},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    team.conn, team.own = conn, own
    return team


def pages(team):
    w, d = team.workspace.pk, team.deployment.pk
    return {
        "workspace": f"/workspaces/{w}/",
        "environment": f"/workspaces/{w}/environment/?type=connections",
        "object": f"/workspaces/{w}/environment/{team.conn.pk}/",
        "deployment_env": f"/deployments/{d}/environment/?type=connections",
        "deployment_env_vars": f"/deployments/{d}/environment/?type=environment-variables",
        "own_object": f"/deployments/{d}/environment/{team.own.pk}/",
        "settings": f"/deployments/{d}/settings/",
        "tokens": f"/deployments/{d}/tokens/",
        "history": f"/workspaces/{w}/environment/{team.conn.pk}/history/",
    }


EXPECTED = {
    # page: status for OWNER, OPERATOR, AUTHOR, MEMBER
    "workspace": (200, 200, 200, 200),
    "environment": (200, 200, 200, 403),
    "object": (200, 200, 200, 404),
    "deployment_env": (200, 200, 200, 403),
    "deployment_env_vars": (200, 200, 200, 403),
    "own_object": (200, 200, 200, 404),
    "settings": (200, 200, 200, 200),
    "tokens": (200, 200, 200, 200),
    "history": (200, 200, 200, 404),  # no versions yet: an empty history
}


@pytest.mark.parametrize("page", list(EXPECTED))
@pytest.mark.parametrize("index,role", list(enumerate(["OWNER", "OPERATOR", "AUTHOR", "MEMBER"])))
def test_every_page_for_every_role_and_never_a_secret(objects, page, index, role):
    response = browser(objects.user(role)).get(pages(objects)[page])
    assert response.status_code == EXPECTED[page][index]
    assert SECRET.encode() not in response.content


NAVIGATION_PAGES = [
    "workspace",
    "environment",
    "object",
    "deployment_env",
    "own_object",
    "settings",
    "tokens",
    "audit",
    "deleted",
    "airflow_files",
    "migrate",
]


@pytest.mark.parametrize("page", NAVIGATION_PAGES)
def test_every_workspace_page_shows_the_navigation_the_role_allows(objects, page):
    w, d = objects.workspace.pk, objects.deployment.pk
    url = {
        **pages(objects),
        "audit": f"/workspaces/{w}/audit/",
        "deleted": f"/workspaces/{w}/environment/deleted/",
        "airflow_files": f"/workspaces/{w}/airflow-files/",
        "migrate": f"/deployments/{d}/migrate/connections/",
    }[page]
    owner = browser(objects.owner).get(url)
    assert owner.status_code == 200
    assert b"Audit log</a>" in owner.content
    assert b"Owner</span>" in owner.content  # the role beside the user
    if page != "audit":  # an Owner-only page
        operator = browser(objects.operator).get(url)
        assert operator.status_code == 200
        assert b"Audit log</a>" not in operator.content


@pytest.mark.parametrize("page", list(EXPECTED))
def test_another_tenant_gets_404_everywhere(objects, other_team, page):
    assert browser(other_team.owner).get(pages(objects)[page]).status_code == 404


def test_the_deployment_tab_marks_linked_overridden_and_own_objects(objects):
    content = browser(objects.author).get(pages(objects)["deployment_env"]).content.decode()
    assert "warehouse" in content and "Override" in content and "prod.internal" in content
    content = browser(objects.author).get(pages(objects)["deployment_env_vars"]).content.decode()
    assert "TOKEN" in content and "(secret)" in content


def test_authors_see_disabled_buttons_with_the_reason(objects):
    content = browser(objects.author).get(pages(objects)["environment"]).content.decode()
    assert 'disabled title="Operators and Owners create environment objects."' in content


def test_operator_creates_a_connection_from_a_uri(objects):
    response = browser(objects.operator).post(
        f"/workspaces/{objects.workspace.pk}/environment/?type=connections",
        {
            "type": "connections",
            "new-key": "from_uri",
            "new-conn_type": "x",
            "new-uri": "mysql://u:p%40ss@db:3306/shop?charset=utf8",
        },
    )
    assert response.status_code == 302
    values = EnvironmentObject.objects.get(key="from_uri").values
    assert (values["conn_type"], values["password"], values["port"], values["extra"]) == (
        "mysql",
        "p@ss",
        3306,
        {"charset": "utf8"},
    )


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"new-key": "bad key", "new-conn_type": "http"}, "key", "may contain only"),
        ({"new-key": "warehouse", "new-conn_type": "http"}, "key", "already has"),
        (
            {"new-key": "ok", "new-conn_type": "http", "new-extra": "{nope"},
            "extra",
            "Not valid JSON",
        ),
        (
            {"new-key": "ok", "new-conn_type": "http", "new-uri": "nonsense"},
            "uri",
            "Not an Airflow",
        ),
        ({"new-key": "ok", "new-conn_type": "http", "new-port": "99999"}, "port", "65535"),
    ],
)
def test_bad_input_is_shown_next_to_the_field_and_changes_nothing(objects, data, field, message):
    before = EnvironmentObject.objects.count()
    response = browser(objects.operator).post(
        f"/workspaces/{objects.workspace.pk}/environment/?type=connections",
        {"type": "connections", **data},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert EnvironmentObject.objects.count() == before


def test_editing_keeps_the_stored_secret_unless_a_new_one_is_typed(objects):
    url = pages(objects)["object"]
    client = browser(objects.operator)
    client.post(
        f"{url}update/",
        {
            "key": "warehouse",
            "conn_type": "postgres",
            "host": "new-host",
            "password": "",
            "extra": "",
        },
    )
    objects.conn.refresh_from_db()
    assert objects.conn.values["host"] == "new-host"
    assert objects.conn.values["password"] == SECRET
    assert objects.conn.values["extra"] == PG["extra"]


def test_link_with_override_then_unlink(objects):
    url = pages(objects)["object"]
    client = browser(objects.operator)
    response = client.post(
        f"{url}links/new/",
        {
            "target": f"deployment:{objects.other_deployment.pk}",
            "link-host": "staging.internal",
        },
    )
    assert response.status_code == 302
    link = Link.objects.get(environment_object=objects.conn, deployment=objects.other_deployment)
    assert link.overrides == {"host": "staging.internal"}
    client.post(f"{url}links/{link.pk}/override/", {f"link{link.pk}-unset_host": "on"})
    link.refresh_from_db()
    assert link.overrides == {}
    client.post(f"{url}links/{link.pk}/unlink/")
    assert not Link.objects.filter(pk=link.pk).exists()


def test_a_per_deployment_grant_edits_that_deployments_own_objects(objects):
    assign_perm("deployments.update_deployment", objects.author, objects.deployment)
    response = browser(objects.author).post(
        f"{pages(objects)['own_object']}update/",
        {"key": "TOKEN", "value": "", "is_secret": "on"},
    )
    assert response.status_code == 302


def test_promote_from_the_deployment_tab(objects):
    client = browser(objects.operator)
    promote = f"{pages(objects)['own_object']}promote/"
    wrong = client.post(promote, {"confirm_key": "x"})
    assert wrong.status_code == 302
    assert EnvironmentObject.objects.get(pk=objects.own.pk).scope == "DEPLOYMENT"
    client.post(promote, {"confirm_key": "TOKEN"})
    assert EnvironmentObject.objects.get(pk=objects.own.pk).scope == "WORKSPACE"


def seed(team, count: int) -> None:
    """`count` Workspace connections linked (with an override) to the Deployment, and `count`
    Deployment-scoped connections of its own."""
    objs = EnvironmentObject.objects.bulk_create(
        EnvironmentObject(
            workspace=team.workspace,
            scope="WORKSPACE",
            object_type="CONNECTION",
            key=f"c{i:04d}",
            values={**PG, "password": "x"},
        )
        for i in range(count)
    )
    own = EnvironmentObject.objects.bulk_create(
        EnvironmentObject(
            workspace=team.workspace,
            scope="DEPLOYMENT",
            deployment=team.deployment,
            object_type="CONNECTION",
            key=f"own{i:04d}",
            values={**PG, "password": "x"},
        )
        for i in range(count)
    )
    Link.objects.bulk_create(
        [
            Link(
                environment_object=o,
                deployment=team.deployment,
                object_type="CONNECTION",
                object_key=o.key,
                overrides={"host": "elsewhere"},
            )
            for o in objs
        ]
        + [
            Link(
                environment_object=o,
                ide_project=team.ide_project,
                object_type="CONNECTION",
                object_key=o.key,
            )
            for o in objs
        ]
        + [
            Link(
                environment_object=o,
                deployment=team.deployment,
                object_type="CONNECTION",
                object_key=o.key,
                is_home=True,
            )
            for o in own
        ]
    )


LIST_PAGES = {
    "workspace environment": "/workspaces/{w}/environment/?type=connections",
    "workspace environment, page 2": "/workspaces/{w}/environment/?type=connections&page=2",
    "deployment tab": "/deployments/{d}/environment/?type=connections",
    "deployment tab, page 2": "/deployments/{d}/environment/?type=connections&page=2",
    "deployment tab, searched": "/deployments/{d}/environment/?type=connections&q=own",
}


@pytest.mark.parametrize("page", list(LIST_PAGES))
@pytest.mark.parametrize("role", ["OPERATOR", "AUTHOR"])
def test_lists_take_the_same_number_of_queries_for_10_or_200_objects(
    team, other_team, page, role, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from deployments.services import ide_project_create

    # Two Workspaces of different sizes: 10 objects in one, 200 in the other.
    counts = {}
    for which, count in ((team, 10), (other_team, 200)):
        which.ide_project = ide_project_create(
            user=which.owner, workspace=which.workspace, name="n"
        )
        seed(which, count)
        url = LIST_PAGES[page].format(w=which.workspace.pk, d=which.deployment.pk)
        client = browser(which.user(role))
        client.get(url)  # warm the session and the content-type cache
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts[count] = len(queries)
    with django_assert_max_num_queries(counts[10]):
        client.get(url)
    assert counts[10] == counts[200] <= 16
