"""Airflow's own file formats, both ways, against real Apache Airflow 3.3.

Files written by `airflow connections export` (JSON, YAML, .env with URIs or JSON lines) and
`airflow variables export` import into us with every field equal to what Airflow's metastore
holds; files we export import into Airflow (`airflow connections import`, `airflow variables
import`) with every field equal to what we hold. Where a format itself cannot carry a value, the
test says so and asserts what Airflow does.

Our store keeps no difference between an empty text field and a missing one, so Airflow's NULL
and our "" compare equal (`as_ours`); everything else is compared exactly.
"""

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from accounts.services import workspace_create
from envmanager.models import EnvironmentObject
from envmanager.services import environment_object_create
from envmanager.services.airflow_files import airflow_file_export, airflow_file_import
from tests.airflow_support import airflow_python, make_metadata_db, run_airflow

pytestmark = pytest.mark.airflow

FERNET_KEY = Fernet.generate_key().decode()
TRICKY_PASSWORD = "p:a/s@s?w#o%rd ünï 日本"

# Airflow's side: added with `airflow connections add --conn-uri` ...
URI_ADDED = (
    "mysql://us%40er:p%3Aa%2Fs%40s%3Fw%23o%25rd@db.example.com:3306/my%2Fdb"
    "?charset=utf8mb4&flag=true&retries=5"
)
# ... with `airflow connections add --conn-json` ...
JSON_ADDED = {
    "conn_type": "google_cloud_platform",
    "description": "Analytics ✓\nsecond line",
    "host": "https://api.example.com/v1",
    "login": "zoë",
    "password": TRICKY_PASSWORD,
    "schema": "",
    "port": 443,
    "extra": {"nested": {"a": [1, 2.5], "b": None, "c": {"d": True}}, "scope": "read"},
}
# ... and with `airflow connections import`.
IMPORTED = {
    "warehouse": {
        "conn_type": "postgres",
        "description": "Main warehouse",
        "host": "DB.Internal.example.com",
        "login": "etl",
        "password": "p:a/s@s?w#o%rd",
        "schema": "analytics",
        "port": 5432,
        # Only text values, one of which reads as JSON: see the URI test below.
        "extra": {"sslmode": "require", "options": "-c search_path=dwh&x=1", "pool": "10"},
    },
    "bare": {"conn_type": "http"},
    "port_only": {"conn_type": "generic", "port": 8080},
    "empty_strings": {"conn_type": "ftp", "host": "", "login": "anonymous", "password": ""},
    "same_protocol": {"conn_type": "http", "host": "http://Internal.example/Path", "port": 81},
    "unicode_extra": {
        "conn_type": "http",
        "host": "api.example.com",
        "extra": {"note": "naïve ☃", "list": [1, "two", None], "empty": "", "t": {"u": {}}},
    },
}
VARIABLES_IMPORTED = {
    "env": "production",
    "compact_json": '{"retries": 3, "targets": ["a", "b"], "none": null}',
    "structured": {"a": [1, 2], "b": {"c": "zoë"}},
    "json_string": '"quoted"',
    "number_text": "3.10",
    "unicode": "zoë ☃ 日本語",
    "described": {"value": "v1", "description": "a described variable"},
    "value_key": '{"value": 1}',
}
MULTI_LINE = "line one\nline two\n\ttabbed  \n"

# Our side: the same kinds of values, as we hold them.
OURS = {
    "warehouse": {
        "conn_type": "postgres",
        "description": "Main warehouse",
        "host": "DB.Internal.example.com",
        "schema": "analytics",
        "login": "étl",
        "password": TRICKY_PASSWORD,
        "port": 5432,
        "extra": {"sslmode": "require", "pool": "10", "ssl": "true", "none": "null"},
    },
    "flat_extra": {
        "conn_type": "postgres",
        "description": "",
        "host": "db",
        "schema": "my/db",
        "login": "us@er:x",
        "password": ":@",
        "port": None,
        "extra": {"application_name": "env manager & co=1 +", "empty": ""},
    },
    "api": {
        "conn_type": "google_cloud_platform",
        "description": "Analytics ✓\nsecond line",
        "host": "https://api.example.com/v1",
        "schema": "",
        "login": "zoë",
        "password": "se/cret+= ",
        "port": 443,
        "extra": {"nested": {"a": [1, 2.5], "b": None}, "flag": True, "n": 3},
    },
    "same_protocol": {
        **dict.fromkeys(("description", "schema", "login", "password"), ""),
        "conn_type": "http",
        "host": "http://Internal.example/Path",
        "port": 81,
        "extra": {},
    },
    "bare": {
        **dict.fromkeys(("description", "host", "schema", "login", "password"), ""),
        "conn_type": "generic",
        "port": None,
        "extra": {},
    },
    "port_only": {
        **dict.fromkeys(("description", "host", "schema", "login", "password"), ""),
        "conn_type": "generic",
        "port": 8080,
        "extra": {},
    },
    "unset": {
        **dict.fromkeys(("description", "host", "schema", "login", "password", "extra")),
        "conn_type": "generic",
        "port": None,
    },
}
OUR_VARIABLES = {
    "env": {"value": "production", "description": ""},
    "undescribed": {"value": "no description", "description": None},
    "compact_json": {"value": '{"retries": 3, "targets": ["a", "b"]}', "description": ""},
    "indented_json": {
        "value": '{\n  "a": [\n    1\n  ],\n  "b": "zo\\u00eb"\n}',
        "description": "as Airflow stores JSON",
    },
    "unsorted_json": {"value": '{\n  "b": 1,\n  "a": 2\n}', "description": ""},
    "unicode_json": {"value": '{\n  "a": "zoë"\n}', "description": ""},
    "json_string": {"value": '"quoted"', "description": ""},
    "number_text": {"value": "3.10", "description": ""},
    "number": {"value": "42", "description": ""},
    "value_key": {"value": '{"value": 1}', "description": ""},
    "multi_line": {"value": MULTI_LINE, "description": "multi ✓"},
    "secret": {"value": "s3cr3t:/@?#%", "description": "", "is_secret": True},
}

READ = r"""
import json, os
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from airflow.models import Connection, Variable
from airflow.secrets.environment_variables import EnvironmentVariablesBackend

def fields(c):
    return {"conn_type": c.conn_type, "description": c.description, "host": c.host,
            "login": c.login, "password": c.password, "schema": c.schema, "port": c.port,
            "extra": json.loads(c.extra) if c.extra else None}

request = json.loads(os.environ["READ_REQUEST"])
out = {}
for name, url in request["metastores"].items():
    with Session(create_engine(url)) as session:
        conns = session.scalars(select(Connection)).all()
        out[name] = {
            "connections": {c.conn_id: fields(c) for c in conns},
            # What Airflow reads back from the URI its own export writes.
            "own_uri": {
                c.conn_id: fields(Connection(conn_id=c.conn_id, uri=c.get_uri())) for c in conns
            },
            "variables": {
                v.key: {"value": v.val, "description": v.description}
                for v in session.scalars(select(Variable))
            },
        }
backend = EnvironmentVariablesBackend()
out["env"] = {conn_id: fields(backend.get_connection(conn_id)) for conn_id in request["env"]}
print(json.dumps(out))
"""


def airflow_env(url: str) -> dict:
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url, "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY}


def read_airflow(tmp_path: Path, metastores: dict[str, str], env_lines: str = "") -> dict:
    """Every connection and variable of each metastore as Airflow's models read them, and the
    connections Airflow reads from `AIRFLOW_CONN_*` variables set to the lines of a .env. (The
    models rather than `airflow connections get -o json`, which prints port and extra values as
    text: 443 as "443", true as "True".)"""
    env = airflow_env(next(iter(metastores.values())))
    conn_ids = []
    for line in env_lines.splitlines():
        conn_id, _, value = line.partition("=")
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        conn_ids.append(conn_id)
    env["READ_REQUEST"] = json.dumps({"metastores": metastores, "env": conn_ids})
    result = airflow_python(READ, env, tmp_path / "read-home")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def in_parallel(*calls):
    """Airflow CLI calls that touch different files, at once (each takes seconds to start)."""
    with ThreadPoolExecutor(max_workers=min(len(calls), os.cpu_count() or 2)) as pool:
        return [f.result() for f in [pool.submit(call) for call in calls]]


def as_ours(conn: dict) -> dict:
    """Airflow's fields as we hold them: raw, NULL as None and empty text as empty text (an
    extra of empty text is no extra, as Airflow reads one from a secrets backend)."""
    return {
        "conn_type": conn["conn_type"] or "",
        "description": conn["description"],
        "host": conn["host"],
        "schema": conn["schema"],
        "login": conn["login"],
        "password": conn["password"],
        "port": conn["port"],
        "extra": conn["extra"],
    }


def stored(workspace, object_type: str) -> dict[str, dict]:
    objects = EnvironmentObject.objects.filter(workspace=workspace, object_type=object_type)
    return {o.key: o.values for o in objects}


def import_file(team, path: Path, object_type: str = "CONNECTION") -> dict[str, dict]:
    """The file imported through our service into a Workspace of its own."""
    workspace = workspace_create(user=team.owner, name=f"From {path.parent.name}/{path.name}")
    rows = airflow_file_import(
        user=team.owner,
        workspace=workspace,
        object_type=object_type,
        filename=path.name,
        content=path.read_bytes(),
    )
    assert {row.action for row in rows} == {"CREATE"}, [(r.key, r.reason) for r in rows]
    return stored(workspace, object_type)


def test_files_airflow_exports_import_into_us_with_every_field_equal(team, tmp_path):
    url = make_metadata_db(
        tmp_path, fernet_key=FERNET_KEY, connections=IMPORTED, variables=VARIABLES_IMPORTED
    )
    env, home = airflow_env(url), tmp_path / "home"
    add = ["connections", "add"]
    run_airflow(
        [*add, "uri_added", "--conn-uri", URI_ADDED, "--conn-description", "by URI"], home, env
    )
    run_airflow([*add, "json_added", "--conn-json", json.dumps(JSON_ADDED)], home, env)
    run_airflow(["variables", "set", "multi_line", MULTI_LINE, "--description", "ml ✓"], home, env)

    files = {
        "json": tmp_path / "connections.json",
        "yaml": tmp_path / "connections.yaml",
        "uri": tmp_path / "uri" / "connections.env",
        "json_lines": tmp_path / "json-lines" / "connections.env",
        "variables": tmp_path / "variables.json",
    }
    files["uri"].parent.mkdir()
    files["json_lines"].parent.mkdir()
    export = ["connections", "export"]
    serialization = ["--serialization-format", "json"]
    in_parallel(
        lambda: run_airflow([*export, str(files["json"])], home, env),
        lambda: run_airflow([*export, str(files["yaml"])], home, env),
        lambda: run_airflow([*export, str(files["uri"])], home, env),
        lambda: run_airflow([*export, str(files["json_lines"]), *serialization], home, env),
        lambda: run_airflow(["variables", "export", str(files["variables"])], home, env),
    )
    airflow = read_airflow(tmp_path, {"db": url})["db"]
    truth = {conn_id: as_ours(conn) for conn_id, conn in airflow["connections"].items()}
    assert set(truth) == {*IMPORTED, "uri_added", "json_added"}
    assert truth["json_added"]["password"] == TRICKY_PASSWORD  # seeded as meant
    assert truth["uri_added"]["extra"] == {"charset": "utf8mb4", "flag": True, "retries": 5}

    assert import_file(team, files["json"]) == truth
    assert import_file(team, files["json_lines"]) == truth
    workspace = workspace_create(user=team.owner, name="From YAML, by the command")
    call_command(
        "airflow_file",
        "import",
        "connections",
        str(files["yaml"]),
        f"--workspace={workspace.pk}",
        f"--as={team.owner.email}",
        "--apply",
        stdout=io.StringIO(),
    )
    assert stored(workspace, "CONNECTION") == truth

    # A URI holds no description, and Airflow's own URI loses more: it writes the host as it is
    # and reads it back lowercased, and writes text extras as query parameters that it reads
    # back as JSON ("10" becomes 10). We read the file exactly as Airflow reads it.
    from_uri = import_file(team, files["uri"])
    assert from_uri == {conn_id: as_ours(c) for conn_id, c in airflow["own_uri"].items()}
    assert from_uri["warehouse"] == {
        **truth["warehouse"],
        "description": None,
        "host": "db.internal.example.com",
        "extra": {**truth["warehouse"]["extra"], "pool": 10},
    }

    variables = import_file(team, files["variables"], "AIRFLOW_VARIABLE")
    metastore = airflow["variables"]
    assert set(variables) == set(metastore) == {*VARIABLES_IMPORTED, "multi_line"}
    for key, held in metastore.items():
        value = variables[key]["value"]
        assert variables[key]["description"] == held["description"], key
        # Airflow's export writes a value that parses as JSON (other than a JSON string)
        # parsed, with its keys sorted, and its import stores it again as
        # json.dumps(value, indent=2): formatting and key order are not kept, by Airflow's own
        # import either. "3.10" comes back as 3.1, as in Airflow.
        if key in ("compact_json", "value_key", "number_text"):
            reimported = json.dumps(json.loads(held["value"]), indent=2, sort_keys=True)
            assert value == reimported, key
        else:
            assert value == held["value"], key
    assert json.loads(variables["compact_json"]["value"]) == json.loads(
        VARIABLES_IMPORTED["compact_json"]
    )
    assert variables["number_text"]["value"] == "3.1"
    assert variables["multi_line"] == {
        "value": MULTI_LINE,
        "description": "ml ✓",
        "is_secret": False,
    }
    assert variables["json_string"]["value"] == '"quoted"'


def test_files_we_export_import_into_airflow_with_every_field_equal(team, tmp_path):
    for key, values in OURS.items():
        environment_object_create(
            user=team.operator,
            workspace=team.workspace,
            object_type="CONNECTION",
            key=key,
            values=values,
        )
    for key, values in OUR_VARIABLES.items():
        environment_object_create(
            user=team.operator,
            workspace=team.workspace,
            object_type="AIRFLOW_VARIABLE",
            key=key,
            values=values,
        )
    assert stored(team.workspace, "CONNECTION") == OURS

    def export(object_type: str, file_format: str, serialization: str = "uri") -> str:
        return airflow_file_export(
            user=team.operator,
            workspace=team.workspace,
            object_type=object_type,
            file_format=file_format,
            serialization=serialization,
        )

    files = {
        "json": tmp_path / "json" / "connections.json",
        "yaml": tmp_path / "yaml" / "connections.yaml",
        "uri": tmp_path / "uri" / "connections.env",
    }
    for name, path in files.items():
        path.parent.mkdir()
        path.write_text(export("CONNECTION", path.suffix[1:]), encoding="utf-8")
    variables_file = tmp_path / "json" / "variables.json"
    call_command(
        "airflow_file",
        "export",
        "variables",
        str(variables_file),
        f"--workspace={team.workspace.pk}",
        f"--as={team.operator.email}",
        stdout=io.StringIO(),
    )
    json_lines = export("CONNECTION", "env", serialization="json")

    metastores = {
        name: make_metadata_db(path.parent, fernet_key=FERNET_KEY) for name, path in files.items()
    }

    def import_into(name: str, *commands: list[str]):
        home = files[name].parent / "home"
        for command in commands:
            result = run_airflow(command, home, airflow_env(metastores[name]))
            out = result.stdout.lower()
            assert "failed" not in out and "could not" not in out, result.stdout

    in_parallel(
        lambda: import_into(
            "json",
            ["connections", "import", str(files["json"])],
            ["variables", "import", str(variables_file)],
        ),
        lambda: import_into("yaml", ["connections", "import", str(files["yaml"])]),
        lambda: import_into("uri", ["connections", "import", str(files["uri"])]),
    )
    airflow = read_airflow(tmp_path, metastores, env_lines=json_lines)

    # Airflow's Connection keeps no empty password: `set_password('')` leaves it unset, so an
    # empty password arrives as None whichever way it comes in.
    as_airflow_keeps = {
        key: {**values, "password": values["password"] or None} for key, values in OURS.items()
    }
    for name in ("json", "yaml"):
        read = airflow[name]["connections"]
        assert {conn_id: as_ours(conn) for conn_id, conn in read.items()} == as_airflow_keeps
    # `airflow connections import` reads every value of a .env as a URI, so it cannot read the
    # JSON lines its own `--serialization-format json` writes; Airflow reads such a line from an
    # `AIRFLOW_CONN_*` variable, which is where we check ours.
    assert {conn_id: as_ours(conn) for conn_id, conn in airflow["env"].items()} == (
        as_airflow_keeps
    )
    # A URI has no place for the description; every other field comes back as we hold it.
    from_uri = {conn_id: as_ours(conn) for conn_id, conn in airflow["uri"]["connections"].items()}
    # A URI always has a host and a schema, empty text when it names none.
    assert from_uri == {
        key: {
            **values,
            "description": None,
            "host": values["host"] or "",
            "schema": values["schema"] or "",
            "password": values["password"] or None,
        }
        for key, values in OURS.items()
    }

    read = airflow["json"]["variables"]
    assert {key: held["value"] for key, held in read.items()} == {
        key: values["value"] for key, values in OUR_VARIABLES.items()
    }
    assert {key: held["description"] for key, held in read.items()} == {
        key: values["description"] for key, values in OUR_VARIABLES.items()
    }
