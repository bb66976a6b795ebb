"""End to end with real Apache Airflow: our app serves on a loopback port, Airflow reads
connections and variables through our secrets backend."""

import json
import threading
from urllib.parse import unquote_plus

import pytest
from cryptography.fernet import Fernet
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

from deployments.services import deployment_token_create, deployment_token_revoke
from envmanager.services import environment_object_create, environment_object_update, link_create
from envmanager.wsgi import application
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


# What the Deployment resolves for "warehouse" once its override is applied; Airflow gets the
# same connection imported into its own metastore as "ref-warehouse", to compare against.
RESOLVED = {**CONNECTION, "port": 6543, "extra": {**CONNECTION["extra"], "note": "prod"}}
# Only a type and a host: every other field empty, as Airflow has them for such a connection.
MINIMAL = {"conn_type": "http", "host": "api.example.com"}
VARIABLE = '{"retries": 3, "owner": "zoë"}'
# The fields of `airflow connections get -o json` that describe the connection (not its row).
SHOWN = ("conn_type", "description", "host", "schema", "login", "password", "port")
SHOWN += ("extra_dejson", "get_uri")


@pytest.fixture
def app_server(transactional_db):
    """`envmanager.wsgi.application`, the entry gunicorn serves (lookup fast path in front of
    Django), on a free loopback port in threads of this process."""
    server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(application)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def airflow(team, app_server, tmp_path):
    """Airflow configured with our backend for the team's production Deployment, on a freshly
    migrated SQLite metastore that holds the reference copies."""
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    fernet = Fernet.generate_key().decode()
    url = make_metadata_db(
        tmp_path,
        fernet_key=fernet,
        connections={"ref-warehouse": RESOLVED, "ref-minimal": MINIMAL},
    )
    env = {
        "AIRFLOW__SECRETS__BACKEND": "envmanager_secrets.EnvManagerSecretsBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
            {"base_url": app_server, "token": token, "cache_ttl": 0, "timeout": 5}
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

    def cli_get(conn_id):
        result = run_airflow(
            ["connections", "get", conn_id, "-o", "json"], tmp_path / "home", env, check=False
        )
        if result.returncode:
            return result
        shown = {k: v for k, v in json.loads(result.stdout)[0].items() if k in SHOWN}
        # Our store keeps the keys of extra sorted; their order is no part of their meaning.
        uri, _, extra = shown["get_uri"].partition("?__extra__=")
        shown["get_uri"] = (uri, json.loads(unquote_plus(extra)) if extra else None)
        return shown

    team.read, team.cli_get, team.env, team.home = read, cli_get, env, tmp_path / "home"
    return team


def make_objects(team):
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
        object_type="CONNECTION",
        key="minimal",
        values=MINIMAL,
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="config",
        values={"value": VARIABLE},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    return conn


def test_airflow_sdk_resolves_our_connections_and_variables_field_by_field(airflow):
    conn = make_objects(airflow)
    seen = airflow.read(["warehouse", "minimal", "missing"], ["config", "nothing"])
    assert seen["warehouse"] == RESOLVED
    assert seen["minimal"] == {
        "conn_type": "http",
        "host": "api.example.com",
        "login": None,
        "password": None,
        "schema": None,
        "port": None,
        "extra": {},
        "description": None,
    }
    assert seen["missing"] == "error: AirflowNotFoundException"
    assert seen["var:config"] == VARIABLE
    assert seen["var:nothing"].startswith("error")

    # A change arrives at the next lookup (the backend's cache is off here).
    environment_object_update(user=airflow.operator, obj=conn, values={"host": "moved.internal"})
    assert airflow.read(["warehouse"])["warehouse"]["host"] == "moved.internal"


def test_airflow_cli_shows_our_connections_as_it_shows_its_own(airflow):
    make_objects(airflow)
    ours, reference = airflow.cli_get("warehouse"), airflow.cli_get("ref-warehouse")
    assert ours == reference
    assert ours["password"] == CONNECTION["password"] and ours["port"] == "6543"
    assert airflow.cli_get("minimal") == airflow.cli_get("ref-minimal")
    missing = airflow.cli_get("missing")
    assert missing.returncode == 1 and "Connection not found" in missing.stderr
    variable = run_airflow(["variables", "get", "config"], airflow.home, airflow.env)
    assert variable.stdout.strip() == VARIABLE


FAILS = """
from airflow.sdk import Connection, Variable
for get, key in ((Connection.get, "warehouse"), (Variable.get, "config")):
    try:
        get(key)
    except Exception as exc:
        print(type(exc).__name__, "|", exc)
    else:
        print("returned")
"""


def test_a_server_error_fails_the_lookup_inside_airflow_instead_of_not_found(airflow):
    """Airflow swallows a backend's exceptions and tries its next source, so a server error
    would read as "not defined" (or as a stale copy in the metastore). Ours it re-raises."""
    make_objects(airflow)
    dead = {
        **airflow.env,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
            {"base_url": "http://127.0.0.1:9", "token": "emd_x", "cache_ttl": 0, "timeout": 1}
        ),
        # The same connection in Airflow's environment: a fall-through would find it.
        "AIRFLOW_CONN_WAREHOUSE": "postgres://stale@old-host/db",
    }
    result = airflow_python(FAILS, dead, airflow.home)
    lines = result.stdout.strip().splitlines()[-2:]
    assert len(lines) == 2 and all(
        line.startswith("EnvManagerBackendError | envmanager lookup GET") for line in lines
    ), result.stdout + result.stderr[-1500:]
    assert "ConnectionError" in lines[0]
    cli = run_airflow(["connections", "get", "warehouse", "-o", "json"], airflow.home, dead, False)
    assert cli.returncode != 0 and "old-host" not in cli.stdout
    assert "EnvManagerBackendError" in cli.stderr


def test_a_revoked_token_fails_loudly_inside_airflow(airflow):
    make_objects(airflow)
    assert airflow.read(["warehouse"])["warehouse"]["host"] == "db.internal"
    deployment_token_revoke(user=airflow.owner, token=airflow.deployment.tokens.get())
    result = airflow_python(FAILS, airflow.env, airflow.home)
    lines = result.stdout.strip().splitlines()[-2:]
    assert all("token rejected (HTTP 401)" in line for line in lines), result.stdout


TOP_LEVEL_DAG = """
from airflow.sdk import Variable, dag

OWNER = Variable.get("config", default="fallback")


@dag(schedule=None, tags=[OWNER[:20]])
def top_level_read():
    pass


top_level_read()
"""

PARSE = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=%(folder)r)
print(json.dumps({"dags": sorted(bag.dag_ids),
                  "errors": {k.rsplit("/", 1)[-1]: v for k, v in bag.import_errors.items()}}))
"""


def test_a_top_level_variable_get_with_envmanager_down_is_an_import_error(airflow, tmp_path):
    """What the README's propagation section says: the default of `Variable.get(key, default)`
    is for a missing key, not for a failed lookup, so a Dag file reading a variable at top level
    does not parse while envmanager is unreachable (and parses again once it answers)."""
    make_objects(airflow)
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "top_level_read.py").write_text(TOP_LEVEL_DAG)

    def parse(env):
        result = airflow_python(PARSE % {"folder": str(folder)}, env, airflow.home)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    up = parse(airflow.env)
    assert up == {"dags": ["top_level_read"], "errors": {}}

    dead = {
        **airflow.env,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
            {"base_url": "http://127.0.0.1:9", "token": "emd_x", "cache_ttl": 0, "timeout": 1}
        ),
    }
    down = parse(dead)
    assert down["dags"] == []
    assert list(down["errors"]) == ["top_level_read.py"]
    assert "EnvManagerBackendError" in down["errors"]["top_level_read.py"]
    assert "fallback" not in json.dumps(down)
