import io
import json

import pytest
from django.test import Client
from dotenv import dotenv_values

from accounts.services import api_token_create
from deployments.models import LookupCount
from deployments.services import deployment_token_create, deployment_token_revoke
from envmanager.lookups import lookup_counter
from envmanager.services import (
    auto_link_exclude,
    environment_object_create,
    environment_object_delete,
    environment_object_update,
    link_create,
    link_delete,
    link_set_overrides,
)
from tests.lookup.wsgi_client import wsgi_request

PG = {
    "conn_type": "postgres",
    "host": "db.internal",
    "login": "etl",
    "password": "p:/@?#%",
    "schema": "dwh",
    "port": 5432,
    "extra": {"sslmode": "require"},
}


@pytest.fixture
def setup(team):
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values=PG,
    )
    link = link_create(
        user=team.operator, obj=conn, deployment=team.deployment, overrides={"password": "prod-pw"}
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="mode",
        values={"value": "prod"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="GREETING",
        values={"value": 'say "hi"\nbye'},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    _, plain = deployment_token_create(user=team.operator, deployment=team.deployment, name="af")
    team.conn, team.link, team.plain = conn, link, plain
    return team


SERVED_BY = {"server": "fast path"}


@pytest.fixture(autouse=True, params=["fast path", "django"])
def served_by(request):
    """Every test runs twice: through the WSGI entry gunicorn serves (one-key lookups answered
    by the fast path, the rest handed to Django) and through Django's own request handling."""
    SERVED_BY["server"] = request.param
    yield request.param
    SERVED_BY["server"] = "fast path"


def get(path: str, token: str | None, **headers):
    if SERVED_BY["server"] == "fast path":
        sent = {"Authorization": f"Bearer {token}"} if token else {}
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        return wsgi_request("GET", path, sent)
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return Client().get(path, **extra)


def test_connection_lookup_returns_exactly_airflows_keys_with_overrides(setup):
    response = get("/api/v1/lookup/connections/warehouse", setup.plain)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "conn_type": "postgres",
        "description": None,
        "host": "db.internal",
        "login": "etl",
        "password": "prod-pw",
        "schema": "dwh",
        "port": 5432,
        "extra": json.dumps({"sslmode": "require"}),
    }


def test_variable_lookup(setup):
    assert get("/api/v1/lookup/variables/mode", setup.plain).json() == {"value": "prod"}


def test_unknown_keys_are_404(setup):
    assert get("/api/v1/lookup/connections/nope", setup.plain).status_code == 404
    assert get("/api/v1/lookup/variables/nope", setup.plain).status_code == 404


def test_conn_ids_with_slashes_resolve(setup):
    environment_object_create(
        user=setup.operator,
        workspace=setup.workspace,
        object_type="CONNECTION",
        key="team/a:b",
        values={"conn_type": "x"},
        scope="DEPLOYMENT",
        deployment=setup.deployment,
    )
    assert get("/api/v1/lookup/connections/team/a:b", setup.plain).status_code == 200


def test_a_token_of_another_deployment_sees_nothing_of_this_one(setup, other_team):
    _, other = deployment_token_create(
        user=setup.owner, deployment=setup.other_deployment, name="staging"
    )
    assert get("/api/v1/lookup/connections/warehouse", other).status_code == 404
    assert get("/api/v1/lookup/variables/mode", other).status_code == 404
    _, foreign = deployment_token_create(
        user=other_team.owner, deployment=other_team.deployment, name="x"
    )
    assert get("/api/v1/lookup/connections/warehouse", foreign).status_code == 404
    assert get("/api/v1/lookup/environment", foreign).json()["connections"] == {}


@pytest.mark.parametrize("token", [None, "emd_made_up", "garbage"])
def test_missing_or_unknown_tokens_are_401(setup, token):
    assert get("/api/v1/lookup/connections/warehouse", token).status_code == 401


def test_personal_tokens_and_sessions_do_not_work_on_lookups(setup):
    _, personal = api_token_create(user=setup.owner, name="me")
    assert get("/api/v1/lookup/connections/warehouse", personal).status_code == 401
    client = Client()
    client.force_login(setup.owner)
    assert client.get("/api/v1/lookup/connections/warehouse").status_code == 401


def test_a_revoked_token_stops_at_once(setup):
    token = setup.deployment.tokens.get()
    deployment_token_revoke(user=setup.owner, token=token)
    assert get("/api/v1/lookup/connections/warehouse", setup.plain).status_code == 401


def test_a_change_is_visible_at_the_next_lookup(setup):
    environment_object_update(user=setup.operator, obj=setup.conn, values={"host": "new"})
    assert get("/api/v1/lookup/connections/warehouse", setup.plain).json()["host"] == "new"


def test_a_lookup_is_one_query_for_token_and_key(setup, django_assert_num_queries):
    get("/api/v1/lookup/connections/warehouse", setup.plain)  # last_used_at written once
    with django_assert_num_queries(1):
        get("/api/v1/lookup/connections/warehouse", setup.plain)
    with django_assert_num_queries(1):
        get("/api/v1/lookup/connections/missing", setup.plain)
    with django_assert_num_queries(1):
        get("/api/v1/lookup/variables/mode", setup.plain)
    with django_assert_num_queries(1):
        get("/api/v1/lookup/variables/mode", "emd_unknown")


def test_lookup_cost_does_not_grow_with_the_environment(setup, django_assert_num_queries):
    for i in range(30):
        environment_object_create(
            user=setup.operator,
            workspace=setup.workspace,
            object_type="CONNECTION",
            key=f"extra{i}",
            values={"conn_type": "http", "password": f"pw{i}"},
            scope="DEPLOYMENT",
            deployment=setup.deployment,
        )
    get("/api/v1/lookup/connections/warehouse", setup.plain)
    with django_assert_num_queries(1):
        get("/api/v1/lookup/connections/extra17", setup.plain)


def test_last_used_is_written_at_most_once_a_minute(setup, django_assert_num_queries):
    with django_assert_num_queries(2):  # the lookup, then last_used_at
        get("/api/v1/lookup/connections/warehouse", setup.plain)
    first = setup.deployment.tokens.get().last_used_at
    with django_assert_num_queries(1):
        get("/api/v1/lookup/connections/warehouse", setup.plain)
    assert setup.deployment.tokens.get().last_used_at == first


def test_environment_document_and_etag(setup):
    response = get("/api/v1/lookup/environment", setup.plain)
    body, etag = response.json(), response["ETag"]
    assert body["connections"]["warehouse"]["password"] == "prod-pw"
    assert body["variables"] == {"mode": "prod"}
    assert body["environmentVariables"] == {"GREETING": 'say "hi"\nbye'}
    assert body["dotenv"] == "GREETING='say \"hi\"\nbye'\n"
    assert get("/api/v1/lookup/environment", setup.plain, if_none_match=etag).status_code == 304


def test_the_dotenv_reads_back_exactly_with_python_dotenv(setup):
    awkward = {
        "QUOTES": 'say "hi" and it\'s',
        "BACKSLASH": "C:\\path\\n-not-a-newline",
        "LINES": "one\ntwo\nthree\n",
        "DOLLAR": "pa$$word ${HOME} $USER",
        "UNICODE": "ünïcødé €",
        "EMPTY": "",
    }
    for key, value in awkward.items():
        environment_object_create(
            user=setup.operator,
            workspace=setup.workspace,
            object_type="ENVIRONMENT_VARIABLE",
            key=key,
            values={"value": value},
            scope="DEPLOYMENT",
            deployment=setup.deployment,
        )
    body = get("/api/v1/lookup/environment", setup.plain).json()
    parsed = dotenv_values(stream=io.StringIO(body["dotenv"]), interpolate=False)
    assert parsed == body["environmentVariables"]
    assert {k: parsed[k] for k in awkward} == awkward


def test_environment_serves_metrics_exports_and_empty_types(setup):
    environment_object_create(
        user=setup.operator,
        workspace=setup.workspace,
        object_type="METRICS_EXPORT",
        key="prom",
        values={
            "endpoint": "https://prom.example.com/api/v1/write",
            "exporter_type": "PROMETHEUS",
            "auth_type": "AUTH_TOKEN",
            "basic_token": "tok-secret",
            "labels": {"env": "prod"},
        },
        scope="DEPLOYMENT",
        deployment=setup.deployment,
    )
    export = get("/api/v1/lookup/environment", setup.plain).json()["metricsExports"]["prom"]
    assert export["endpoint"] == "https://prom.example.com/api/v1/write"
    assert (export["authType"], export["basicToken"]) == ("AUTH_TOKEN", "tok-secret")
    assert export["labels"] == {"env": "prod"}


def test_a_stale_or_foreign_etag_gets_the_full_document(setup):
    for tags in ('"x"', 'W/"x"', '"x", W/"y"', "", "garbage"):
        response = get("/api/v1/lookup/environment", setup.plain, if_none_match=tags)
        assert response.status_code == 200, tags


def test_if_none_match_compares_weakly_and_takes_lists_and_star(setup):
    etag = get("/api/v1/lookup/environment", setup.plain)["ETag"]
    for tags in (etag, f"W/{etag}", f'"a", W/{etag}', f'W/"a",{etag} , "b"', "*", " * "):
        response = get("/api/v1/lookup/environment", setup.plain, if_none_match=tags)
        assert response.status_code == 304, tags
        assert response["ETag"] == etag and response.content == b""


def test_star_matches_nothing_without_a_valid_token(setup):
    assert get("/api/v1/lookup/environment", "emd_nope", if_none_match="*").status_code == 401


def send(method: str, path: str, token: str | None, **headers):
    """Through the WSGI entry (fast path first) or straight to Django, CSRF checks as in
    production (the test client skips them)."""
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return wsgi_request(method, path, sent, django=SERVED_BY["server"] == "django")


LOOKUP_PATHS = [
    "/api/v1/lookup/connections/warehouse",
    "/api/v1/lookup/variables/mode",
    "/api/v1/lookup/connections/nope",
    "/api/v1/lookup/environment",
]


@pytest.mark.parametrize("path", LOOKUP_PATHS)
@pytest.mark.parametrize("token", ["valid", None])
def test_head_answers_as_get_without_a_body(setup, path, token):
    token = setup.plain if token else None
    got = send("GET", path, token)
    head = send("HEAD", path, token)
    assert got.content and head.content == b""
    assert head.status_code == got.status_code
    assert head.headers == got.headers
    assert int(head["Content-Length"]) == len(got.content)
    if path.endswith("environment") and token:
        assert head["ETag"] == got["ETag"]
        again = send("HEAD", path, token, if_none_match=f"W/{got['ETag']}")
        assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("path", LOOKUP_PATHS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_a_405_in_our_error_shape(setup, path, method):
    response = send(method, path, setup.plain)
    assert response.status_code == 405, response.content[:200]
    assert response["Allow"] == "GET, HEAD"
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"message", "statusCode", "requestId", "fieldErrors"}
    assert body["statusCode"] == 405


def test_etag_changes_when_an_object_appears_for_the_deployment(setup):
    def etag():
        return get("/api/v1/lookup/environment", setup.plain)["ETag"]

    before = etag()
    environment_object_create(
        user=setup.operator,
        workspace=setup.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="OWN",
        values={"value": "1"},
        scope="DEPLOYMENT",
        deployment=setup.deployment,
    )
    after_own = etag()
    assert after_own != before
    auto = environment_object_create(
        user=setup.operator,
        workspace=setup.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="everywhere",
        values={"value": "1"},
        auto_link_deployments=True,
    )
    after_auto = etag()
    assert after_auto != after_own
    auto_link_exclude(user=setup.operator, obj=auto, deployment=setup.deployment)
    assert etag() != after_auto


def test_etag_changes_when_an_override_is_unset(setup):
    before = get("/api/v1/lookup/environment", setup.plain)["ETag"]
    link_set_overrides(user=setup.operator, link=setup.link, unset_fields=["password"])
    response = get("/api/v1/lookup/environment", setup.plain)
    assert response["ETag"] != before
    assert response.json()["connections"]["warehouse"]["password"] == PG["password"]


def test_etag_ignores_changes_of_other_deployments(setup):
    before = get("/api/v1/lookup/environment", setup.plain)["ETag"]
    link_create(user=setup.operator, obj=setup.conn, deployment=setup.other_deployment)
    environment_object_create(
        user=setup.operator,
        workspace=setup.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="staging-only",
        values={"value": "x"},
        scope="DEPLOYMENT",
        deployment=setup.other_deployment,
    )
    assert get("/api/v1/lookup/environment", setup.plain)["ETag"] == before


def test_etag_changes_with_every_change_the_deployment_resolves(setup):
    def etag():
        return get("/api/v1/lookup/environment", setup.plain)["ETag"]

    first = etag()
    unrelated = environment_object_create(
        user=setup.operator,
        workspace=setup.workspace,
        object_type="CONNECTION",
        key="elsewhere",
        values={"conn_type": "x"},
    )
    assert etag() == first  # not linked here: same version
    link = link_create(user=setup.operator, obj=unrelated, deployment=setup.deployment)
    for change in (
        lambda: link_set_overrides(user=setup.operator, link=link, overrides={"host": "h"}),
        lambda: environment_object_update(
            user=setup.operator, obj=unrelated, values={"login": "l"}
        ),
        lambda: link_delete(user=setup.operator, link=link),
        lambda: environment_object_delete(user=setup.operator, obj=setup.conn),
    ):
        previous = etag()
        change()
        assert etag() != previous


def test_lookups_are_counted_per_token_and_key(setup):
    lookup_counter.reset()
    for _ in range(3):
        get("/api/v1/lookup/connections/warehouse", setup.plain)
    get("/api/v1/lookup/connections/nope", setup.plain)
    lookup_counter.flush()
    get("/api/v1/lookup/connections/warehouse", setup.plain)
    lookup_counter.flush()
    counts = {(c.object_key, c.found): c.count for c in LookupCount.objects.all()}
    assert counts == {("warehouse", True): 4, ("nope", False): 1}
    assert setup.deployment.tokens.get().last_used_at is not None


def test_counts_of_a_deleted_token_are_dropped(setup):
    lookup_counter.reset()
    get("/api/v1/lookup/connections/warehouse", setup.plain)
    setup.deployment.tokens.all().delete()
    lookup_counter.flush()
    assert not LookupCount.objects.exists()


def test_the_environment_document_follows_each_change(setup):
    first = get("/api/v1/lookup/environment", setup.plain).json()
    environment_object_update(user=setup.operator, obj=setup.conn, values={"host": "moved"})
    second = get("/api/v1/lookup/environment", setup.plain).json()
    assert first["connections"]["warehouse"]["host"] == "db.internal"
    assert second["connections"]["warehouse"]["host"] == "moved"


def test_a_miss_is_not_logged_as_a_warning(setup, caplog):
    assert get("/api/v1/lookup/connections/nope", setup.plain).status_code == 404
    assert not [r for r in caplog.records if r.name == "django.request"]
