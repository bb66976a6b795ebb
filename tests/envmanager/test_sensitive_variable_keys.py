"""One rule for variables whose key Airflow treats as sensitive: they are stored as secrets
whether they are migrated from Airflow or imported from an Airflow variables file, and an
import never makes a secret variable plain."""

import json

import pytest
from cryptography.fernet import Fernet

from deployments.services import deployment_update
from envmanager.models import EnvironmentObject
from envmanager.object_types import AIRFLOW_SENSITIVE_NAMES, variable_key_looks_secret
from envmanager.services import environment_object_create
from envmanager.services.airflow_files import airflow_file_import, airflow_file_preview
from tests.airflow_support import airflow_python

KEYS = [
    "imp_secret_token",
    "API_KEY",
    "partner-api-key",  # Airflow reads "-" and "." as "_"
    "slack.webhook-url",
    "sentry_dsn",
    "http_proxy",
    "bearer",
    "env",
    "retention_days",
    "feature_flags",
    "apiKeyless",
]


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("imp_secret_token", True),
        ("partner-api-key", True),
        ("slack.webhook-url", True),
        ("Sentry_DSN", True),
        ("env", False),
        ("retention_days", False),
    ],
)
def test_variable_key_looks_secret_as_airflow_decides(key, secret):
    assert variable_key_looks_secret(key) is secret


@pytest.mark.airflow
def test_the_sensitive_names_and_the_rule_are_airflows_own():
    code = (
        "import json, airflow.settings\n"
        "from airflow._shared.secrets_masker import DEFAULT_SENSITIVE_FIELDS as names\n"
        "from airflow._shared.secrets_masker import should_hide_value_for_key as hide\n"
        f"print(json.dumps([sorted(names), [hide(k) for k in {KEYS!r}]]))\n"
    )
    result = airflow_python(code, {})
    assert result.returncode == 0, result.stderr[-2000:]
    names, hidden = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(AIRFLOW_SENSITIVE_NAMES) == names
    assert [variable_key_looks_secret(k) for k in KEYS] == hidden


def variables_file(**values) -> bytes:
    return json.dumps(values).encode()


def import_variables(team, content, **options):
    return airflow_file_import(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        filename="variables.json",
        content=content,
        **options,
    )


def workspace_variable(team, key: str, **values) -> None:
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key=key,
        values=values,
    )


def stored(key: str) -> dict:
    return EnvironmentObject.objects.get(object_type="AIRFLOW_VARIABLE", key=key).values


def test_an_imported_variable_with_a_sensitive_key_is_secret_and_masked(team, api):
    import_variables(team, variables_file(imp_secret_token="tok-9f2e1", env="production"))
    assert stored("imp_secret_token")["is_secret"] is True
    assert stored("env")["is_secret"] is False
    listed = api.as_user(team.author).get(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects",
        {"objectType": "AIRFLOW_VARIABLE"},
    )
    assert listed.status_code == 200
    assert "tok-9f2e1" not in listed.content.decode()
    assert "production" in listed.content.decode()


def test_a_variable_imported_into_a_deployment_follows_the_same_rule(team):
    import_variables(team, variables_file(partner_api_key="pk-live-1"), deployment=team.deployment)
    obj = EnvironmentObject.objects.get(key="partner_api_key")
    assert (obj.scope, obj.values["is_secret"]) == ("DEPLOYMENT", True)


def test_an_import_never_makes_a_secret_variable_plain(team):
    workspace_variable(team, "partner_code", value="old-code", is_secret=True)
    same = variables_file(partner_code="old-code")
    rows = airflow_file_preview(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        filename="variables.json",
        content=same,
    )
    assert [(r.action, r.reason) for r in rows] == [("SKIP", "Unchanged.")]
    rows = import_variables(team, variables_file(partner_code="new-code"), overwrite=True)
    assert [r.action for r in rows] == ["UPDATE"]
    assert stored("partner_code") == {"value": "new-code", "description": None, "is_secret": True}


def test_updating_a_plain_variable_with_a_sensitive_key_makes_it_secret(team):
    workspace_variable(team, "imp_secret_token", value="old")
    import_variables(team, variables_file(imp_secret_token="new"), overwrite=True)
    assert stored("imp_secret_token") == {"value": "new", "description": None, "is_secret": True}


@pytest.mark.airflow
def test_a_migrated_variable_follows_the_same_rule(
    team, tmp_path, django_capture_on_commit_callbacks
):
    from envmanager.services.migration import migration_start
    from tests.airflow_support import make_metadata_db

    key = Fernet.generate_key().decode()
    variables = {"partner-api-key": "pk-1", "sentry_dsn": "https://k@sentry/1", "env": "prod"}
    url = make_metadata_db(tmp_path, fernet_key=key, variables=variables)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=key
    )
    with django_capture_on_commit_callbacks(execute=True):
        migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="AIRFLOW_VARIABLE",
            object_keys=list(variables),
        )
    assert {k: stored(k)["is_secret"] for k in variables} == {
        "partner-api-key": True,
        "sentry_dsn": True,
        "env": False,
    }
