"""End to end with real Apache Airflow: our app serves on a loopback port, Airflow reads
connections and variables through our secrets backend."""

import json

import pytest
from cryptography.fernet import Fernet

from deployments.services import deployment_token_create
from envmanager.services import environment_object_create, environment_object_update, link_create
from tests.airflow_support import airflow_python, make_metadata_db, run_airflow

pytestmark = [pytest.mark.airflow, pytest.mark.django_db(transaction=True)]

CONNECTION = {
    "conn_type": "postgres",
    "host": "db.internal",
    "login": "étl",
    "password": "p:a/s@s?w#o%rd ünï",
    "schema": "analytics",
    "port": None,
    "extra": {"sslmode": "require", "nested": {"a": [1, 2]}, "note": "naïve"},
    "description": "The warehouse",
}

READ = """
import json
from airflow.sdk import Connection, Variable
out = {}
for conn_id in %(conns)r:
    try:
        c = Connection.get(conn_id)
        out[conn_id] = {"conn_type": c.conn_type, "host": c.host, "login": c.login,
                        "password": c.password, "schema": c.schema, "port": c.port,
                        "extra": c.extra_dejson, "description": c.description}
    except Exception as exc:
        out[conn_id] = "error: " + type(exc).__name__
for key in %(variables)r:
    try:
        out["var:" + key] = Variable.get(key)
    except Exception as exc:
        out["var:" + key] = "error: " + type(exc).__name__
print(json.dumps(out))
"""


@pytest.fixture
def airflow(team, live_server, tmp_path):
    """Airflow configured with our backend for the team's production Deployment."""
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    fernet = Fernet.generate_key().decode()
    url = make_metadata_db(tmp_path, fernet_key=fernet)
    env = {
        "AIRFLOW__SECRETS__BACKEND": "envmanager_secrets.EnvManagerSecretsBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
            {"base_url": live_server.url, "token": token, "cache_ttl": 0, "timeout": 5}
        ),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__CORE__FERNET_KEY": fernet,
    }

    def read(conns=(), variables=()):
        result = airflow_python(
            READ % {"conns": list(conns), "variables": list(variables)}, env, tmp_path / "home"
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    team.read, team.env, team.home = read, env, tmp_path / "home"
    return team


def test_airflow_resolves_our_connections_and_variables_field_by_field(airflow):
    team = airflow
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values=CONNECTION,
    )
    link_create(
        user=team.operator,
        obj=conn,
        deployment=team.deployment,
        overrides={"port": 6543, "extra.note": "prod"},
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="config",
        values={"value": '{"retries": 3}'},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    seen = team.read(["warehouse", "missing"], ["config", "nothing"])
    assert seen["warehouse"] == {
        **CONNECTION,
        "port": 6543,
        "extra": {**CONNECTION["extra"], "note": "prod"},
    }
    assert seen["missing"].startswith("error")
    assert seen["var:config"] == '{"retries": 3}'
    assert seen["var:nothing"].startswith("error")

    # The CLI path (backend, then env vars, then the metastore) sees the same.
    cli = run_airflow(["connections", "get", "warehouse", "-o", "json"], team.home, team.env)
    shown = json.loads(cli.stdout)[0]
    assert (shown["host"], shown["login"], shown["password"], shown["port"]) == (
        "db.internal",
        "étl",
        CONNECTION["password"],
        "6543",
    )
    variable = run_airflow(["variables", "get", "config"], team.home, team.env)
    assert variable.stdout.strip() == '{"retries": 3}'

    # A change arrives at the next lookup.
    environment_object_update(user=team.operator, obj=conn, values={"host": "moved.internal"})
    assert team.read(["warehouse"])["warehouse"]["host"] == "moved.internal"


def test_a_server_error_is_not_reported_as_not_found(airflow, tmp_path):
    team = airflow
    # Built directly (not through Airflow's config), pointed at a port nothing listens on.
    env = {k: v for k, v in team.env.items() if not k.startswith("AIRFLOW__SECRETS")}
    code = (
        "from envmanager_secrets import EnvManagerSecretsBackend, EnvManagerBackendError\n"
        "b = EnvManagerSecretsBackend(base_url='http://127.0.0.1:9', token='emd_x', timeout=1)\n"
        "try:\n    b.get_conn_value('warehouse')\nexcept EnvManagerBackendError:\n"
        "    print('raised')\nelse:\n    print('returned')\n"
    )
    result = airflow_python(code, env, tmp_path / "home2")
    assert result.stdout.split() == ["raised"], result.stderr[-1500:]
