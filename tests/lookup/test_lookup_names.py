"""`GET /api/v1/lookup/names`: what a Deployment resolves, by key and source, never a value."""

import pytest
from django.test import Client

from accounts.services import api_token_create
from deployments.services import deployment_token_create, deployment_token_revoke
from envmanager.services import environment_object_create, link_create, link_set_overrides
from tests import secret_scan

CONN_PASSWORD = "names-conn-pw-S3CRET"
OVERRIDE_PASSWORD = "names-override-pw-S3CRET"
EXTRA_TOKEN = "names-extra-token-S3CRET"
OVERRIDE_EXTRA = "names-override-extra-S3CRET"
SECRET_VARIABLE = "names-secret-variable-S3CRET"
PLAIN_VARIABLE = "names-plain-variable-value"
SECRET_ENV = "names-secret-env-S3CRET"
PLAIN_ENV = "names-plain-env-value"
METRICS_PASSWORD = "names-metrics-pw-S3CRET"
METRICS_HEADER = "names-metrics-header-S3CRET"
# Every value stored below: none of them may be in the document, secret or not.
VALUES = [
    CONN_PASSWORD,
    OVERRIDE_PASSWORD,
    EXTRA_TOKEN,
    OVERRIDE_EXTRA,
    SECRET_VARIABLE,
    PLAIN_VARIABLE,
    SECRET_ENV,
    PLAIN_ENV,
    METRICS_PASSWORD,
    METRICS_HEADER,
    "names-login-etl",  # a connection's login is no secret, and still not shown
]


@pytest.fixture
def env(team):
    """The production Deployment resolves one of each source: a Workspace connection as the
    Workspace holds it, one with a Deployment-level override, and objects of its own."""
    create = environment_object_create
    warehouse = create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={
            "conn_type": "postgres",
            "host": "db.internal",
            "login": "names-login-etl",
            "password": CONN_PASSWORD,
            "extra": {"token": EXTRA_TOKEN},
        },
    )
    link_create(
        user=team.operator,
        obj=warehouse,
        deployment=team.deployment,
        overrides={
            "host": "prod-db.internal",
            "password": OVERRIDE_PASSWORD,
            "extra.token": OVERRIDE_EXTRA,
        },
    )
    api = create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="api",
        values={"conn_type": "http", "host": "api.example.com", "password": CONN_PASSWORD},
    )
    link_create(user=team.operator, obj=api, deployment=team.deployment)
    # Linked to the other Deployment only: production must not see it.
    staging_only = create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="staging_only",
        values={"conn_type": "http", "host": "staging.example.com"},
    )
    link_create(user=team.operator, obj=staging_only, deployment=team.other_deployment)
    mode = create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="mode",
        values={"value": PLAIN_VARIABLE},
    )
    link_create(user=team.operator, obj=mode, deployment=team.deployment)
    link = link_create(user=team.operator, obj=mode, deployment=team.other_deployment)
    link_set_overrides(user=team.operator, link=link, overrides={"value": "staging"})
    own = {"scope": "DEPLOYMENT", "deployment": team.deployment}
    objects = {
        "api_key": create(
            user=team.operator,
            workspace=team.workspace,
            object_type="AIRFLOW_VARIABLE",
            key="api_key",
            values={"value": SECRET_VARIABLE, "is_secret": True},
            **own,
        ),
        "API_TOKEN": create(
            user=team.operator,
            workspace=team.workspace,
            object_type="ENVIRONMENT_VARIABLE",
            key="API_TOKEN",
            values={"value": SECRET_ENV, "is_secret": True},
            **own,
        ),
        "REGION": create(
            user=team.operator,
            workspace=team.workspace,
            object_type="ENVIRONMENT_VARIABLE",
            key="REGION",
            values={"value": PLAIN_ENV},
            **own,
        ),
        "prom": create(
            user=team.operator,
            workspace=team.workspace,
            object_type="METRICS_EXPORT",
            key="prom",
            values={
                "endpoint": "https://prom.example.com/api/v1/write",
                "auth_type": "BASIC",
                "username": "writer",
                "password": METRICS_PASSWORD,
                "headers": {"X-Scope": METRICS_HEADER},
            },
            **own,
        ),
    }
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="ui")
    team.token, team.objects = token, {"warehouse": warehouse, "api": api, "mode": mode, **objects}
    return team


def get(token: str | None, **headers):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    extra.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return Client().get("/api/v1/lookup/names", **extra)


def test_names_say_where_each_key_comes_from(env):
    body = get(env.token).json()
    ids = {key: obj.pk for key, obj in env.objects.items()}
    ws, dep = env.workspace.pk, env.deployment.pk
    assert body["deployment"] == {
        "id": dep,
        "name": "production",
        "path": f"/deployments/{dep}/environment/",
    }
    assert body["workspace"] == {"id": ws, "name": env.workspace.name}
    assert body["connections"] == [
        {
            "key": "api",
            "source": "WORKSPACE",
            "overriddenFields": [],
            "objectId": ids["api"],
            "path": f"/workspaces/{ws}/environment/{ids['api']}/",
            "isSecret": False,
            "connType": "http",
            "host": "api.example.com",
        },
        {
            "key": "warehouse",
            "source": "OVERRIDE",
            "overriddenFields": ["extra.token", "host", "password"],
            "objectId": ids["warehouse"],
            "path": f"/workspaces/{ws}/environment/{ids['warehouse']}/",
            "isSecret": False,
            "connType": "postgres",
            "host": "prod-db.internal",  # the override's host: what Airflow gets
        },
    ]
    assert body["variables"] == [
        {
            "key": "api_key",
            "source": "DEPLOYMENT",
            "overriddenFields": [],
            "objectId": ids["api_key"],
            "path": f"/deployments/{dep}/environment/{ids['api_key']}/",
            "isSecret": True,
        },
        {
            "key": "mode",
            "source": "WORKSPACE",  # the other Deployment's override is not this one's
            "overriddenFields": [],
            "objectId": ids["mode"],
            "path": f"/workspaces/{ws}/environment/{ids['mode']}/",
            "isSecret": False,
        },
    ]
    assert [(e["key"], e["source"], e["isSecret"]) for e in body["environmentVariables"]] == [
        ("API_TOKEN", "DEPLOYMENT", True),
        ("REGION", "DEPLOYMENT", False),
    ]
    assert [(e["key"], e["source"], e["path"]) for e in body["metricsExports"]] == [
        ("prom", "DEPLOYMENT", f"/deployments/{dep}/environment/{ids['prom']}/")
    ]


def test_no_value_leaves_on_the_names_path(env):
    response = get(env.token)
    text = response.content.decode()
    assert response.status_code == 200
    assert [v for v in VALUES if v in text] == []
    # Nor any other secret this run has stored so far (the suite's secret scan keeps them).
    assert [s for s in secret_scan.seen_secrets if s in text] == []
    assert env.token not in text
    assert response["Cache-Control"] == "no-store"


def test_a_token_sees_only_its_own_deployment(env, other_team):
    _, staging = deployment_token_create(
        user=env.owner, deployment=env.other_deployment, name="staging"
    )
    body = get(staging).json()
    assert body["deployment"]["id"] == env.other_deployment.pk
    assert [e["key"] for e in body["connections"]] == ["staging_only"]
    assert [(e["key"], e["source"]) for e in body["variables"]] == [("mode", "OVERRIDE")]
    assert body["environmentVariables"] == [] and body["metricsExports"] == []
    _, foreign = deployment_token_create(
        user=other_team.owner, deployment=other_team.deployment, name="x"
    )
    body = get(foreign).json()
    assert body["workspace"]["id"] == other_team.workspace.pk
    assert all(body[t] == [] for t in ("connections", "variables", "environmentVariables"))


def test_names_need_a_live_deployment_token(env):
    _, personal = api_token_create(user=env.owner, name="mine")
    for token in (None, "dt_nonsense", personal):
        response = get(token)
        assert response.status_code == 401
        assert response.json()["statusCode"] == 401
    token_row = env.deployment.tokens.get()
    deployment_token_revoke(user=env.owner, token=token_row)
    assert get(env.token).status_code == 401


def test_names_etag_answers_304_until_something_changes(env):
    first = get(env.token)
    etag = first["ETag"]
    again = get(env.token, if_none_match=etag)
    assert again.status_code == 304 and again.content == b""
    environment_object_create(
        user=env.operator,
        workspace=env.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="new_one",
        values={"value": "x"},
        scope="DEPLOYMENT",
        deployment=env.deployment,
    )
    changed = get(env.token, if_none_match=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert "new_one" in [e["key"] for e in changed.json()["variables"]]
    env.deployment.name = "prod"
    env.deployment.save()
    renamed = get(env.token, if_none_match=changed["ETag"])
    assert renamed.status_code == 200 and renamed.json()["deployment"]["name"] == "prod"


def test_names_answer_get_and_head_only(env):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {env.token}"}
    assert Client().post("/api/v1/lookup/names", **auth).status_code == 405
    head = Client().head("/api/v1/lookup/names", **auth)
    assert head.status_code == 200 and head.content == b""
