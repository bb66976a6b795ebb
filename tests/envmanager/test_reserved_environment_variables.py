"""Environment variables that would take over Airflow's settings the platform owns, or the
process that loads the environment, are refused with the reason, wherever one is made."""

from pathlib import Path

import pytest
from django.test import Client

from envmanager.kernel.errors import InvalidInput
from envmanager.models import EnvironmentObject
from envmanager.object_types import (
    RESERVED_ENVIRONMENT_VARIABLE_PREFIXES,
    RESERVED_ENVIRONMENT_VARIABLES,
    reserved_environment_variable,
)
from envmanager.services import environment_object_create

README = Path(__file__).resolve().parents[2] / "README.md"
REFUSED = [
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
    "AIRFLOW__SECRETS__BACKEND",
    "AIRFLOW__SECRETS__BACKEND_KWARGS",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__WEBSERVER__SECRET_KEY_CMD",
    "AIRFLOW__CORE__FERNET_KEY_SECRET",
    "AIRFLOW_HOME",
    "AIRFLOW_CONFIG",
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "ENVMANAGER_URL",
    "ENVMANAGER_TOKEN",
    "ENVMANAGER_ANYTHING_ELSE",
    "ld_preload",
    "Path",
]
ALLOWED = [
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW_VAR_MODE",
    "MY_PATH",
    "PATH_EXTRA",
    "PYTHONUNBUFFERED",
    "ENVMANAGERX",
    "LD_PRELOADED",
]


def create(team, key: str) -> EnvironmentObject:
    return environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key=key,
        values={"value": "/tmp/evil"},
    )


@pytest.mark.parametrize("key", REFUSED)
def test_a_reserved_key_is_refused_with_the_reason(team, key):
    with pytest.raises(InvalidInput) as refused:
        create(team, key)
    reason = reserved_environment_variable(key)
    assert reason
    assert refused.value.field_errors["key"] == (
        f"{key} cannot be set as an environment variable: {reason}."
    )
    assert not EnvironmentObject.objects.exists()


@pytest.mark.parametrize("key", ALLOWED)
def test_an_ordinary_key_is_kept(team, key):
    assert create(team, key).key == key


def test_other_types_may_use_those_names(team):
    for object_type, values in (
        ("AIRFLOW_VARIABLE", {"value": "x"}),
        ("CONNECTION", {"conn_type": "http"}),
    ):
        obj = environment_object_create(
            user=team.operator,
            workspace=team.workspace,
            object_type=object_type,
            key="PATH",
            values=values,
        )
        assert obj.key == "PATH"


def test_the_api_refuses_a_reserved_key_naming_the_field_and_the_reason(api, team):
    response = api.as_user(team.operator).post(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects",
        {
            "objectKey": "LD_PRELOAD",
            "objectType": "ENVIRONMENT_VARIABLE",
            "environmentVariable": {"value": "/tmp/evil.so", "isSecret": False},
        },
        format="json",
    )
    assert response.status_code == 400
    (error,) = response.json()["fieldErrors"]
    assert error["field"] == "objectKey"
    assert error["message"] == (
        "LD_PRELOAD cannot be set as an environment variable: "
        "it loads a library into every program the process runs."
    )


def test_the_api_refuses_renaming_to_a_reserved_key(api, team):
    obj = create(team, "HARMLESS")
    response = api.as_user(team.operator).patch(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{obj.pk}",
        {"objectKey": "AIRFLOW__CORE__FERNET_KEY"},
        format="json",
    )
    assert response.status_code == 400
    assert "Fernet key" in response.json()["fieldErrors"][0]["message"]
    obj.refresh_from_db()
    assert obj.key == "HARMLESS"


def test_the_page_form_shows_the_reason_next_to_the_key(team):
    client = Client()
    client.force_login(team.operator)
    response = client.post(
        f"/workspaces/{team.workspace.pk}/environment/?type=environment-variables",
        {"type": "environment-variables", "new-key": "PYTHONPATH", "new-value": "/tmp"},
    )
    assert response.status_code == 200
    assert (
        "PYTHONPATH cannot be set as an environment variable: "
        "it decides which Python code the process imports."
    ) in response.content.decode()
    assert not EnvironmentObject.objects.exists()


def test_the_readme_lists_every_reserved_key():
    text = README.read_text()
    names = RESERVED_ENVIRONMENT_VARIABLES
    # The `_CMD` and `_SECRET` forms are said once for all.
    base = {
        k for k in names if not (k.endswith(("_CMD", "_SECRET")) and k.rsplit("_", 1)[0] in names)
    }
    for key in [*base, *(f"{p}*" for p in RESERVED_ENVIRONMENT_VARIABLE_PREFIXES)]:
        assert f"`{key}`" in text, key
