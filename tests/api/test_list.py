"""Listing: filters, sorts, pagination with totalCount, a Deployment's resolved environment,
showing secrets where the Workspace allows it, and a query count that does not grow."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import workspace_update
from envmanager.models import EnvironmentObject
from envmanager.services import environment_object_create, link_create
from tests.api.conftest import SECRETS, assert_no_secret, field_names, object_url, objects_url


def _make(team, object_type, key, values, **kwargs):
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type=object_type,
        key=key,
        values=values,
        **kwargs,
    )


@pytest.fixture
def catalogue(team):
    """Five objects of several types and scopes."""
    pg = {"conn_type": "postgres", "host": "db", "password": "conn-pw-S3CRET"}
    return {
        "warehouse": _make(team, "CONNECTION", "warehouse", pg),
        "warehouse_replica": _make(team, "CONNECTION", "warehouse_replica", pg),
        "batch_size": _make(team, "AIRFLOW_VARIABLE", "batch_size", {"value": "500"}),
        "REGION": _make(team, "ENVIRONMENT_VARIABLE", "REGION", {"value": "eu"}),
        "LOCAL_ONLY": _make(
            team,
            "ENVIRONMENT_VARIABLE",
            "LOCAL_ONLY",
            {"value": "env-S3CRET-value", "is_secret": True},
            scope="DEPLOYMENT",
            deployment=team.deployment,
        ),
    }


def _keys(api, team, query="", user=None):
    response = api.as_user(user or team.author).get(f"{objects_url(team)}?{query}")
    assert response.status_code == 200, response.json()
    return [o["objectKey"] for o in response.json()["environmentObjects"]]


def test_default_order_is_by_type_then_key(api, team, catalogue):
    assert _keys(api, team) == [
        "batch_size",
        "warehouse",
        "warehouse_replica",
        "LOCAL_ONLY",
        "REGION",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("objectType=CONNECTION", ["warehouse", "warehouse_replica"]),
        ("objectKey=warehouse", ["warehouse"]),
        ("search=HOUSE_R", ["warehouse_replica"]),
        ("scope=DEPLOYMENT", ["LOCAL_ONLY"]),
        ("scope=WORKSPACE&objectType=ENVIRONMENT_VARIABLE", ["REGION"]),
    ],
)
def test_filters(api, team, catalogue, query, expected):
    assert _keys(api, team, query) == expected


def test_deployment_id_lists_that_deployments_own_objects(api, team, catalogue):
    assert _keys(api, team, f"deploymentId={team.deployment.pk}") == ["LOCAL_ONLY"]
    assert _keys(api, team, f"deploymentId={team.other_deployment.pk}") == []


def test_deployment_id_of_another_workspace_is_404(api, team, other_team, catalogue):
    response = api.as_user(team.author).get(
        f"{objects_url(team)}?deploymentId={other_team.deployment.pk}"
    )
    assert response.status_code == 404


def test_resolve_linked_shows_what_the_deployment_resolves(api, team, catalogue):
    link_create(
        user=team.owner,
        obj=catalogue["batch_size"],
        deployment=team.deployment,
        overrides={"value": "50"},
    )
    link_create(user=team.owner, obj=catalogue["warehouse"], deployment=team.other_deployment)
    response = api.as_user(team.author).get(
        f"{objects_url(team)}?deploymentId={team.deployment.pk}&resolveLinked=true"
    )
    bodies = {o["objectKey"]: o for o in response.json()["environmentObjects"]}
    assert list(bodies) == ["batch_size", "LOCAL_ONLY"]
    assert bodies["batch_size"]["airflowVariable"]["value"] == "50"
    assert bodies["batch_size"]["scope"] == "WORKSPACE"
    assert bodies["LOCAL_ONLY"]["scope"] == "DEPLOYMENT"
    assert response.json()["totalCount"] == 2
    assert_no_secret(response)


def test_resolve_linked_filters_and_sorts(api, team, catalogue):
    for key in ("warehouse", "warehouse_replica", "REGION"):
        link_create(user=team.owner, obj=catalogue[key], deployment=team.deployment)
    base = f"deploymentId={team.deployment.pk}&resolveLinked=true"
    assert _keys(api, team, f"{base}&objectType=CONNECTION&sorts=objectKey:desc") == [
        "warehouse_replica",
        "warehouse",
    ]
    assert _keys(api, team, f"{base}&search=ion") == ["REGION"]
    assert _keys(api, team, f"{base}&scope=DEPLOYMENT") == ["LOCAL_ONLY"]
    assert _keys(api, team, f"{base}&sorts=objectKey:asc&limit=2&offset=1") == [
        "REGION",
        "warehouse",
    ]


def test_resolve_linked_needs_a_deployment(api, team):
    response = api.as_user(team.author).get(f"{objects_url(team)}?resolveLinked=true")
    assert response.status_code == 400
    assert field_names(response) == ["resolveLinked"]


def test_sorts(api, team, catalogue):
    now = timezone.now()
    for index, key in enumerate(["REGION", "batch_size", "warehouse"]):
        EnvironmentObject.objects.filter(pk=catalogue[key].pk).update(
            created_at=now + timedelta(minutes=index),
            updated_at=now - timedelta(minutes=index),
        )
    assert _keys(api, team, "sorts=objectKey:asc&objectType=CONNECTION") == [
        "warehouse",
        "warehouse_replica",
    ]
    assert _keys(api, team, "sorts=createdAt:desc&limit=3") == ["warehouse", "batch_size", "REGION"]
    assert _keys(api, team, "sorts=updatedAt:desc&search=a&scope=WORKSPACE&limit=2")[:1] == [
        "warehouse_replica"
    ]
    assert _keys(api, team, "sorts=objectType:desc,objectKey:desc&limit=2") == [
        "REGION",
        "LOCAL_ONLY",
    ]
    assert _keys(api, team, "sorts=objectType:desc&sorts=objectKey:asc&limit=2") == [
        "LOCAL_ONLY",
        "REGION",
    ]


@pytest.mark.parametrize("sort", ["password:asc", "objectKey:up", "id"])
def test_an_unknown_sort_is_a_400(api, team, sort):
    response = api.as_user(team.author).get(f"{objects_url(team)}?sorts={sort}")
    assert response.status_code == 400
    assert field_names(response) == ["sorts"]


def test_pagination_with_total_count(api, team, catalogue):
    response = api.as_user(team.author).get(f"{objects_url(team)}?limit=2&offset=2")
    data = response.json()
    assert (data["limit"], data["offset"], data["totalCount"]) == (2, 2, 5)
    assert [o["objectKey"] for o in data["environmentObjects"]] == [
        "warehouse_replica",
        "LOCAL_ONLY",
    ]
    beyond = api.get(f"{objects_url(team)}?offset=10").json()
    assert beyond["environmentObjects"] == [] and beyond["totalCount"] == 5


def test_the_default_limit_is_20(api, team):
    for index in range(21):
        _make(team, "AIRFLOW_VARIABLE", f"v{index:02d}", {"value": "x"})
    data = api.as_user(team.author).get(objects_url(team)).json()
    assert (len(data["environmentObjects"]), data["limit"], data["totalCount"]) == (20, 20, 21)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_limit_and_offset_out_of_range_are_a_400(api, team, query, field):
    response = api.as_user(team.author).get(f"{objects_url(team)}?{query}")
    assert response.status_code == 400
    assert field_names(response) == [field]


def test_an_unknown_object_type_filter_is_a_400(api, team):
    response = api.as_user(team.author).get(f"{objects_url(team)}?objectType=SECRET")
    assert response.status_code == 400
    assert field_names(response) == ["objectType"]


# Showing secrets (local development)


def test_show_secrets_is_refused_where_the_workspace_does_not_allow_it(api, team, catalogue):
    for url in (objects_url(team), object_url(team, catalogue["warehouse"])):
        response = api.as_user(team.owner).get(f"{url}?showSecrets=true")
        assert response.status_code == 403
        assert "local development" in response.json()["message"]
        assert_no_secret(response)


@pytest.mark.parametrize(("role", "expected"), [("AUTHOR", 200), ("MEMBER", 403)])
def test_show_secrets_where_allowed_is_for_authors_and_above(api, team, catalogue, role, expected):
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    response = api.as_user(team.user(role)).get(
        f"{objects_url(team)}?deploymentId={team.deployment.pk}&resolveLinked=true&showSecrets=true"
    )
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["environmentObjects"][0]["environmentVariable"] == {
            "value": "env-S3CRET-value",
            "isSecret": True,
        }
        assert response["Cache-Control"] == "no-store"


def test_show_secrets_on_one_object_shows_its_secret_overrides(api, team, catalogue):
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    link_create(
        user=team.owner,
        obj=catalogue["warehouse"],
        deployment=team.deployment,
        overrides={"password": "over-S3CRET"},
    )
    response = api.as_user(team.author).get(
        f"{object_url(team, catalogue['warehouse'])}?showSecrets=true"
    )
    assert response.json()["connection"]["password"] == "conn-pw-S3CRET"
    assert response.json()["links"][0]["overrides"] == {"password": "over-S3CRET"}


def test_secrets_stay_hidden_without_show_secrets_even_where_allowed(api, team, catalogue):
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    assert_no_secret(api.as_user(team.owner).get(objects_url(team)))


def test_every_response_with_secrets_is_in_the_audit_log_object_by_object(api, team, catalogue):
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    response = api.as_user(team.author).get(
        f"{objects_url(team)}?showSecrets=true&objectType=CONNECTION"
    )
    assert response.status_code == 200
    api.as_user(team.author).get(f"{object_url(team, catalogue['REGION'])}?showSecrets=true")
    events = AuditEvent.objects.filter(action="secrets.reveal", actor=team.author)
    assert sorted(events.values_list("object_key", flat=True)) == [
        "REGION",
        "warehouse",
        "warehouse_replica",
    ]
    assert not any(secret in str(list(events.values())) for secret in SECRETS)
    # Masked answers are not reveals.
    api.as_user(team.author).get(objects_url(team))
    assert events.count() == 3


def test_a_resolved_environment_shown_with_secrets_names_the_deployment(api, team, catalogue):
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    api.as_user(team.author).get(
        f"{objects_url(team)}?deploymentId={team.deployment.pk}&resolveLinked=true&showSecrets=true"
    )
    events = AuditEvent.objects.filter(action="secrets.reveal")
    assert events.exists()
    assert set(events.values_list("deployment_id", flat=True)) == {team.deployment.pk}


def test_no_secret_is_shown_when_its_reveal_cannot_be_audited(api, team, catalogue, monkeypatch):
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)

    def broken(*args, **kwargs):
        raise DatabaseError("audit storage unavailable")

    monkeypatch.setattr(AuditEvent.objects, "bulk_create", broken)
    client = api.as_user(team.author)
    client.raise_request_exception = False
    response = client.get(f"{objects_url(team)}?showSecrets=true")
    assert response.status_code >= 500
    assert_no_secret(response)


# Query count


def _many(team, count):
    for index in range(count):
        obj = _make(
            team,
            "CONNECTION",
            f"conn_{index:04d}",
            {"conn_type": "postgres", "host": "h"},
            auto_link_deployments=index % 2 == 0,
        )
        if index % 3 == 0:
            obj.auto_link_excluded.add(team.other_deployment)


def _queries(api, team, query):
    client = api.as_user(team.author)
    client.get(objects_url(team))  # warms Django's content-type cache, which is per process
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"{objects_url(team)}?{query}")
    assert response.status_code == 200
    return len(ctx.captured_queries), len(response.json()["environmentObjects"])


@pytest.mark.parametrize("query", ["limit=1000", "limit=1000&deploymentId={d}&resolveLinked=true"])
def test_a_list_costs_the_same_queries_for_10_or_200_objects(api, team, other_team, query):
    _many(team, 10)
    _many(other_team, 200)
    small = _queries(api, team, query.format(d=team.deployment.pk))
    large = _queries(api, other_team, query.format(d=other_team.deployment.pk))
    assert small[1] in (10, 5) and large[1] in (200, 100)
    assert small[0] == large[0], (small, large)
    print(f"queries for {small[1]} and {large[1]} objects: {small[0]}, {large[0]}")
