"""`envmanager-env exec -- airflow dags test …` with only ENVMANAGER_URL and ENVMANAGER_TOKEN:
a real Dag run whose task sees the Deployment's environment variables (an override applied, a
secret one), a connection and a variable, and whose whole output holds no secret."""

import hashlib
import json
import subprocess

import pytest
from cryptography.fernet import Fernet

from deployments.services import deployment_token_create
from envmanager.services import environment_object_create, link_create
from tests.airflow_support import airflow_env, ensure_airflow, make_metadata_db
from tests.lookup.test_airflow_e2e import app_server  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.airflow, pytest.mark.django_db(transaction=True)]

SECRET_ENV = "env-S3CRET-token-value"
CONN_PASSWORD = "conn-S3CRET-password"
VARIABLE = "var-plain-value"

# The task writes what it saw to a file, secrets as SHA-256 only, and prints nothing of them.
DAG = """
import hashlib, json, os
from datetime import datetime
from airflow.sdk import Connection, Variable, dag, task

def digest(value):
    return hashlib.sha256(value.encode()).hexdigest()

@dag(dag_id="envcheck", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def envcheck():
    @task
    def look():
        conn = Connection.get("warehouse")
        seen = {
            "REGION": os.environ.get("REGION"),
            "API_TOKEN": digest(os.environ.get("API_TOKEN", "")),
            "conn_host": conn.host,
            "conn_password": digest(conn.password or ""),
            "variable": Variable.get("greeting"),
        }
        with open(%(out)r, "w") as f:
            json.dump(seen, f)

    look()

envcheck()
"""


def test_a_dag_run_through_the_launcher_sees_the_whole_environment(
    team,
    app_server,  # noqa: F811 - the fixture
    tmp_path,
):
    region = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="REGION",
        values={"value": "us-east-1"},
    )
    link_create(
        user=team.operator, obj=region, deployment=team.deployment, overrides={"value": "eu-west-1"}
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="API_TOKEN",
        values={"value": SECRET_ENV, "is_secret": True},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "db.internal", "password": CONN_PASSWORD},
    )
    link_create(
        user=team.operator, obj=conn, deployment=team.deployment, overrides={"host": "prod-db"}
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="greeting",
        values={"value": VARIABLE},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="run")

    dags = tmp_path / "dags"
    dags.mkdir()
    out = tmp_path / "seen.json"
    (dags / "envcheck.py").write_text(DAG % {"out": str(out)})
    fernet = Fernet.generate_key().decode()
    metastore = make_metadata_db(tmp_path, fernet_key=fernet)
    venv = ensure_airflow()
    (tmp_path / "home").mkdir()
    env = airflow_env(
        tmp_path / "home",
        {
            # Only the two settings of ours; the rest is where this Airflow keeps its files.
            "ENVMANAGER_URL": app_server,
            "ENVMANAGER_TOKEN": token,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metastore,
            "AIRFLOW__CORE__FERNET_KEY": fernet,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        },
    )
    assert not any(k.startswith("AIRFLOW__SECRETS") for k in env)
    result = subprocess.run(
        [str(venv / "bin" / "envmanager-env"), "exec", "--"]
        + [str(venv / "bin" / "airflow"), "dags", "test", "envcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    seen = json.loads(out.read_text())
    assert seen == {
        "REGION": "eu-west-1",  # the Deployment's override, not the Workspace value
        "API_TOKEN": hashlib.sha256(SECRET_ENV.encode()).hexdigest(),
        "conn_host": "prod-db",
        "conn_password": hashlib.sha256(CONN_PASSWORD.encode()).hexdigest(),
        "variable": VARIABLE,
    }
    for secret in (SECRET_ENV, CONN_PASSWORD, token):
        assert secret not in output
