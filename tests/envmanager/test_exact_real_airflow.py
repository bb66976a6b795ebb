"""A migration changes nothing a Dag sees, field for field, in real Airflow 3.3: a metastore
seeded with every combination of unset (NULL), empty text and text, port NULL and a number,
extra NULL, `{}` and an object, variable descriptions NULL and ''. What Airflow resolves for
each before the migration (from its metastore) is what it resolves after it (through our
secrets backend, by `Connection.get_connection_from_secrets` and by the Task SDK's
`Connection.get`), every attribute and `extra_dejson` too. Rows no secrets backend can hand to
Airflow unchanged (port 0, empty extra, empty password) are refused with the reason and stay.
Undo puts every row back byte for byte."""

import json
import sqlite3

import pytest
from cryptography.fernet import Fernet

from deployments.services import deployment_token_create, deployment_update
from envmanager.models import MigrationItem, MigrationRun
from envmanager.selectors import deployment_resolved_environment
from envmanager.services.migration import migration_start, migration_undo
from tests.airflow_support import airflow_python, make_metadata_db
from tests.lookup.test_airflow_e2e import app_server  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.airflow, pytest.mark.django_db(transaction=True)]

FERNET_KEY = Fernet.generate_key().decode()
TEXT_FIELDS = ("description", "host", "schema", "login")

# Seeded by `airflow connections import`: a field left out is NULL, "" is empty text.
CONNECTIONS = {
    "all_unset": {"conn_type": "generic"},
    "all_empty": {**dict.fromkeys(TEXT_FIELDS, ""), "conn_type": "generic", "extra": "{}"},
    "all_text": {
        "conn_type": "postgres",
        "description": "d ✓",
        "host": "db.internal",
        "schema": "analytics",
        "login": "étl",
        "password": "p:a/s@s ü",
        "port": 5432,
        "extra": json.dumps({"sslmode": "require", "nested": {"a": [1, None, "x"]}}),
    },
    # Each text field empty on its own, the others set, and the reverse.
    **{
        f"only_{name}_empty": {
            **{other: "x" for other in TEXT_FIELDS},
            name: "",
            "conn_type": "http",
            "password": "pw",
        }
        for name in TEXT_FIELDS
    },
    **{
        f"only_{name}_unset": {
            **{other: "" for other in TEXT_FIELDS if other != name},
            "conn_type": "http",
            "extra": "{}",
        }
        for name in TEXT_FIELDS
    },
}
# Rows Airflow reads differently through any secrets backend: set afterwards by SQL, since
# Airflow's own import would not store them.
REFUSED = {
    "port_zero": ("port", 0, "port is 0"),
    "extra_empty": ("extra", "", "extra is empty text"),
    "password_empty": ("password", "", "password is empty text"),
}
VARIABLES = {
    "description_unset": "v1",
    "description_empty": {"value": "v2", "description": ""},
    "described": {"value": "v3", "description": "d"},
    "empty_value": {"value": "", "description": ""},
}

READ = r"""
import json, os
request = json.loads(os.environ["READ_REQUEST"])
from airflow.models.connection import Connection as ModelConnection
from airflow.models.variable import Variable as ModelVariable
ATTRS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra",
         "extra_dejson")

def attrs(conn):
    return {name: getattr(conn, name) for name in ATTRS}

def attempt(call):
    try:
        return call()
    except Exception as exc:
        return "error: " + type(exc).__name__

out = {"models": {}, "sdk": {}, "variables_models": {}, "variables_sdk": {}}
for conn_id in request["connections"]:
    out["models"][conn_id] = attempt(
        lambda: attrs(ModelConnection.get_connection_from_secrets(conn_id)))
for key in request["variables"]:
    out["variables_models"][key] = attempt(lambda: ModelVariable.get(key))
if request["sdk"]:
    from airflow.sdk import Connection, Variable
    for conn_id in request["connections"]:
        out["sdk"][conn_id] = attempt(lambda: attrs(Connection.get(conn_id)))
    for key in request["variables"]:
        out["variables_sdk"][key] = attempt(lambda: Variable.get(key))
print(json.dumps(out))
"""


def metastore_rows(path: str) -> dict[str, dict]:
    """Every row of both tables, every column as stored but the surrogate `id` (an undo
    inserts a row anew, and Airflow gives it its next id; nothing in Airflow shows it)."""
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        rows = {}
        for table, key in (("connection", "conn_id"), ("variable", "key")):
            for row in db.execute(f"SELECT * FROM {table}"):  # noqa: S608 (fixed names)
                rows[f"{table}:{row[key]}"] = {k: v for k, v in dict(row).items() if k != "id"}
        return rows


@pytest.fixture
def seeded(team, tmp_path, app_server):  # noqa: F811 (the fixture imported above)
    url = make_metadata_db(
        tmp_path,
        fernet_key=FERNET_KEY,
        connections={
            **CONNECTIONS,
            **{conn_id: {"conn_type": "http", "host": "h"} for conn_id in REFUSED},
        },
        variables=VARIABLES,
    )
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        for conn_id, (column, value, _) in REFUSED.items():
            db.execute(
                f"UPDATE connection SET {column} = ? WHERE conn_id = ?",  # noqa: S608
                (value, conn_id),
            )
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=FERNET_KEY
    )
    team.deployment.refresh_from_db()
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    metastore_only = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    metastore_only["AIRFLOW__CORE__FERNET_KEY"] = FERNET_KEY
    with_backend = {
        **metastore_only,
        "AIRFLOW__SECRETS__BACKEND": "envmanager_secrets.EnvManagerSecretsBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
            {"base_url": app_server, "token": token, "cache_ttl": 0, "timeout": 5}
        ),
    }

    def read(env: dict, *, sdk: bool) -> dict:
        request = {
            "connections": [*CONNECTIONS, *REFUSED],
            "variables": list(VARIABLES),
            "sdk": sdk,
        }
        result = airflow_python(
            READ, {**env, "READ_REQUEST": json.dumps(request)}, tmp_path / "home"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    team.path = path
    team.read_metastore = lambda: read(metastore_only, sdk=False)
    team.read_through_us = lambda: read(with_backend, sdk=True)
    return team


def migrate(team, object_type: str, keys: list[str]) -> MigrationRun:
    run = migration_start(
        user=team.owner, deployment=team.deployment, object_type=object_type, object_keys=keys
    )
    run.refresh_from_db()
    return run


def test_airflow_resolves_every_field_the_same_before_and_after_and_undo_puts_rows_back(
    seeded,
):
    rows_before = metastore_rows(seeded.path)
    before = seeded.read_metastore()
    # The seed is what it says: NULL, '' and '{}' as Airflow shows them.
    assert before["models"]["all_unset"]["schema"] is None
    assert before["models"]["all_unset"]["extra"] is None
    assert before["models"]["all_empty"]["schema"] == ""
    assert before["models"]["all_empty"]["extra"] == "{}"
    assert before["models"]["port_zero"]["port"] == 0
    assert rows_before["variable:description_empty"]["description"] == ""
    assert rows_before["variable:description_unset"]["description"] is None

    connections = migrate(seeded, "CONNECTION", [*CONNECTIONS, *REFUSED])
    variables = migrate(seeded, "AIRFLOW_VARIABLE", list(VARIABLES))
    assert variables.status == MigrationRun.Status.SUCCEEDED
    states = dict(connections.items.values_list("object_key", "state"))
    assert states == {
        **dict.fromkeys(CONNECTIONS, MigrationItem.State.DELETED),
        **dict.fromkeys(REFUSED, MigrationItem.State.FAILED),
    }
    for conn_id, (_, _, why) in REFUSED.items():
        assert why in connections.items.get(object_key=conn_id).reason
    rows_between = metastore_rows(seeded.path)
    assert set(rows_between) == {f"connection:{conn_id}" for conn_id in REFUSED}
    assert all(rows_between[k] == rows_before[k] for k in rows_between)  # refused: untouched

    after = seeded.read_through_us()
    for conn_id in CONNECTIONS:
        assert after["models"][conn_id] == before["models"][conn_id], conn_id
        assert after["sdk"][conn_id] == before["models"][conn_id], conn_id
    for key in VARIABLES:
        assert after["variables_models"][key] == before["variables_models"][key], key
        assert after["variables_sdk"][key] == before["variables_models"][key], key
    # Descriptions of variables Airflow does not read through a backend: stored as they were.
    stored = {
        key: item.values["description"]
        for key, item in deployment_resolved_environment(seeded.deployment)[
            "AIRFLOW_VARIABLE"
        ].items()
    }
    assert stored == {key: rows_before[f"variable:{key}"]["description"] for key in VARIABLES}

    for run in (connections, variables):
        migration_undo(user=seeded.owner, run=run)
        run.refresh_from_db()
        assert run.status == MigrationRun.Status.UNDONE
    assert metastore_rows(seeded.path) == rows_before
    assert seeded.read_metastore() == before
