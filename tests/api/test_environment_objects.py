"""Every object type through the API: create, get, list, patch, delete, field by field; secrets
are write-only and `setFields` says which fields hold a value."""

import pytest

from envmanager.models import EnvironmentObject
from tests.api.conftest import (
    SET_FIELDS,
    SHOWN,
    STORED,
    TYPES,
    assert_no_secret,
    object_url,
    objects_url,
    stored,
)

BLOCK = {
    "CONNECTION": "connection",
    "AIRFLOW_VARIABLE": "airflowVariable",
    "ENVIRONMENT_VARIABLE": "environmentVariable",
    "METRICS_EXPORT": "metricsExport",
}
# One field per type to change, and its stored name: a non-secret one where the type has one
# (the secret environment variable's flag cannot be lowered: a secret stays secret).
CHANGE = {
    "CONNECTION": ("host", "db2.internal", "host"),
    "AIRFLOW_VARIABLE": ("description", "Rotated monthly", "description"),
    "ENVIRONMENT_VARIABLE": ("value", "env-rotated-value", "value"),
    "METRICS_EXPORT": ("username", "metrics2", "username"),
}


@pytest.mark.parametrize("object_type", TYPES)
def test_create_shows_every_field_but_the_secrets(api, team, create, object_type):
    data = create(object_type)
    assert data[BLOCK[object_type]] == SHOWN[object_type]
    assert data["setFields"] == SET_FIELDS[object_type]
    assert data["objectType"] == object_type
    assert data["scope"] == "WORKSPACE"
    assert data["scopeEntityId"] == team.workspace.pk
    assert data["workspaceId"] == team.workspace.pk
    assert data["links"] == [] and data["excludeLinks"] == []
    assert data["autoLinkDeployments"] is False
    assert data["createdBy"] == {"id": team.operator.pk, "email": team.operator.email}
    assert data["updatedBy"] == data["createdBy"]
    assert data["createdAt"] and data["updatedAt"]
    assert not set(BLOCK.values()) - {BLOCK[object_type]} & set(data)


@pytest.mark.parametrize("object_type", TYPES)
def test_create_stores_every_field_secrets_included(create, object_type):
    data = create(object_type)
    assert stored(data["id"]).values == STORED[object_type]


@pytest.mark.parametrize("object_type", TYPES)
def test_no_secret_in_any_response(api, team, create, object_type):
    data = create(object_type)
    client = api.as_user(team.author)
    assert_no_secret(client.get(object_url(team, data["id"])))
    assert_no_secret(client.get(objects_url(team)))
    patched = api.as_user(team.operator).patch(
        object_url(team, data["id"]), {"objectKey": "renamed_key"}, format="json"
    )
    assert_no_secret(patched)


@pytest.mark.parametrize("object_type", TYPES)
def test_get_and_list_show_the_same_body_as_create(api, team, create, object_type):
    data = create(object_type)
    client = api.as_user(team.author)
    assert client.get(object_url(team, data["id"])).json() == data
    assert client.get(objects_url(team)).json()["environmentObjects"] == [data]


@pytest.mark.parametrize("object_type", TYPES)
def test_patch_changes_only_the_fields_sent(api, team, create, object_type):
    data = create(object_type)
    name, value, snake = CHANGE[object_type]
    response = api.as_user(team.owner).patch(
        object_url(team, data["id"]), {BLOCK[object_type]: {name: value}}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert stored(data["id"]).values == {**STORED[object_type], snake: value}
    assert response.json()["updatedBy"]["email"] == team.owner.email
    assert response.json()["updatedAt"] > data["updatedAt"]
    assert response.json()["createdAt"] == data["createdAt"]


def test_patch_of_a_secret_stores_it_and_never_returns_it(api, team, create):
    data = create("CONNECTION")
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]),
        {"connection": {"password": "new-pw-S3CRET", "extra": {"k": "v"}}},
        format="json",
    )
    assert b"new-pw-S3CRET" not in response.content
    assert stored(data["id"]).values["password"] == "new-pw-S3CRET"
    assert stored(data["id"]).values["extra"] == {"k": "v"}
    assert response.json()["setFields"][-2:] == ["extra.k", "extra"]


def test_set_fields_tell_an_empty_secret_from_a_set_one(api, team, create):
    data = create("CONNECTION")
    assert "password" in data["setFields"]
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]),
        {"connection": {"password": None, "extra": None}},
        format="json",
    )
    fields = response.json()["setFields"]
    assert "password" not in fields and not [f for f in fields if f.startswith("extra")]
    # Empty text and an empty extra are values, as Airflow shows them ('' and '{}').
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]), {"connection": {"password": "", "extra": {}}}, format="json"
    )
    fields = response.json()["setFields"]
    assert "password" in fields and "extra" in fields
    assert stored(data["id"]).values["password"] == "" and stored(data["id"]).values["extra"] == {}


def test_a_variable_that_is_not_secret_shows_its_value(api, team, create):
    data = create(
        "AIRFLOW_VARIABLE",
        objectKey="batch_size",
        airflowVariable={"value": "500", "description": "", "isSecret": False},
    )
    assert data["airflowVariable"] == {"value": "500", "description": "", "isSecret": False}
    assert data["setFields"] == ["value", "description"]  # empty text, not unset


def test_patch_renames_the_key(api, team, create):
    data = create("CONNECTION")
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]), {"objectKey": "warehouse_v2"}, format="json"
    )
    assert response.json()["objectKey"] == "warehouse_v2"
    assert stored(data["id"]).key == "warehouse_v2"


def test_patch_accepts_a_response_body_sent_back(api, team, create):
    data = create("CONNECTION")
    response = api.as_user(team.operator).patch(object_url(team, data["id"]), data, format="json")
    assert response.status_code == 200, response.json()
    assert stored(data["id"]).values == STORED["CONNECTION"]


@pytest.mark.parametrize("object_type", TYPES)
def test_delete_removes_the_object(api, team, create, object_type):
    data = create(object_type)
    response = api.as_user(team.operator).delete(object_url(team, data["id"]))
    assert response.status_code == 204
    assert not EnvironmentObject.objects.filter(pk=data["id"]).exists()
    assert api.get(object_url(team, data["id"])).status_code == 404


def test_a_deployment_scoped_object_belongs_to_its_deployment(api, team, create):
    data = create("ENVIRONMENT_VARIABLE", scope="DEPLOYMENT", scopeEntityId=team.deployment.pk)
    assert data["scope"] == "DEPLOYMENT"
    assert data["scopeEntityId"] == team.deployment.pk
    # Its own link to its Deployment is how it resolves, not a link a user made.
    assert data["links"] == []
    assert stored(data["id"]).links.get().is_home


def test_a_deployment_scoped_object_of_an_unknown_deployment_is_refused(api, team, other_team):
    response = api.as_user(team.operator).post(
        objects_url(team),
        {
            "objectKey": "X",
            "objectType": "ENVIRONMENT_VARIABLE",
            "scope": "DEPLOYMENT",
            "scopeEntityId": other_team.deployment.pk,
            "environmentVariable": {"value": "1"},
        },
        format="json",
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["fieldErrors"]] == ["scopeEntityId"]
