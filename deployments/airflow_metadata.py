"""The gateway to a Deployment's Airflow metadata database: read, compare-and-delete and
restore rows of its `connection` and `variable` tables, on PostgreSQL (psycopg) or SQLite.

Airflow 2.x and 3.x keep `password`, `extra` and `val` as Fernet tokens (flags `is_encrypted`,
`is_extra_encrypted`); the key is the Deployment's `[core] fernet_key`, comma-separated and
newest first. Messages of the errors raised here never hold a password, a key or a value.
"""

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

BATCH = 500
CONNECT_TIMEOUT_SECONDS = 5


class MetadataDbError(Exception):
    """The metadata database cannot be used; the message is for the user."""


class MetadataDbUnreachable(MetadataDbError):
    pass


class WrongFernetKey(MetadataDbError):
    pass


@dataclass(frozen=True)
class AirflowConnection:
    conn_id: str
    conn_type: str
    description: str | None
    host: str | None
    schema: str | None
    login: str | None
    password: str | None = field(repr=False)
    port: int | None
    extra: str | None = field(repr=False)
    team_name: str | None
    # The row exactly as stored (ciphertext and flags included; no `id`).
    row: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class AirflowVariable:
    key: str
    value: str = field(repr=False)
    description: str | None
    team_name: str | None
    row: dict[str, Any] = field(repr=False)


def _fernet(keys: str) -> MultiFernet | None:
    parts = [k.strip() for k in (keys or "").split(",") if k.strip()]
    if not parts:
        return None
    try:
        return MultiFernet([Fernet(k.encode()) for k in parts])
    except (ValueError, TypeError):
        raise WrongFernetKey("The Deployment's Fernet key is not a valid Fernet key.") from None


def _where(url: str) -> str:
    """Where the database is, for messages: host, port and name, never credentials."""
    if url.startswith("sqlite"):
        return "the SQLite file " + url.split(":///", 1)[-1]
    parts = urlsplit(url)
    return f"PostgreSQL at {parts.hostname}:{parts.port or 5432}{parts.path}"


class AirflowMetadataDb:
    """One connection to one metadata database. Use as a context manager."""

    def __init__(self, url: str, fernet_key: str):
        self.url = url
        self._fernet = _fernet(fernet_key)
        self.is_sqlite = url.startswith("sqlite:")
        try:
            if self.is_sqlite:
                path = url.split(":///", 1)[-1]
                if not path or not Path(path).is_file():
                    raise MetadataDbUnreachable(f"Cannot open {_where(url)}: no such file.")
                self._db = sqlite3.connect(path, timeout=30)
                self._db.row_factory = sqlite3.Row
            else:
                scheme, rest = url.split("://", 1)
                if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
                    raise MetadataDbUnreachable("Only PostgreSQL and SQLite metadata DBs are read.")
                # Autocommit: reads hold no transaction open; writes open one explicitly.
                self._db = psycopg.connect(
                    "postgresql://" + rest,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    row_factory=psycopg.rows.dict_row,
                    autocommit=True,
                )
        except (sqlite3.Error, psycopg.Error, ValueError):
            # The driver's message may hold the URL's password: say where, not what it said.
            raise MetadataDbUnreachable(f"Cannot connect to {_where(url)}.") from None
        self._columns: dict[str, list[str]] = {}

    def __enter__(self) -> "AirflowMetadataDb":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # Plumbing

    def _param(self) -> str:
        return "?" if self.is_sqlite else "%s"

    def _execute(self, sql: str, params: Sequence = ()) -> list[dict]:
        try:
            cursor = self._db.execute(sql, params)
            return [dict(r) for r in cursor.fetchall()] if cursor.description else []
        except (sqlite3.Error, psycopg.Error) as exc:
            self._rollback()
            raise MetadataDbError(
                f"The metadata DB at {_where(self.url)} refused a query "
                f"({type(exc).__name__}); is it an Airflow metadata DB?"
            ) from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error, psycopg.Error):
            self._db.rollback()

    def _transaction(self):
        """One transaction for a batch of writes: all of them or none."""
        if self.is_sqlite:
            return self._db  # sqlite3's connection context manager commits or rolls back
        return self._db.transaction()

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            if self.is_sqlite:
                rows = self._execute(f'PRAGMA table_info("{table}")')
                names = [r["name"] for r in rows]
            else:
                rows = self._execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = %s AND table_schema = current_schema() "
                    "ORDER BY ordinal_position",
                    (table,),
                )
                names = [r["column_name"] for r in rows]
            if not names:
                raise MetadataDbError(f"{_where(self.url)} has no {table!r} table.")
            self._columns[table] = [n for n in names if n != "id"]
        return self._columns[table]

    def _select(self, table: str, key_column: str, keys: list[str] | None) -> list[dict]:
        cols = ", ".join(f'"{c}"' for c in self.columns(table))
        sql = f'SELECT {cols} FROM "{table}"'  # noqa: S608 - names from introspection
        if keys is None:
            return self._execute(sql + f' ORDER BY "{key_column}"')
        rows: list[dict] = []
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            marks = ", ".join([self._param()] * len(chunk))
            rows += self._execute(sql + f' WHERE "{key_column}" IN ({marks})', chunk)
        return sorted(rows, key=lambda r: r[key_column])

    def _decrypt(self, token: str | None, encrypted: bool, what: str) -> str | None:
        if token is None or not encrypted:
            return token
        if self._fernet is None:
            raise WrongFernetKey(f"{what} is encrypted, but the Deployment has no Fernet key.")
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            raise WrongFernetKey(
                f"{what} cannot be decrypted with the Deployment's Fernet key: the key is wrong "
                "or incomplete (list the old key after the new one during a rotation)."
            ) from None

    # Reading

    def count_connections(self) -> int:
        return self._execute('SELECT COUNT(*) AS n FROM "connection"')[0]["n"]

    def count_variables(self) -> int:
        return self._execute('SELECT COUNT(*) AS n FROM "variable"')[0]["n"]

    def connections(self, conn_ids: Iterable[str] | None = None) -> list[AirflowConnection]:
        keys = None if conn_ids is None else list(conn_ids)
        found = []
        for row in self._select("connection", "conn_id", keys):
            what = f"Connection {row['conn_id']!r}"
            found.append(
                AirflowConnection(
                    conn_id=row["conn_id"],
                    conn_type=row["conn_type"],
                    description=row.get("description"),
                    host=row.get("host"),
                    schema=row.get("schema"),
                    login=row.get("login"),
                    password=self._decrypt(row.get("password"), bool(row["is_encrypted"]), what),
                    port=row.get("port"),
                    extra=self._decrypt(row.get("extra"), bool(row["is_extra_encrypted"]), what),
                    team_name=row.get("team_name"),
                    row=_jsonable(row),
                )
            )
        return found

    def variables(self, keys: Iterable[str] | None = None) -> list[AirflowVariable]:
        wanted = None if keys is None else list(keys)
        return [
            AirflowVariable(
                key=row["key"],
                value=self._decrypt(
                    row["val"], bool(row["is_encrypted"]), f"Variable {row['key']!r}"
                ),
                description=row.get("description"),
                team_name=row.get("team_name"),
                row=_jsonable(row),
            )
            for row in self._select("variable", "key", wanted)
        ]

    # Writing

    def _compare_and_delete(self, table: str, rows: list[dict]) -> list[bool]:
        """Delete each row only if every stored column still equals the given one."""
        if not rows:
            return []
        cols = self.columns(table)
        same = " IS " if self.is_sqlite else " IS NOT DISTINCT FROM "
        conditions = " AND ".join(f'"{c}"{same}{self._param()}' for c in cols)
        sql = f'DELETE FROM "{table}" WHERE {conditions}'  # noqa: S608 - names from introspection
        results = []
        try:
            with self._transaction():
                for row in rows:
                    cursor = self._db.execute(sql, [row.get(c) for c in cols])
                    results.append(cursor.rowcount == 1)
        except (sqlite3.Error, psycopg.Error) as exc:
            self._rollback()
            raise MetadataDbError(
                f"Deleting rows from {_where(self.url)} failed ({type(exc).__name__}); "
                "nothing was deleted."
            ) from None
        return results

    def delete_connections_if_unchanged(self, rows: list[dict]) -> list[bool]:
        return self._compare_and_delete("connection", rows)

    def delete_variables_if_unchanged(self, rows: list[dict]) -> list[bool]:
        return self._compare_and_delete("variable", rows)

    def _restore(self, table: str, key_column: str, rows: list[dict]) -> list[bool]:
        """Insert stored rows back exactly; a key that exists again is left alone (False)."""
        if not rows:
            return []
        cols = self.columns(table)
        present = {
            r[key_column]
            for r in self._select(table, key_column, [row[key_column] for row in rows])
        }
        names = ", ".join(f'"{c}"' for c in cols)
        marks = ", ".join([self._param()] * len(cols))
        sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'  # noqa: S608 - names from introspection
        results = []
        try:
            with self._transaction():
                for row in rows:
                    if row[key_column] in present:
                        results.append(False)
                        continue
                    self._db.execute(sql, [row.get(c) for c in cols])
                    results.append(True)
        except (sqlite3.Error, psycopg.Error) as exc:
            self._rollback()
            raise MetadataDbError(
                f"Restoring rows into {_where(self.url)} failed ({type(exc).__name__}); "
                "nothing was restored."
            ) from None
        return results

    def restore_connections(self, rows: list[dict]) -> list[bool]:
        return self._restore("connection", "conn_id", rows)

    def restore_variables(self, rows: list[dict]) -> list[bool]:
        return self._restore("variable", "key", rows)


BOOLEAN_COLUMNS = {"is_encrypted", "is_extra_encrypted"}


def _jsonable(row: dict) -> dict:
    """A row as JSON can hold it (booleans as booleans: SQLite gives 0/1)."""
    return {k: bool(v) if k in BOOLEAN_COLUMNS and v is not None else v for k, v in row.items()}


def create_airflow_shaped_sqlite(
    path: str | Path, fernet_key: str, connections: dict[str, dict], variables: dict[str, Any]
) -> None:
    """A SQLite file with Airflow 3.3's `connection` and `variable` tables (DDL copied from a
    database made by `airflow db migrate`), holding rows encrypted as Airflow does. For the
    demo, where Airflow itself is not installed."""
    import json

    fernet = Fernet(fernet_key.split(",")[0].strip().encode())

    def enc(value: str | None) -> tuple[str | None, bool]:
        if value is None:
            return None, False
        return fernet.encrypt(value.encode()).decode(), True

    db = sqlite3.connect(str(path))
    try:
        db.executescript(AIRFLOW_3_DDL)
        for conn_id, conn in connections.items():
            extra = conn.get("extra")
            if isinstance(extra, dict):
                extra = json.dumps(extra)
            password, is_encrypted = enc(conn.get("password"))
            extra, is_extra_encrypted = enc(extra)
            db.execute(
                "INSERT INTO connection (conn_id, conn_type, description, host, schema, login, "
                "port, password, extra, is_encrypted, is_extra_encrypted) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conn_id,
                    conn["conn_type"],
                    conn.get("description"),
                    conn.get("host"),
                    conn.get("schema"),
                    conn.get("login"),
                    conn.get("port"),
                    password,
                    extra,
                    is_encrypted,
                    is_extra_encrypted,
                ),
            )
        for key, value in variables.items():
            description = None
            if isinstance(value, dict):
                value, description = value["value"], value.get("description")
            val, is_encrypted = enc(value)
            db.execute(
                'INSERT INTO variable ("key", val, description, is_encrypted) VALUES (?, ?, ?, ?)',
                (key, val, description, is_encrypted),
            )
        db.commit()
    finally:
        db.close()


AIRFLOW_3_DDL = """
CREATE TABLE team (
    name VARCHAR(50) NOT NULL,
    CONSTRAINT team_pkey PRIMARY KEY (name)
);
CREATE TABLE connection (
    id INTEGER NOT NULL,
    conn_id VARCHAR(250) NOT NULL,
    conn_type VARCHAR(500) NOT NULL,
    description VARCHAR(5000),
    host VARCHAR(500),
    schema VARCHAR(500),
    login TEXT,
    port INTEGER,
    team_name VARCHAR(50),
    password TEXT,
    extra TEXT,
    is_encrypted BOOLEAN NOT NULL,
    is_extra_encrypted BOOLEAN NOT NULL,
    CONSTRAINT connection_pkey PRIMARY KEY (id),
    CONSTRAINT connection_conn_id_uq UNIQUE (conn_id),
    CONSTRAINT connection_team_name_fkey FOREIGN KEY(team_name) REFERENCES team (name)
        ON DELETE SET NULL
);
CREATE TABLE variable (
    id INTEGER NOT NULL,
    "key" VARCHAR(250) NOT NULL,
    val TEXT NOT NULL,
    description TEXT,
    is_encrypted BOOLEAN NOT NULL,
    team_name VARCHAR(50),
    CONSTRAINT variable_pkey PRIMARY KEY (id),
    CONSTRAINT variable_key_uq UNIQUE ("key"),
    CONSTRAINT variable_team_name_fkey FOREIGN KEY(team_name) REFERENCES team (name)
        ON DELETE SET NULL
);
"""
