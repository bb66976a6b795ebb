"""The gateway to a Deployment's Airflow metadata database: read, compare-and-delete and
restore rows of its `connection` and `variable` tables, on PostgreSQL (psycopg) or SQLite.
What it may open at all is decided by `deployments.metadata_db_target` (the allowlist).

Airflow 2.x and 3.x keep `password`, `extra` and `val` as Fernet tokens (flags `is_encrypted`,
`is_extra_encrypted`); the key is the Deployment's `[core] fernet_key`, comma-separated and
newest first. Messages of the errors raised here never hold a password, a key or a value.
"""

import contextlib
import os
import re
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import psycopg
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from deployments.metadata_db_target import MetadataDbTarget, metadata_db_target
from envmanager.kernel.errors import (
    MetadataDbChanged,
    MetadataDbError,
    MetadataDbUnusable,
    WrongFernetKey,
)

__all__ = [
    "AirflowConnection",
    "AirflowMetadataDb",
    "AirflowVariable",
    "MetadataDbChanged",
    "MetadataDbError",
    "MetadataDbReport",
    "MetadataDbUnusable",
    "WrongFernetKey",
    "open_deployment_metadata_db",
]

BATCH = 500
CONNECT_TIMEOUT_SECONDS = 3
# How long SQLite waits for Airflow's own writers to let go of the file.
SQLITE_BUSY_SECONDS = 10


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
    value: str | None = field(repr=False)  # Airflow's column is nullable
    description: str | None
    team_name: str | None
    row: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class MetadataDbReport:
    connections: int
    variables: int
    # Encrypted values (passwords, extras, variable values) the Fernet key decrypted: all.
    decrypted_values: int


def _fernet(keys: str) -> MultiFernet | None:
    parts = [k.strip() for k in (keys or "").split(",") if k.strip()]
    if not parts:
        return None
    try:
        return MultiFernet([Fernet(k.encode()) for k in parts])
    except (ValueError, TypeError):
        raise WrongFernetKey("The Deployment's Fernet key is not a valid Fernet key.") from None


def open_deployment_metadata_db(
    deployment: Any, *, pinned_fingerprint: str | None = None
) -> "AirflowMetadataDb":
    """The gateway to a Deployment's metadata DB, checked again against the allowlist at every
    connect. `pinned_fingerprint` (a migration run's) refuses any database but that one."""
    if not deployment.metadata_db_url:
        raise MetadataDbError(
            "This Deployment has no metadata database URL; a Workspace Owner adds it in the "
            "Deployment's settings."
        )
    target = metadata_db_target(deployment.metadata_db_url)
    if target.fingerprint != deployment.metadata_db_fingerprint:
        # Saved before the guard existed, or the allowlist now admits it by another entry.
        raise MetadataDbError(
            "This Deployment's metadata database URL must be saved again before it is used "
            "(a Workspace Owner does it in the Deployment's settings)."
        )
    if pinned_fingerprint is not None and target.fingerprint != pinned_fingerprint:
        raise MetadataDbChanged(
            "The Deployment's metadata database URL now names another database than the one "
            "this run read. A run only ever deletes from and restores into the database it "
            "read: put the URL back to go on; nothing was changed."
        )
    return AirflowMetadataDb(target, deployment.fernet_key)


class AirflowMetadataDb:
    """One connection to one checked metadata database. Use as a context manager.

    Every way it can fail to open (missing, unreadable, not a database, refused, not Airflow's
    tables) raises the same `MetadataDbUnusable`. It never creates a file, never reads the
    server's own libpq settings (~/.pgpass, PG* variables, client certificates, Kerberos
    tickets), and connects only to the address the allowlist check admitted."""

    def __init__(self, target: "MetadataDbTarget | str", fernet_key: str) -> None:
        if isinstance(target, str):
            target = metadata_db_target(target)
        self.target = target
        self._fernet = _fernet(fernet_key)
        self.is_sqlite = target.engine == "sqlite"
        self._db = self._connect(target)
        self._columns: dict[str, list[str]] = {}
        self._types: dict[str, dict[str, str]] = {}
        try:
            self.columns("connection")
            self.columns("variable")
        except MetadataDbError:
            self.close()
            raise MetadataDbUnusable() from None

    @staticmethod
    def _connect(
        target: MetadataDbTarget,
    ) -> sqlite3.Connection | psycopg.Connection[dict[str, Any]]:
        if target.engine == "sqlite":
            try:
                if not stat.S_ISREG(os.stat(target.path).st_mode):
                    raise MetadataDbUnusable()
                # mode=rw: open an existing file only, never create one.
                db = sqlite3.connect(
                    f"file:{quote(target.path)}?mode=rw", uri=True, timeout=SQLITE_BUSY_SECONDS
                )
            except (OSError, sqlite3.Error):
                raise MetadataDbUnusable() from None
            db.row_factory = sqlite3.Row
            return db
        try:
            # Every parameter explicit, so nothing comes from the server's own environment;
            # autocommit: reads hold no transaction open, writes open one explicitly.
            return psycopg.connect(
                host=target.host,
                hostaddr=target.address,
                port=target.port,
                dbname=target.dbname,
                user=target.user,
                password=target.password,
                sslmode=target.sslmode,
                sslcertmode="disable",
                gssencmode="disable",
                require_auth="!gss,!sspi",
                passfile=os.devnull,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="envmanager",
                row_factory=psycopg.rows.dict_row,
                autocommit=True,
            )
        except (psycopg.Error, ValueError):
            # The driver's message may hold the password, and says what exists: say neither.
            raise MetadataDbUnusable() from None

    def __enter__(self) -> "AirflowMetadataDb":
        return self

    def __exit__(self, *exc: object) -> None:
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
                f"The metadata database refused a query ({type(exc).__name__}); nothing was "
                "changed."
            ) from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error, psycopg.Error):
            self._db.rollback()

    def _transaction(self) -> contextlib.AbstractContextManager[object]:
        """One transaction for a batch of writes: all of them or none."""
        if self.is_sqlite:
            return self._db  # sqlite3's connection context manager commits or rolls back
        return cast("psycopg.Connection[dict[str, Any]]", self._db).transaction()

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            if self.is_sqlite:
                rows = self._execute(f'PRAGMA table_info("{table}")')
                names = [r["name"] for r in rows]
            else:
                rows = self._execute(
                    "SELECT column_name, udt_name FROM information_schema.columns "
                    "WHERE table_name = %s AND table_schema = current_schema() "
                    "ORDER BY ordinal_position",
                    (table,),
                )
                names = [r["column_name"] for r in rows]
                self._types[table] = {r["column_name"]: r["udt_name"] for r in rows}
            if not names:
                raise MetadataDbError(f"The metadata database has no {table!r} table.")
            self._columns[table] = [n for n in names if n != "id"]
        return self._columns[table]

    def _typed_array(self, table: str, column: str) -> str:
        """PostgreSQL: a placeholder for one binary array parameter of the column's type (a
        whole batch of values in one parameter, neither quoted nor parsed as text)."""
        udt = self._types[table][column]
        if not _UDT_NAME.fullmatch(udt):
            raise MetadataDbError(f"The metadata database's {table!r} table has unknown types.")
        return f'CAST(%b AS "{udt}"[])'

    def _select(
        self, table: str, key_column: str, keys: list[str] | None, columns: list[str] | None = None
    ) -> list[dict]:
        cols = ", ".join(f'"{c}"' for c in columns or self.columns(table))
        sql = f'SELECT {cols} FROM "{table}"'  # noqa: S608 - names from introspection
        if keys is None:
            return self._execute(sql + f' ORDER BY "{key_column}"')
        rows: list[dict] = []
        if not self.is_sqlite:
            # One array parameter (binary) for all the keys.
            array = self._typed_array(table, key_column)
            rows = self._execute(sql + f' WHERE "{key_column}" = ANY({array})', [keys])
            return sorted(rows, key=lambda r: r[key_column])
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
            raise WrongFernetKey(_UNDECRYPTABLE.format(what=what)) from None

    def _check_key_opens(self, token: str | None, encrypted: bool, what: str) -> None:
        """That the Fernet key opens `token`, by its signature alone: Fernet checks a token's
        signature (made with the same key) before it decrypts, and a wrong key fails there.
        A third of a decryption's cost, and no plaintext is made."""
        if token is None or not encrypted:
            return
        if self._fernet is None:
            raise WrongFernetKey(f"{what} is encrypted, but the Deployment has no Fernet key.")
        try:
            self._fernet.extract_timestamp(token.encode())
        except (InvalidToken, ValueError):
            raise WrongFernetKey(_UNDECRYPTABLE.format(what=what)) from None

    def _present_and_openable(
        self, table: str, key_column: str, secrets: dict[str, str], keys: list[str], kind: str
    ) -> set[str]:
        flags = [flag for flag in secrets.values() if flag in self.columns(table)]
        columns = [key_column, *(c for c in secrets if c in self.columns(table)), *flags]
        found = set()
        for row in self._select(table, key_column, keys, columns=list(dict.fromkeys(columns))):
            what = f"{kind} {row[key_column]!r}"
            for column, flag in secrets.items():
                if column in row:
                    self._check_key_opens(row[column], bool(row.get(flag)), what)
            found.add(row[key_column])
        return found

    def present_connections(self, conn_ids: Iterable[str]) -> set[str]:
        """The conn_ids among `conn_ids` that have a row, once the Fernet key is shown to open
        each of their encrypted values (WrongFernetKey names the first row it does not): what a
        run checks before it starts, without reading the values."""
        secrets = {"password": "is_encrypted", "extra": "is_extra_encrypted"}
        return self._present_and_openable(
            "connection", "conn_id", secrets, list(conn_ids), "Connection"
        )

    def present_variables(self, keys: Iterable[str]) -> set[str]:
        """As `present_connections`, for variables."""
        return self._present_and_openable(
            "variable", "key", {"val": "is_encrypted"}, list(keys), "Variable"
        )

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

    def report(self) -> "MetadataDbReport":
        """What "Test connection" shows: how many connections and variables the DB holds, and
        that the Fernet key decrypts every encrypted value (WrongFernetKey names the first row
        that it does not)."""
        decrypted = 0
        connections = self._execute(
            'SELECT "conn_id", "password", "extra", "is_encrypted", "is_extra_encrypted" '
            'FROM "connection"'
        )
        for row in connections:
            what = f"Connection {row['conn_id']!r}"
            for column, flag in (("password", "is_encrypted"), ("extra", "is_extra_encrypted")):
                if row[column] is not None and row[flag]:
                    self._decrypt(row[column], True, what)
                    decrypted += 1
        variables = self._execute('SELECT "key", "val", "is_encrypted" FROM "variable"')
        for row in variables:
            if row["val"] is not None and row["is_encrypted"]:
                self._decrypt(row["val"], True, f"Variable {row['key']!r}")
                decrypted += 1
        return MetadataDbReport(
            connections=len(connections), variables=len(variables), decrypted_values=decrypted
        )

    # Writing

    def _compare_and_delete(self, table: str, key_column: str, rows: list[dict]) -> list[bool]:
        """Delete each row only if every stored column still equals the given one, all of them
        in one statement (DELETE … USING the given rows … RETURNING the keys deleted; SQLite: one
        per batch of rows, in one transaction). True for each row deleted."""
        if not rows:
            return []
        cols = self.columns(table)
        names = [f"c{i}" for i in range(len(cols))]
        key = names[cols.index(key_column)]
        same = " IS " if self.is_sqlite else " IS NOT DISTINCT FROM "
        t = f'"{table}"'
        # The key is NOT NULL and unique: plain equality on it lets the database use its index;
        # every other column is compared NULL-safe.
        unchanged = " AND ".join(
            [f'{t}."{key_column}" = v.{key}']
            + [f'{t}."{c}"{same}v.{n}' for c, n in zip(cols, names, strict=True) if n != key]
        )
        deleted: set = set()
        try:
            with self._transaction():
                if not self.is_sqlite:
                    # Each column as one binary array: the whole chunk in one statement.
                    arrays = ", ".join(self._typed_array(table, c) for c in cols)
                    cursor = self._db.execute(
                        f"WITH v({', '.join(names)}) AS (SELECT * FROM UNNEST({arrays})) "  # noqa: S608 - names from introspection
                        f'DELETE FROM {t} USING v WHERE {unchanged} RETURNING {t}."{key_column}"',
                        [[row.get(c) for row in rows] for c in cols],
                    )
                    deleted.update(r[key_column] for r in cursor)
                else:
                    marks = "(" + ", ".join(["?"] * len(cols)) + ")"
                    for batch in _batches(rows, len(cols)):
                        cursor = self._db.execute(
                            f"WITH v({', '.join(names)}) AS "  # noqa: S608 - names from introspection
                            f"(VALUES {', '.join([marks] * len(batch))}) DELETE FROM {t} WHERE "
                            f'"{key_column}" IN (SELECT {key} FROM v) '
                            f"AND EXISTS (SELECT 1 FROM v WHERE {unchanged}) "
                            f'RETURNING "{key_column}"',
                            [row.get(c) for row in batch for c in cols],
                        )
                        deleted.update(r[key_column] for r in cursor)
        except (sqlite3.Error, psycopg.Error) as exc:
            self._rollback()
            raise MetadataDbError(
                f"Deleting rows from the metadata database failed ({type(exc).__name__}); "
                "nothing was deleted."
            ) from None
        return [row[key_column] in deleted for row in rows]

    def delete_connections_if_unchanged(self, rows: list[dict]) -> list[bool]:
        return self._compare_and_delete("connection", "conn_id", rows)

    def delete_variables_if_unchanged(self, rows: list[dict]) -> list[bool]:
        return self._compare_and_delete("variable", "key", rows)

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
        marks = "(" + ", ".join([self._param()] * len(cols)) + ")"
        absent = [row for row in rows if row[key_column] not in present]
        try:
            with self._transaction():
                for batch in _batches(absent, len(cols)):
                    self._db.execute(
                        f'INSERT INTO "{table}" ({names}) VALUES '  # noqa: S608 - names from introspection
                        + ", ".join([marks] * len(batch)),
                        [row.get(c) for row in batch for c in cols],
                    )
        except (sqlite3.Error, psycopg.Error) as exc:
            self._rollback()
            raise MetadataDbError(
                f"Restoring rows into the metadata database failed ({type(exc).__name__}); "
                "nothing was restored."
            ) from None
        return [row[key_column] not in present for row in rows]

    def restore_connections(self, rows: list[dict]) -> list[bool]:
        return self._restore("connection", "conn_id", rows)

    def restore_variables(self, rows: list[dict]) -> list[bool]:
        return self._restore("variable", "key", rows)


BOOLEAN_COLUMNS = {"is_encrypted", "is_extra_encrypted"}
_UNDECRYPTABLE = (
    "{what} cannot be decrypted with the Deployment's Fernet key: the key is wrong or "
    "incomplete (list the old key after the new one during a rotation)."
)
# Parameters per statement, well under PostgreSQL's 65,535 and SQLite's 32,766.
STATEMENT_PARAMETERS = 30_000
_UDT_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _batches(rows: list[dict], columns: int) -> Iterator[list[dict]]:
    size = max(1, STATEMENT_PARAMETERS // max(1, columns))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _jsonable(row: dict) -> dict:
    """A row as JSON can hold it (booleans as booleans: SQLite gives 0/1)."""
    return {k: bool(v) if k in BOOLEAN_COLUMNS and v is not None else v for k, v in row.items()}


def create_airflow_shaped_sqlite(
    path: str | Path,
    fernet_key: str,
    connections: Mapping[str, Mapping[str, Any]],
    variables: Mapping[str, Any],
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
