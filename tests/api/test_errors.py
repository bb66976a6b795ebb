"""Bad input is always a 400 that names the field (as the client named it), never a 500."""

import pytest
from django.test import Client

from tests.api.conftest import assert_no_secret, body, field_names, object_url, objects_url

ERROR_KEYS = {"message", "statusCode", "requestId", "fieldErrors"}


def _post(api, team, data, **kwargs):
    return api.as_user(team.operator).post(objects_url(team), data, format="json", **kwargs)


def _conn(**fields):
    return body("CONNECTION", connection={**body("CONNECTION")["connection"], **fields})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (body("CONNECTION", objectType="PASSWORD"), "objectType"),
        ({k: v for k, v in body("CONNECTION").items() if k != "connection"}, "connection"),
        (body("CONNECTION", airflowVariable={"value": "x"}), "airflowVariable"),
        (_conn(extra="not an object"), "connection.extra"),
        (_conn(extra=["a"]), "connection.extra"),
        (_conn(port="5432"), "connection.port"),
        (_conn(port=True), "connection.port"),
        (_conn(port=70000), "connection.port"),
        (_conn(host=5), "connection.host"),
        (_conn(type=""), "connection.type"),
        (_conn(pasword="typo"), "connection.pasword"),
        (body("CONNECTION", objectKey="has space"), "objectKey"),
        (body("CONNECTION", objectKey=""), "objectKey"),
        (body("CONNECTION", objectKey=7), "objectKey"),
        (body("CONNECTION", scope="TEAM"), "scope"),
        (body("CONNECTION", autoLinkDeployments="yes"), "autoLinkDeployments"),
        (body("CONNECTION", links={"scope": "DEPLOYMENT"}), "links"),
        (body("CONNECTION", links=[{"scope": "DEPLOYMENT"}]), "links[0].scopeEntityId"),
        (body("CONNECTION", links=[{"scope": "X", "scopeEntityId": 1}]), "links[0].scope"),
        (body("CONNECTION", colour="blue"), "colour"),
        (
            body("AIRFLOW_VARIABLE", airflowVariable={"value": "x", "isSecret": "no"}),
            "airflowVariable.isSecret",
        ),
        (body("AIRFLOW_VARIABLE", airflowVariable={"value": {"a": 1}}), "airflowVariable.value"),
        (body("AIRFLOW_VARIABLE", objectKey="has/slash"), "objectKey"),
        (body("ENVIRONMENT_VARIABLE", objectKey="1ABC"), "objectKey"),
        (body("METRICS_EXPORT", metricsExport={"endpoint": "ftp://x"}), "metricsExport.endpoint"),
        (
            body("METRICS_EXPORT", metricsExport={"endpoint": "https://x", "authType": "OAUTH"}),
            "metricsExport.authType",
        ),
        (
            body("METRICS_EXPORT", metricsExport={"endpoint": "https://x", "labels": {"a": 1}}),
            "metricsExport.labels.a",
        ),
        (
            body("METRICS_EXPORT", metricsExport={"endpoint": "https://x", "exporterType": "OTLP"}),
            "metricsExport.exporterType",
        ),
        (
            body("METRICS_EXPORT", metricsExport={"endpoint": "https://x", "authType": "BASIC"}),
            "metricsExport.username",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, team, data, field):
    response = _post(api, team, data)
    assert response.status_code == 400, response.content
    assert set(response.json()) == ERROR_KEYS
    assert response.json()["statusCode"] == 400
    assert field in field_names(response)
    assert_no_secret(response)


def test_a_body_that_is_not_an_object_is_a_400(api, team):
    response = _post(api, team, ["a list"])
    assert response.status_code == 400
    assert set(response.json()) == ERROR_KEYS


def test_malformed_json_is_a_400(api, team):
    response = api.as_user(team.operator).post(
        objects_url(team), data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert set(response.json()) == ERROR_KEYS


def test_a_duplicate_key_is_a_409_naming_the_key(api, team, create):
    create()
    response = _post(api, team, body("CONNECTION"))
    assert response.status_code == 409
    assert field_names(response) == ["objectKey"]
    message = "This Workspace already has a connection 'warehouse'."
    assert response.json()["message"] == message
    assert response.json()["fieldErrors"][0]["message"] == message


def test_a_key_a_linked_deployment_resolves_is_a_409_naming_the_deployment(api, team, create):
    mine = create()
    deployment_object = body("CONNECTION")
    deployment_object.update(
        objectKey="replica", scope="DEPLOYMENT", scopeEntityId=team.deployment.pk
    )
    assert _post(api, team, deployment_object).status_code == 201
    api.as_user(team.owner).patch(
        object_url(team, mine["id"]),
        {"links": [{"scope": "DEPLOYMENT", "scopeEntityId": team.deployment.pk}]},
        format="json",
    )
    response = api.as_user(team.owner).patch(
        object_url(team, mine["id"]), {"objectKey": "replica"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["message"] == (
        f"Deployment {team.deployment.name!r} already resolves a connection 'replica' "
        "from one of its own objects."
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"objectType": "AIRFLOW_VARIABLE"}, "objectType"),
        ({"scope": "DEPLOYMENT"}, "scope"),
        ({"scopeEntityId": 999}, "scopeEntityId"),
        ({"airflowVariable": {"value": "x"}}, "airflowVariable"),
        ({"connection": {"port": "x"}}, "connection.port"),
        ({"connection": {"type": ""}}, "connection.type"),
        ({"objectKey": "bad key"}, "objectKey"),
        ({"unsetFields": ["colour"]}, "unsetFields[0]"),
        (
            {"links": [{"scope": "DEPLOYMENT", "scopeEntityId": 1, "overrides": "x"}]},
            "links[0].overrides",
        ),
        (
            {"links": [{"scope": "DEPLOYMENT", "scopeEntityId": 1, "unsetFields": ["nope"]}]},
            "links[0].unsetFields[0]",
        ),
    ],
)
def test_bad_patches_are_a_400_naming_the_field(api, team, create, patch, field):
    data = create()
    if "links" in patch:
        patch["links"][0]["scopeEntityId"] = team.deployment.pk
    response = api.as_user(team.operator).patch(object_url(team, data["id"]), patch, format="json")
    assert response.status_code == 400, response.content
    assert field in field_names(response)


def test_an_error_message_never_repeats_a_secret(api, team):
    data = _conn(port="x", password="conn-pw-S3CRET")
    assert_no_secret(_post(api, team, data))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("deploymentId", "abc", "whole number"),
        ("deploymentId", "-1", "whole number"),
        ("deploymentId", "1.5", "whole number"),
        ("deploymentId", "１２", "whole number"),
        ("deploymentId", "²", "whole number"),
        ("action", "environment\x00.create", "NUL"),
        ("objectKey", "\x00", "NUL"),
    ],
)
def test_an_audit_log_filter_that_cannot_match_is_a_400(api, team, name, value, message):
    # Found by schemathesis: a non-numeric deploymentId, and on PostgreSQL a NUL character,
    # reached the query and were a 500.
    url = f"/api/v1/workspaces/{team.workspace.pk}/audit-log"
    client = api.as_user(team.owner)
    for path in (url, f"{url}/export"):
        response = client.get(path, {name: value})
        assert response.status_code == 400, path
        assert message in response.json()["message"]
    page = Client()
    page.force_login(team.owner)
    page_name = {"deploymentId": "deployment_id", "objectKey": "object_key"}.get(name, name)
    response = page.get(f"/workspaces/{team.workspace.pk}/audit/", {page_name: value})
    assert response.status_code == 200 and message.encode() in response.content


def test_an_audit_log_deployment_filter_finds_by_id(api, team):
    url = f"/api/v1/workspaces/{team.workspace.pk}/audit-log"
    client = api.as_user(team.owner)
    found = client.get(url, {"deploymentId": str(team.deployment.pk)}).json()
    assert found["totalCount"] >= 1
    assert {e["deploymentId"] for e in found["auditEvents"]} == {team.deployment.pk}
    assert client.get(url, {"deploymentId": "9" * 25}).json()["totalCount"] == 0


# Field names in errors are the API's (camelCase), wherever the error was raised.


def deployments_url(team) -> str:
    return f"/api/v1/workspaces/{team.workspace.pk}/deployments"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "etl", "metadataDbUrl": "mysql://db/airflow"}, "metadataDbUrl"),
        ({"name": "etl", "fernetKey": "not-a-fernet-key"}, "fernetKey"),
    ],
)
def test_a_services_field_error_is_named_in_camel_case(api, team, data, field):
    client = api.as_user(team.owner)
    created = client.post(deployments_url(team), data, format="json")
    assert created.status_code == 400, created.content
    assert field_names(created) == [field]
    changed = client.patch(
        f"{deployments_url(team)}/{team.deployment.pk}",
        {k: v for k, v in data.items() if k != "name"},
        format="json",
    )
    assert changed.status_code == 400
    assert field_names(changed) == [field]
    assert "_" not in "".join(field_names(changed))


def test_a_models_field_error_and_its_message_are_named_in_camel_case(api, team):
    response = api.as_user(team.owner).post(
        deployments_url(team), {"name": "x" * 101}, format="json"
    )
    assert response.status_code == 400
    assert field_names(response) == ["name"]
    deployment = api.as_user(team.owner).post(
        deployments_url(team), {"name": "etl", "metadataDbUrl": "ftp://x"}, format="json"
    )
    assert "metadata_db_url" not in deployment.content.decode()


def test_unsetting_a_field_that_cannot_be_overridden_names_unset_fields(api, team, create):
    data = create()
    link = {"scope": "DEPLOYMENT", "scopeEntityId": team.deployment.pk}
    client = api.as_user(team.operator)
    linked = client.patch(object_url(team, data["id"]), {"links": [link]}, format="json")
    assert linked.status_code == 200, linked.content
    response = client.patch(
        object_url(team, data["id"]),
        {"links": [{**link, "unsetFields": ["description"]}]},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert field_names(response) == ["links[0].unsetFields"]
    assert "unset_fields" not in response.content.decode()


def test_a_field_the_client_misspelt_is_named_as_sent(api, team):
    response = _post(
        api,
        team,
        body("AIRFLOW_VARIABLE", airflowVariable={"value": "x", "is_secret": True}),
    )
    assert response.status_code == 400
    assert field_names(response) == ["airflowVariable.is_secret"]


def test_the_users_own_keys_are_kept_as_sent(api, team):
    response = _post(
        api,
        team,
        body(
            "METRICS_EXPORT",
            metricsExport={"endpoint": "https://x", "labels": {"team_name": 1}},
        ),
    )
    assert response.status_code == 400
    assert field_names(response) == ["metricsExport.labels.team_name"]


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("metadata_db_url", "metadataDbUrl"),
        ("is_secret", "isSecret"),
        ("sig_v4_assume_arn", "sigV4AssumeArn"),
        ("links[0].unset_fields[2]", "links[0].unsetFields[2]"),
        ("objectKey", "objectKey"),
        ("connection.extra.ssl_mode", "connection.extra.ssl_mode"),
        ("links[0].overrides.extra.my_key", "links[0].overrides.extra.my_key"),
        ("metricsExport.headers.X_Org_Id", "metricsExport.headers.X_Org_Id"),
        ("", ""),
    ],
)
def test_api_field_name(path, named):
    from envmanager.kernel.api import api_field_name

    assert api_field_name(path) == named


def test_overriding_a_field_that_cannot_be_overridden_names_it_in_camel_case(api, team, create):
    data = create("AIRFLOW_VARIABLE")
    link = {"scope": "DEPLOYMENT", "scopeEntityId": team.deployment.pk}
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]),
        {"links": [{**link, "overrides": {"isSecret": False}}]},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert field_names(response) == ["links[0].overrides.isSecret"]
