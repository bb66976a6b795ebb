"""The metadata-DB gateway against databases made by real Airflow, on SQLite and PostgreSQL."""

import json
import sqlite3

import pytest
from cryptography.fernet import Fernet

from deployments.airflow_metadata import (
    AirflowMetadataDb,
    MetadataDbUnusable,
    WrongFernetKey,
    create_airflow_shaped_sqlite,
)
from tests.airflow_support import drop_metadata_db, make_metadata_db, run_airflow

pytestmark = pytest.mark.airflow

KEY = Fernet.generate_key().decode()
CONNECTIONS = {
    "pg": {
        "conn_type": "postgres",
        "host": "h",
        "login": "u",
        "password": "p:/@?#%ü",
        "schema": "s",
        "port": 5432,
        "extra": {"a": "ü", "n": 1},
        "description": "d",
    },
    "nopw": {"conn_type": "http", "host": "example.com"},
}
VARIABLES = {"plain": "v", "json": '{"a": 1}', "described": {"value": "x", "description": "y"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    url = make_metadata_db(
        tmp_path,
        backend=request.param,
        fernet_key=KEY,
        connections=CONNECTIONS,
        variables=VARIABLES,
    )
    yield url
    drop_metadata_db(url)


def test_reads_and_decrypts_every_field(url):
    with AirflowMetadataDb(url, KEY) as db:
        conns = {c.conn_id: c for c in db.connections()}
        variables = {v.key: v for v in db.variables()}
    pg = conns["pg"]
    assert (pg.conn_type, pg.host, pg.login, pg.password, pg.schema, pg.port, pg.description) == (
        "postgres",
        "h",
        "u",
        "p:/@?#%ü",
        "s",
        5432,
        "d",
    )
    assert json.loads(pg.extra) == {"a": "ü", "n": 1}
    assert conns["nopw"].password is None and conns["nopw"].row["is_encrypted"] is False
    assert pg.row["password"] != "p:/@?#%ü"  # the row keeps Airflow's ciphertext
    assert variables["json"].value == '{"a": 1}'
    assert variables["described"].description == "y"
    assert "p:/@?#%" not in repr(pg)


def test_a_wrong_key_is_refused_without_naming_it(url):
    wrong = Fernet.generate_key().decode()
    with AirflowMetadataDb(url, wrong) as db, pytest.raises(WrongFernetKey) as error:
        db.connections()
    assert wrong not in str(error.value) and KEY not in str(error.value)


def test_unreachable_databases_are_reported():
    with pytest.raises(MetadataDbUnusable) as error:
        AirflowMetadataDb("postgresql://airflow:hunter22@127.0.0.1:1/af", KEY)
    assert "hunter22" not in str(error.value)
    with pytest.raises(MetadataDbUnusable):
        AirflowMetadataDb("sqlite:////nonexistent/airflow.db", KEY)


def _change_host(url, conn_id):
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE connection SET host = 'changed' WHERE conn_id = ?", (conn_id,))
    else:
        import psycopg

        with psycopg.connect(url) as db:
            db.execute("UPDATE connection SET host = 'changed' WHERE conn_id = %s", (conn_id,))


def test_compare_and_delete_keeps_a_changed_row(url):
    with AirflowMetadataDb(url, KEY) as db:
        rows = {c.conn_id: c.row for c in db.connections()}
        _change_host(url, "pg")
        assert db.delete_connections_if_unchanged([rows["pg"], rows["nopw"]]) == [False, True]
        assert [c.conn_id for c in db.connections()] == ["pg"]


def test_restore_puts_rows_back_as_airflow_reads_them(url, tmp_path):
    with AirflowMetadataDb(url, KEY) as db:
        rows = [c.row for c in db.connections()]
        assert db.delete_connections_if_unchanged(rows) == [True, True]
        assert db.restore_connections(rows) == [True, True]
        assert db.restore_connections(rows) == [False, False]  # never overwrites
    alchemy = url.replace("postgresql://", "postgresql+psycopg2://")
    result = run_airflow(
        ["connections", "get", "pg", "-o", "json"],
        tmp_path / "home",
        {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": alchemy, "AIRFLOW__CORE__FERNET_KEY": KEY},
    )
    shown = json.loads(result.stdout)[0]
    # The CLI prints extra as `extra_dejson`, with its values turned into text.
    assert shown["password"] == "p:/@?#%ü" and shown["extra_dejson"] == {"a": "ü", "n": "1"}


def _fields(c):
    return (
        c.conn_id,
        c.conn_type,
        c.host,
        c.login,
        c.password,
        c.port,
        json.loads(c.extra) if c.extra else None,
    )


def test_the_demo_database_has_airflows_tables_and_encryption(tmp_path):
    path = tmp_path / "demo.db"
    create_airflow_shaped_sqlite(path, KEY, CONNECTIONS, VARIABLES)
    real = make_metadata_db(tmp_path, backend="sqlite", fernet_key=KEY)

    def ddl(file, table):
        with sqlite3.connect(file) as db:
            sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        return " ".join(sql[0].split())

    for table in ("connection", "variable"):
        assert ddl(path, table) == ddl(real.removeprefix("sqlite:///"), table)
    with (
        AirflowMetadataDb(f"sqlite:///{path}", KEY) as ours,
        AirflowMetadataDb(
            make_metadata_db(
                tmp_path, fernet_key=KEY, connections=CONNECTIONS, variables=VARIABLES
            ),
            KEY,
        ) as theirs,
    ):
        assert list(map(_fields, ours.connections())) == list(map(_fields, theirs.connections()))
        assert [(v.key, v.value) for v in ours.variables()] == [
            (v.key, v.value) for v in theirs.variables()
        ]
