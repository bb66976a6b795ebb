import json

import pytest

from accounts.models import AuditEvent
from envmanager.airflow_files import (
    FileFormatError,
    parse_connections,
    parse_variables,
    render_connections,
    render_variables,
)
from envmanager.kernel.errors import InvalidInput, NotPermitted
from envmanager.models import EnvironmentObject, Link
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import environment_object_create, link_create
from envmanager.services.airflow_files import (
    airflow_file_export,
    airflow_file_import,
    airflow_file_preview,
)

AIRFLOW_EXPORT = {
    "warehouse": {
        "conn_type": "postgres",
        "description": None,
        "login": "etl",
        "password": "p:a/s@s?#%",
        "host": "db",
        "port": 5432,
        "schema": "dwh",
        "extra": '{"sslmode": "require"}',
    },
    "bare": {
        "conn_type": "http",
        "description": None,
        "login": None,
        "password": None,
        "host": None,
        "port": None,
        "schema": None,
        "extra": None,
    },
    "empty": {
        "conn_type": "generic",
        "description": "",
        "login": "",
        "password": "",
        "host": "",
        "port": None,
        "schema": "",
        "extra": "{}",
    },
}
# Unset and empty text stay apart, as Airflow keeps them.
OURS = {
    "warehouse": {
        "conn_type": "postgres",
        "description": None,
        "login": "etl",
        "password": "p:a/s@s?#%",
        "host": "db",
        "port": 5432,
        "schema": "dwh",
        "extra": {"sslmode": "require"},
    },
    "bare": {
        "conn_type": "http",
        "description": None,
        "login": None,
        "password": None,
        "host": None,
        "port": None,
        "schema": None,
        "extra": None,
    },
    "empty": {
        "conn_type": "generic",
        "description": "",
        "login": "",
        "password": "",
        "host": "",
        "port": None,
        "schema": "",
        "extra": {},
    },
}


def test_airflow_json_export_parses_field_by_field():
    parsed = {
        p.key: p.values for p in parse_connections("c.json", json.dumps(AIRFLOW_EXPORT).encode())
    }
    assert parsed == OURS


def test_render_then_parse_round_trips_in_every_object_format():
    for fmt in ("json", "yaml"):
        text = render_connections(OURS, fmt)
        parsed = {p.key: p.values for p in parse_connections(f"c.{fmt}", text.encode())}
        assert parsed == OURS, fmt
    text = render_connections(OURS, "env", serialization="json")
    parsed = {p.key: p.values for p in parse_connections("c.env", text.encode())}
    assert parsed == OURS


def test_rendered_json_matches_airflows_export_shape():
    assert json.loads(render_connections(OURS, "json")) == AIRFLOW_EXPORT


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.txt", b"{}", "Unsupported file type"),
        ("c.json", b"", "empty"),
        ("c.json", b"{not json", "Not valid JSON"),
        ("c.json", b"[1, 2]", "one object"),
        ("c.yaml", b"a: [unclosed", "Not valid YAML"),
        ("c.env", b"NOEQUALS\n", "Line 1"),
        ("c.env", b"A=x://h\nA=y://h\n", "more than once"),
        ("c.json", b"\xff\xfe\x00garbage", "UTF-8"),
    ],
)
def test_malformed_files_are_a_clear_error(name, content, message):
    with pytest.raises(FileFormatError) as error:
        parse_connections(name, content)
    assert message in str(error.value)


def test_a_bad_entry_is_reported_alone():
    content = json.dumps(
        {"ok": {"conn_type": "http"}, "bad": {"conn_type": "http", "colour": 1}, "worse": 42}
    ).encode()
    parsed = {p.key: p for p in parse_connections("c.json", content)}
    assert parsed["ok"].error == ""
    assert "colour" in parsed["bad"].error and parsed["worse"].error


def test_variables_follow_airflows_import_and_export():
    exported = {
        "plain": "text",
        "structured": {"a": [1, 2]},
        "described": {"value": "v", "description": "d"},
    }
    parsed = {p.key: p.values for p in parse_variables("v.json", json.dumps(exported).encode())}
    assert parsed["plain"] == {"value": "text", "description": None}
    assert json.loads(parsed["structured"]["value"]) == {"a": [1, 2]}
    assert parsed["described"] == {"value": "v", "description": "d"}
    assert json.loads(render_variables(parsed)) == exported


# The services


def test_preview_changes_nothing_and_import_creates(team):
    content = json.dumps(AIRFLOW_EXPORT).encode()
    rows = airflow_file_preview(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        filename="c.json",
        content=content,
    )
    assert {(r.key, r.action) for r in rows} == {
        ("warehouse", "CREATE"),
        ("bare", "CREATE"),
        ("empty", "CREATE"),
    }
    assert not EnvironmentObject.objects.exists()
    airflow_file_import(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        filename="c.json",
        content=content,
    )
    assert {o.key: o.values for o in EnvironmentObject.objects.all()} == OURS
    rows = airflow_file_import(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        filename="c.json",
        content=content,
    )
    assert {r.action for r in rows} == {"SKIP"}


def test_import_into_a_deployment_overrides_linked_objects(team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={**OURS["warehouse"], "password": "ws-pw"},
    )
    link_create(
        user=team.operator, obj=obj, deployment=team.deployment, overrides={"login": "stale"}
    )
    rows = airflow_file_import(
        user=team.operator,
        workspace=team.workspace,
        deployment=team.deployment,
        object_type="CONNECTION",
        filename="c.json",
        content=json.dumps(AIRFLOW_EXPORT).encode(),
    )
    assert {(r.key, r.action) for r in rows} == {
        ("warehouse", "OVERRIDE"),
        ("bare", "CREATE"),
        ("empty", "CREATE"),
    }
    assert Link.objects.get(environment_object=obj, deployment=team.deployment).overrides == {
        "password": "p:a/s@s?#%"
    }
    env = deployment_resolved_environment(team.deployment)["CONNECTION"]
    assert {k: v.values for k, v in env.items()} == OURS
    assert EnvironmentObject.objects.get(key="bare").scope == "DEPLOYMENT"


def test_an_invalid_file_changes_nothing(team):
    with pytest.raises(InvalidInput):
        airflow_file_import(
            user=team.operator,
            workspace=team.workspace,
            object_type="CONNECTION",
            filename="c.json",
            content=b"{oops",
        )
    assert not EnvironmentObject.objects.exists()


def test_only_operators_import(team):
    with pytest.raises(NotPermitted):
        airflow_file_import(
            user=team.author,
            workspace=team.workspace,
            object_type="CONNECTION",
            filename="c.json",
            content=json.dumps(AIRFLOW_EXPORT).encode(),
        )


def test_export_reveals_secrets_only_to_those_allowed_and_is_audited(team):
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values=OURS["warehouse"],
    )
    with pytest.raises(NotPermitted):
        airflow_file_export(
            user=team.author, workspace=team.workspace, object_type="CONNECTION", file_format="json"
        )
    text = airflow_file_export(
        user=team.operator, workspace=team.workspace, object_type="CONNECTION", file_format="json"
    )
    assert json.loads(text)["warehouse"]["password"] == "p:a/s@s?#%"
    assert AuditEvent.objects.filter(action="secrets.reveal").count() == 1
    team.workspace.local_development_secrets = True
    team.workspace.save()
    assert airflow_file_export(
        user=team.author, workspace=team.workspace, object_type="CONNECTION", file_format="yaml"
    )


def test_a_uri_keeps_the_hosts_capitals_and_the_type_of_text_extras():
    values = {
        **OURS["warehouse"],
        "description": None,  # a URI has no place for it: unset, as Airflow reads one
        "host": "DB.Internal",
        "extra": {"pool": "10", "ssl": "true"},
    }
    uri = render_connections({"warehouse": values}, "env").split("=", 1)[1].strip()
    assert "DB" not in uri and "__extra__" in uri
    (parsed,) = parse_connections("c.env", f"warehouse={uri}\n".encode())
    assert parsed.values == values
    plain = render_connections({"w": {**values, "extra": {"sslmode": "require"}}}, "env")
    assert plain.endswith("/dwh?sslmode=require\n")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('{\n  "a": [\n    1\n  ]\n}', {"a": [1]}),  # as Airflow's import stores JSON
        ('{"a": [1]}', '{"a": [1]}'),  # Airflow would store it re-indented: kept as text
        ('{\n  "b": 1,\n  "a": 2\n}', '{\n  "b": 1,\n  "a": 2\n}'),  # keys would be sorted
        ("42", 42),
        ("3.10", "3.10"),
        ('"quoted"', '"quoted"'),
        ("plain", "plain"),
    ],
)
def test_variables_are_written_so_airflows_import_stores_the_same_text(value, written):
    rendered = json.loads(render_variables({"v": {"value": value, "description": None}}))
    assert rendered["v"] == written
    parsed = parse_variables("v.json", json.dumps(rendered).encode())
    assert parsed[0].values == {"value": value, "description": None}


@pytest.mark.parametrize("description", [None, "", "d"])
def test_a_variables_description_unset_or_empty_comes_back_as_it_was(description):
    rendered = render_variables({"v": {"value": "x", "description": description}})
    (parsed,) = parse_variables("v.json", rendered.encode())
    assert parsed.values == {"value": "x", "description": description}
