"""`envmanager.connection_uri` parses what the connection form's URI box receives as Airflow's
`Connection(uri=…)` does."""

import json
from urllib.parse import quote

import pytest

from envmanager.connection_uri import parse_connection_uri

AWKWARD_PASSWORDS = [
    ":",
    "/",
    "@",
    "?",
    "#",
    "%",
    "p:a/s@s?w#o%rd",
    "%41",
    "ünïcødé-密码",
    " sp ace+",
]


@pytest.mark.parametrize("password", AWKWARD_PASSWORDS)
def test_a_quoted_password_comes_back_exactly(password):
    uri = f"postgres://etl:{quote(password, safe='')}@db.internal:5432/dwh"
    values = parse_connection_uri(uri)
    assert (values["password"], values["login"], values["host"]) == (password, "etl", "db.internal")
    assert (values["port"], values["schema"]) == (5432, "dwh")


def test_unicode_login_host_and_schema():
    values = parse_connection_uri(
        f"mysql://{quote('üser')}:{quote('pässwörd')}@{quote('hôst')}/{quote('schéma')}"
    )
    assert (values["login"], values["password"], values["host"], values["schema"]) == (
        "üser",
        "pässwörd",
        "hôst",
        "schéma",
    )


@pytest.mark.parametrize(
    ("scheme", "conn_type"),
    [
        ("postgresql", "postgres"),
        ("postgres", "postgres"),
        ("google-cloud-platform", "google_cloud_platform"),
        ("aws", "aws"),
        ("snowflake", "snowflake"),
    ],
)
def test_the_scheme_becomes_the_connection_type(scheme, conn_type):
    assert parse_connection_uri(f"{scheme}://h")["conn_type"] == conn_type


def test_query_parameters_become_extra_and_json_values_are_decoded():
    values = parse_connection_uri("http://api.example.com?timeout=10&verify=false&name=x")
    assert values["extra"] == {"timeout": 10, "verify": False, "name": "x"}


def test_the_extra_parameter_holds_the_whole_extra_as_json():
    extra = {"keyfile_dict": {"private_key": "-----BEGIN\n…"}, "scope": ["a", "b"]}
    uri = "google-cloud-platform://?__extra__=" + quote(json.dumps(extra))
    assert parse_connection_uri(uri)["extra"] == extra


def test_an_empty_uri_part_is_empty_not_none():
    values = parse_connection_uri("aws://")
    # As Airflow's `Connection(uri="aws://")`: host and schema empty text, the rest unset.
    assert values == {
        "conn_type": "aws",
        "description": None,
        "host": "",
        "schema": "",
        "login": None,
        "password": None,
        "port": None,
        "extra": None,
    }
    assert parse_connection_uri("x://:@h?__extra__=%7B%7D") == {
        **values,
        "conn_type": "x",
        "host": "h",
        "login": "",
        "password": None,  # Airflow keeps no empty password from a URI
        "extra": {},
    }


@pytest.mark.parametrize(
    "uri",
    [
        "just text with p@ss",
        "://host",
        "postgres://u:p@h:port/db",
        "postgres://u:p@h:70000/db",
        "x://h?__extra__=%7Bnot-json",
        "x://h?__extra__=%5B1%5D",
        "a://b://c://d",
    ],
)
def test_a_bad_uri_is_refused_with_a_message_that_does_not_repeat_it(uri):
    with pytest.raises(ValueError) as error:
        parse_connection_uri(uri)
    assert uri not in str(error.value) and "p@ss" not in str(error.value)


# Against Airflow itself: the same URIs through `Connection(uri=…)` in the real Airflow.

AIRFLOW_URIS = [
    "postgresql://us%40er:p%3Aa%2Fs%40s%3Fw%23o%25rd@db.internal:5432/analytics?sslmode=require",
    "mysql://%C3%BCser:p%C3%A4ss%E2%82%AC%E5%AF%86@h%C3%B4st/db",
    "http://https%3A%2F%2Fapi.example.com/?__extra__=%7B%22a%22%3A+%5B1%5D%7D",
    "aws://?region_name=eu-west-1&retries=3",
    "google-cloud-platform://?__extra__=%7B%22project%22%3A+%22p%22%7D",
    "x://h/a%2Fb",
    "sqlite:///tmp/x.db",
    "snowflake://u:%20pw%2B@acct/db?warehouse=wh&role=r",
    "sftp://u:%25%25@h:22",
    # Empty and absent parts, which Airflow keeps apart.
    "aws://",
    "x://:@h",
    "x://@h",
    "x://u:@h/",
    "x://h?__extra__=%7B%7D",
]

AIRFLOW_PARSE = """
import json, sys
from airflow.models.connection import Connection
out = []
for uri in json.loads(sys.argv[1]):
    c = Connection(conn_id="x", uri=uri)
    out.append({"conn_type": c.conn_type, "description": c.description, "host": c.host,
                "schema": c.schema, "login": c.login, "password": c.password, "port": c.port,
                "extra": None if c.extra is None else json.loads(c.extra)})
print(json.dumps(out))
"""


@pytest.mark.airflow
def test_parses_as_airflows_own_connection_does(tmp_path):
    import subprocess

    from tests.airflow_support import airflow_env, ensure_airflow

    venv = ensure_airflow()
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", AIRFLOW_PARSE, json.dumps(AIRFLOW_URIS)],
        env=airflow_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    airflow = json.loads(result.stdout.strip().splitlines()[-1])
    # Raw, as Airflow holds them: '' is not None.
    ours = [parse_connection_uri(uri) for uri in AIRFLOW_URIS]
    assert ours == airflow
