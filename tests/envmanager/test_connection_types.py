"""The catalog of Airflow's connection types: the shipped file, its loader, and the command
that makes it from a real Airflow."""

import json
import subprocess
import sys

import pytest

from envmanager.connection_types import (
    CATALOG_FILE,
    catalog_document,
    connection_type,
    connection_types,
    parse_catalog,
)
from tests.airflow_support import ROOT, ensure_airflow


def test_the_shipped_catalog_says_which_airflow_and_providers_made_it():
    document = catalog_document()
    assert document["generated_by"] == "manage.py airflow_connection_catalog"
    assert document["airflow"].startswith("3.3.")
    for name in ("postgres", "mysql", "amazon", "google", "microsoft-azure", "snowflake", "http"):
        assert f"apache-airflow-providers-{name}" in document["providers"]


def test_postgres_calls_its_schema_database():
    postgres = connection_type("postgres")
    assert postgres is not None and postgres.hook_name == "Postgres"
    assert postgres.label("schema") == "Database"
    assert postgres.label("host") == "Host" and not postgres.hidden("host")


def test_aws_has_no_host_or_port_and_its_keys_are_relabelled():
    aws = connection_type("aws")
    assert aws is not None
    assert aws.hidden("host") and aws.hidden("port")
    assert aws.label("login") == "AWS Access Key ID"
    assert aws.label("password") == "AWS Secret Access Key"


def test_extra_fields_carry_label_kind_and_sensitivity():
    every = [f for spec in connection_types().values() for f in spec.extra_fields]
    assert {f.kind for f in every} >= {"string", "boolean", "integer"}
    assert any(f.sensitive for f in every) and any(not f.sensitive for f in every)
    snowflake = connection_type("snowflake")
    assert snowflake is not None and snowflake.extra_field("account") is not None


def test_an_unknown_type_is_none_and_types_are_sorted():
    assert connection_type("my_custom_hook") is None and connection_type("") is None
    names = list(connection_types())
    assert names == sorted(names) and len(names) > 50


def test_the_loader_reads_a_catalog_document_of_its_own_shape():
    parsed = parse_catalog(
        {
            "connection_types": [
                {
                    "conn_type": "x",
                    "hook_name": "X",
                    "fields": {"port": {"hidden": True}, "login": {"label": "User"}},
                    "extra_fields": [{"name": "k", "label": "K", "kind": "odd", "sensitive": 1}],
                }
            ]
        }
    )
    x = parsed["x"]
    assert x.hidden("port") and x.label("login") == "User" and x.label("schema") == "Schema"
    assert x.extra_fields[0].kind == "string" and x.extra_fields[0].sensitive is True


def test_the_command_refuses_an_interpreter_without_airflow(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "airflow_connection_catalog",
            "--airflow-python",
            sys.executable,
            "--output",
            str(tmp_path / "c.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "extraction failed" in result.stderr
    assert not (tmp_path / "c.json").exists()


@pytest.mark.airflow
def test_the_command_under_real_airflow_agrees_with_the_shipped_file(tmp_path):
    """Run against the test Airflow (which has fewer providers): every type made by a provider
    of the same version as the shipped file's comes out the same."""
    venv = ensure_airflow()
    out = tmp_path / "catalog.json"
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "airflow_connection_catalog",
            "--airflow-python",
            str(venv / "bin" / "python"),
            "--output",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    made = json.loads(out.read_text())
    shipped = json.loads(CATALOG_FILE.read_text())
    assert made["airflow"] == shipped["airflow"]
    shipped_types = {t["conn_type"]: t for t in shipped["connection_types"]}
    compared = 0
    for entry in made["connection_types"]:
        package = entry.get("package")
        if package and made["providers"].get(package) != shipped["providers"].get(package):
            continue
        assert entry == shipped_types[entry["conn_type"]]
        compared += 1
    assert compared >= 3  # generic, email, fs, … of the same versions
