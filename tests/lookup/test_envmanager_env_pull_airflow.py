"""`envmanager-env pull` against the real app: with a personal token, where the Workspace allows
local development, `pull --import` fills a fresh local Airflow whose `airflow connections get`
gives back every field as the Deployment resolves it (empty text stays empty text, unset stays
unset) and whose variables are equal; `pull --out` writes owner-only files; where the setting
is off, pull is refused with the reason and writes nothing."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from accounts.services import api_token_create, workspace_update
from envmanager.services import environment_object_create, link_create
from tests.airflow_support import airflow_env, airflow_python, ensure_airflow, make_metadata_db
from tests.airflow_support import run_airflow as airflow_cli
from tests.lookup.test_airflow_e2e import app_server  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pull-S3CRET-password"
ENV_SECRET = "pull-S3CRET-env"
WAREHOUSE = {
    "conn_type": "postgres",
    "description": "",
    "host": "db.internal",
    "schema": "",
    "login": "etl",
    "password": PASSWORD,
    "port": 5432,
    "extra": {"sslmode": "require", "nested": {"a": [1, 2]}},
}
MINIMAL = {"conn_type": "http", "host": "api.example.com"}
VARIABLES = {"batch_size": "500", "config": '{"retries": 3, "owner": "zoë"}', "empty": ""}
# Every field of a connection as Airflow's model holds it, read in the local Airflow.
READ = """
import json
from airflow.models import Connection, Variable
out = {"connections": {}, "variables": {}}
for conn_id in %(conns)r:
    c = Connection.get_connection_from_secrets(conn_id)
    out["connections"][conn_id] = {f: getattr(c, f) for f in
        ("conn_type", "description", "host", "schema", "login", "password", "port")}
    out["connections"][conn_id]["extra"] = c.extra_dejson if c.extra else c.extra
for key in %(variables)r:
    out["variables"][key] = Variable.get(key)
print(json.dumps(out))
"""


def make_environment(team) -> None:
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={**WAREHOUSE, "password": "workspace-pw", "host": "db.workspace"},
    )
    # The Deployment's overrides: the local Airflow gets what the Deployment resolves.
    link_create(
        user=team.operator,
        obj=conn,
        deployment=team.deployment,
        overrides={"password": PASSWORD, "host": "db.internal"},
    )
    for key, values, kind in (
        ("minimal", MINIMAL, "CONNECTION"),
        ("API_TOKEN", {"value": ENV_SECRET, "is_secret": True}, "ENVIRONMENT_VARIABLE"),
        *((key, {"value": value}, "AIRFLOW_VARIABLE") for key, value in VARIABLES.items()),
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


def pull(server: str, token: str, *args: str, env: dict | None = None, cwd: Path | None = None):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ENVMANAGER_", "AIRFLOW"))}
    base.update(env or {})
    base.update({"ENVMANAGER_URL": server, "ENVMANAGER_TOKEN": token})
    return subprocess.run(
        [sys.executable, "-m", "envmanager_secrets.env", "pull", *args],
        env=base,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.airflow
def test_pull_import_fills_a_fresh_local_airflow_field_for_field(
    team,
    app_server,  # noqa: F811 - the fixture
    tmp_path,
):
    make_environment(team)
    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    _, token = api_token_create(user=team.author, name="laptop")
    venv = ensure_airflow()
    fernet = Fernet.generate_key().decode()
    home = tmp_path / "home"
    home.mkdir()
    local = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": make_metadata_db(tmp_path, fernet_key=fernet),
        "AIRFLOW__CORE__FERNET_KEY": fernet,
    }
    out = tmp_path / "project"
    out.mkdir()
    result = pull(
        app_server,
        token,
        "--deployment",
        str(team.deployment.pk),
        "--import",
        "--airflow",
        str(venv / "bin" / "airflow"),
        "--out",
        str(out),
        env=airflow_env(home, local),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "2 connections, 3 Airflow variables" in output
    assert sorted(p.name for p in out.iterdir()) == [".env"]  # the rest went into Airflow
    assert stat.S_IMODE((out / ".env").stat().st_mode) == 0o600
    assert (out / ".env").read_text() == f"API_TOKEN='{ENV_SECRET}'\n"
    for secret in (PASSWORD, ENV_SECRET, token):
        assert secret not in output

    # What Airflow's own CLI shows of it.
    shown = json.loads(
        airflow_cli(["connections", "get", "warehouse", "-o", "json"], home, local).stdout
    )[0]
    assert {k: shown[k] for k in ("conn_type", "description", "host", "schema", "login")} == {
        k: WAREHOUSE[k] for k in ("conn_type", "description", "host", "schema", "login")
    }
    assert shown["password"] == PASSWORD
    # (It prints extra's values as text: the model read below compares extra itself.)
    # Every field, raw, as Airflow's model reads it back: '' is '' and unset is None.
    read = airflow_python(
        READ % {"conns": ["warehouse", "minimal"], "variables": list(VARIABLES)}, local, home
    )
    assert read.returncode == 0, read.stderr[-2000:]
    seen = json.loads(read.stdout.strip().splitlines()[-1])
    assert seen["connections"]["warehouse"] == WAREHOUSE
    assert seen["connections"]["minimal"] == {
        "conn_type": "http",
        "description": None,
        "host": "api.example.com",
        "schema": None,
        "login": None,
        "password": None,
        "port": None,
        "extra": None,
    }
    assert seen["variables"] == VARIABLES


def test_pull_out_writes_owner_only_files_and_is_refused_where_not_allowed(
    team,
    app_server,  # noqa: F811 - the fixture
    tmp_path,
):
    make_environment(team)
    _, token = api_token_create(user=team.author, name="laptop")
    out = tmp_path / "project"
    out.mkdir()
    refused = pull(app_server, token, "--deployment", str(team.deployment.pk), cwd=out)
    assert refused.returncode == 7
    assert "does not allow showing secrets" in refused.stderr
    assert "local development" in refused.stderr
    assert list(out.iterdir()) == []

    workspace_update(user=team.owner, workspace=team.workspace, local_development_secrets=True)
    done = pull(app_server, token, "--deployment", str(team.deployment.pk), cwd=out)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [".env", "connections.json", "variables.json"]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads((out / "connections.json").read_text())["warehouse"]["password"] == PASSWORD
    assert json.loads((out / "variables.json").read_text())["batch_size"] == 500
    for secret in (PASSWORD, ENV_SECRET, token):
        assert secret not in done.stdout + done.stderr

    missing = pull(app_server, token, "--deployment", "999999", cwd=out)
    assert missing.returncode == 7
    assert "Refused (HTTP 404)" in missing.stderr
