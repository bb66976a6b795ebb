"""Airflow 3.2+ multi-team: with `[core] multi_team = True`, Airflow passes `team_name` to a
secrets backend that accepts it. Ours accepts it (so Airflow forwards it rather than leaving it
out) and still resolves the Deployment's connection and variable from envmanager: the metastore
of this Airflow is empty, so the values can only have come from the backend."""

import hashlib
import json

import pytest
from cryptography.fernet import Fernet

from deployments.services import deployment_token_create
from envmanager.services import environment_object_create
from tests.airflow_support import ROOT, airflow_python, make_metadata_db
from tests.lookup.test_airflow_e2e import app_server  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.airflow, pytest.mark.django_db(transaction=True)]

PASSWORD = "team-S3CRET-password"
READ = """
import hashlib, json
from airflow._shared.secrets_backend.base import _accepts_team_name
from airflow.configuration import conf, ensure_secrets_loaded
from airflow.models import Connection, Variable

backend = ensure_secrets_loaded()[0]
conn = Connection.get_connection_from_secrets("warehouse", team_name="team_a")
print(json.dumps({
    "multi_team": conf.getboolean("core", "multi_team"),
    "backend": type(backend).__name__,
    "forwarded": _accepts_team_name(backend.get_conn_value)
    and _accepts_team_name(backend.get_variable),
    "host": conn.host,
    "password": hashlib.sha256(conn.password.encode()).hexdigest(),
    "variable": Variable.get("greeting", team_name="team_a"),
}))
"""


def test_a_multi_team_airflow_passes_team_name_and_still_resolves(
    team,
    app_server,  # noqa: F811 - the fixture
    tmp_path,
):
    for kind, key, values in (
        ("CONNECTION", "warehouse", {"conn_type": "postgres", "host": "db", "password": PASSWORD}),
        ("AIRFLOW_VARIABLE", "greeting", {"value": "hello"}),
    ):
        environment_object_create(
            user=team.operator,
            workspace=team.workspace,
            object_type=kind,
            key=key,
            values=values,
            scope="DEPLOYMENT",
            deployment=team.deployment,
        )
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="teams")
    fernet = Fernet.generate_key().decode()
    env = {
        "AIRFLOW__CORE__MULTI_TEAM": "True",
        "AIRFLOW__SECRETS__BACKEND": "envmanager_secrets.EnvManagerSecretsBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"base_url": app_server, "token": token}),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": make_metadata_db(tmp_path, fernet_key=fernet),
        "AIRFLOW__CORE__FERNET_KEY": fernet,
        # This checkout's backend, whichever checkout the Airflow venv was built from.
        "PYTHONPATH": str(ROOT / "secrets-backend"),
    }
    result = airflow_python(READ, env, tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "multi_team": True,
        "backend": "EnvManagerSecretsBackend",
        "forwarded": True,
        "host": "db",
        "password": hashlib.sha256(PASSWORD.encode()).hexdigest(),
        "variable": "hello",
    }
    assert PASSWORD not in result.stdout + result.stderr
