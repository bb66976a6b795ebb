"""Bodies of one object per type, with secrets that are easy to spot in a response."""

import copy

import pytest

from envmanager.models import EnvironmentObject

SECRETS = (
    "conn-pw-S3CRET",
    "extra-tok-S3CRET",
    "var-S3CRET-value",
    "env-S3CRET-value",
    "metrics-pw-S3CRET",
    "metrics-hdr-S3CRET",
)

BODIES = {
    "CONNECTION": {
        "objectKey": "warehouse",
        "objectType": "CONNECTION",
        "connection": {
            "type": "postgres",
            "description": "Main warehouse",
            "host": "db.internal",
            "schema": "analytics",
            "login": "etl",
            "password": "conn-pw-S3CRET",
            "port": 5432,
            "extra": {"sslmode": "require", "token": "extra-tok-S3CRET"},
        },
    },
    "AIRFLOW_VARIABLE": {
        "objectKey": "partner_api_key",
        "objectType": "AIRFLOW_VARIABLE",
        "airflowVariable": {
            "value": "var-S3CRET-value",
            "description": "Key of the partner API",
            "isSecret": True,
        },
    },
    "ENVIRONMENT_VARIABLE": {
        "objectKey": "SERVICE_TOKEN",
        "objectType": "ENVIRONMENT_VARIABLE",
        "environmentVariable": {"value": "env-S3CRET-value", "isSecret": True},
    },
    "METRICS_EXPORT": {
        "objectKey": "prometheus",
        "objectType": "METRICS_EXPORT",
        "metricsExport": {
            "endpoint": "https://prom.example.com/api/v1/write",
            "exporterType": "PROMETHEUS",
            "authType": "BASIC",
            "username": "metrics",
            "password": "metrics-pw-S3CRET",
            "sigV4AssumeArn": "",
            "sigV4StsRegion": "",
            "headers": {"X-Scope-OrgID": "metrics-hdr-S3CRET"},
            "labels": {"team": "data"},
        },
    },
}

# What a response shows of each block: every field but the secret ones.
SHOWN = {
    "CONNECTION": {
        "type": "postgres",
        "description": "Main warehouse",
        "host": "db.internal",
        "schema": "analytics",
        "login": "etl",
        "port": 5432,
    },
    "AIRFLOW_VARIABLE": {"description": "Key of the partner API", "isSecret": True},
    "ENVIRONMENT_VARIABLE": {"isSecret": True},
    "METRICS_EXPORT": {
        "endpoint": "https://prom.example.com/api/v1/write",
        "exporterType": "PROMETHEUS",
        "authType": "BASIC",
        "username": "metrics",
        "sigV4AssumeArn": "",
        "sigV4StsRegion": "",
        "labels": {"team": "data"},
    },
}

# What the database holds for each (snake_case, as object_types.SPECS names them).
STORED = {
    "CONNECTION": {
        "conn_type": "postgres",
        "description": "Main warehouse",
        "host": "db.internal",
        "schema": "analytics",
        "login": "etl",
        "password": "conn-pw-S3CRET",
        "port": 5432,
        "extra": {"sslmode": "require", "token": "extra-tok-S3CRET"},
    },
    "AIRFLOW_VARIABLE": {
        "value": "var-S3CRET-value",
        "description": "Key of the partner API",
        "is_secret": True,
    },
    "ENVIRONMENT_VARIABLE": {"value": "env-S3CRET-value", "is_secret": True},
    "METRICS_EXPORT": {
        "endpoint": "https://prom.example.com/api/v1/write",
        "exporter_type": "PROMETHEUS",
        "auth_type": "BASIC",
        "basic_token": "",
        "username": "metrics",
        "password": "metrics-pw-S3CRET",
        "sig_v4_assume_arn": "",
        "sig_v4_sts_region": "",
        "headers": {"X-Scope-OrgID": "metrics-hdr-S3CRET"},
        "labels": {"team": "data"},
    },
}

SET_FIELDS = {
    "CONNECTION": [
        "type",
        "description",
        "host",
        "schema",
        "login",
        "password",
        "port",
        "extra.sslmode",
        "extra.token",
        "extra",
    ],
    "AIRFLOW_VARIABLE": ["value", "description", "isSecret"],
    "ENVIRONMENT_VARIABLE": ["value", "isSecret"],
    "METRICS_EXPORT": [
        "endpoint",
        "exporterType",
        "authType",
        "username",
        "password",
        "headers",
        "labels",
    ],
}

TYPES = list(BODIES)


def body(object_type: str = "CONNECTION", **changes) -> dict:
    data = copy.deepcopy(BODIES[object_type])
    data.update(changes)
    return data


def objects_url(team) -> str:
    return f"/api/v1/workspaces/{team.workspace.pk}/environment-objects"


def object_url(team, obj) -> str:
    pk = obj if isinstance(obj, int) else obj.pk
    return f"{objects_url(team)}/{pk}"


def assert_no_secret(response) -> None:
    for secret in SECRETS:
        assert secret.encode() not in response.content, secret


def field_names(response) -> list[str]:
    return [e["field"] for e in response.json()["fieldErrors"]]


@pytest.fixture
def create(api, team):
    """Create an object through the API as the Operator; returns the response body."""

    def create(object_type: str = "CONNECTION", **changes) -> dict:
        response = api.as_user(team.operator).post(
            objects_url(team), body(object_type, **changes), format="json"
        )
        assert response.status_code == 201, response.json()
        return response.json()

    return create


def stored(pk: int) -> EnvironmentObject:
    return EnvironmentObject.objects.get(pk=pk)
