"""What a running Airflow reads: one connection, one variable, or the whole resolved
environment of its Deployment, for a Deployment token. This is the hot path of every task, so
a lookup of one key is one indexed query (token, link and object joined) and never rebuilds
the environment.

Nothing is cached across requests: a change is visible the moment it commits, and a revoked
token stops at once. Lookups are counted per token and key in memory and written in batches by a
timer thread and at exit (LookupCounter), never on a lookup's way.
"""

import atexit
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self, cast

import psycopg
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, Max, Model, Sum
from django.utils import timezone
from psycopg.abc import Params, Query, QueryNoTemplate

from accounts.models import LAST_USED_RESOLUTION, hash_token
from deployments.models import DeploymentToken
from envmanager import object_types
from envmanager.kernel.encryption import EncryptedJSONField
from envmanager.models import EnvironmentObject, Link
from envmanager.object_types import ObjectType
from envmanager.selectors import deployment_resolved_environment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LookupResult:
    """One key looked up for a bearer token: `token_id` is None when the token is unknown or
    revoked; `values` is None when the Deployment resolves no such key."""

    token_id: int | None
    deployment_id: int | None
    values: dict[str, Any] | None


# One round trip: the token (401 when absent) left-joined to the one link its Deployment has for
# (type, key) — the unique index deployment_resolves_key_once — and that link's object.
# Double-quoted names work on PostgreSQL and SQLite alike; the test suite runs on both.
LOOKUP_SQL = """
SELECT t."id", t."deployment_id",
       CASE WHEN t."last_used_at" IS NULL OR t."last_used_at" < %s THEN 1 ELSE 0 END,
       o."values", l."overrides"
FROM "deployments_deploymenttoken" t
LEFT JOIN "envmanager_link" l
       ON l."deployment_id" = t."deployment_id" AND l."object_type" = %s AND l."object_key" = %s
LEFT JOIN "envmanager_environmentobject" o ON o."id" = l."environment_object_id"
WHERE t."token_hash" = %s AND t."revoked_at" IS NULL
"""
COUNT_UPSERT_SQL = """
INSERT INTO "envmanager_lookupcount"
       ("token_id", "object_type", "object_key", "found", "count", "last_at")
VALUES {rows}
ON CONFLICT ("token_id", "object_type", "object_key", "found") DO UPDATE
SET "count" = "envmanager_lookupcount"."count" + excluded."count",
    "last_at" = CASE WHEN excluded."last_at" > "envmanager_lookupcount"."last_at"
                     THEN excluded."last_at" ELSE "envmanager_lookupcount"."last_at" END
"""


def _decrypted(model: type[Model], field: str, raw: str | None) -> Any:
    # The field decrypts: nothing here touches ciphertext itself.
    encrypted = cast(EncryptedJSONField, model._meta.get_field(field))
    return encrypted.from_db_value(raw, None, connection)


class _PreparedCursor(psycopg.Cursor):
    """Server-side binding, prepared on first use: PostgreSQL plans the lookup once per
    connection instead of on every call (planning costs several times what running it does)."""

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = True,
        binary: bool | None = None,
    ) -> Self:
        # The lookup's query is text; psycopg's overloads keep a t-string Template apart.
        return super().execute(cast(QueryNoTemplate, query), params, prepare=prepare, binary=binary)


def _cursor() -> CursorWrapper:
    if connection.vendor != "postgresql" or not settings.ENVMANAGER_LOOKUP_PREPARED_STATEMENTS:
        return connection.cursor()
    # Django's cursor() would first check the connection with a round trip of its own
    # (CONN_HEALTH_CHECKS); the lookup instead retries once on a dropped connection.
    connection.ensure_connection()
    raw = _PreparedCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)  # type: ignore[arg-type]
    return connection.make_cursor(raw)  # type: ignore[arg-type]


def _lookup_row(params: list[Any]) -> tuple | None:
    for attempt in (1, 2):
        try:
            with _cursor() as cursor:
                cursor.execute(LOOKUP_SQL, params)
                return cursor.fetchone()
        except (OperationalError, InterfaceError):
            # A connection PostgreSQL dropped (restart, failover, idle timeout): open a new
            # one once. Inside a transaction nothing can be retried.
            if attempt == 2 or connection.in_atomic_block:
                raise
            connection.close()
    return None


def lookup(plain: str | None, object_type: str, key: str) -> LookupResult:
    """Resolve one key of the bearer token's Deployment (overrides applied). The fast path:
    one statement finds the token (as `DeploymentToken.objects.for_bearer` would), touches its
    last use (as `mark_used` would) and reads the key."""
    if not plain or not plain.startswith(f"{DeploymentToken.PREFIX}_"):
        return LookupResult(None, None, None)
    now = timezone.now()
    cutoff = connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION)
    row = _lookup_row([cutoff, object_type, key, hash_token(plain)])
    if row is None:
        return LookupResult(None, None, None)
    token_id, deployment_id, stale, raw_values, raw_overrides = row
    if stale:
        # At most one write a minute per token, not one per lookup.
        DeploymentToken.objects.filter(pk=token_id).update(last_used_at=now)
    values = None
    if raw_values is not None:
        values = object_types.apply_overrides(
            _decrypted(EnvironmentObject, "values", raw_values),
            _decrypted(Link, "overrides", raw_overrides) or {},
        )
    lookup_counter.add(token_id, object_type, key, values is not None)
    return LookupResult(token_id, deployment_id, values)


def token_for(plain: str | None) -> DeploymentToken | None:
    """The active Deployment token for a bearer value, or None."""
    token = (
        DeploymentToken.objects.for_bearer(plain)
        .only("id", "deployment_id", "last_used_at", "name", "hint")
        .first()
    )
    if token is not None:
        token.mark_used()
    return token


def airflow_connection(values: dict[str, Any]) -> dict[str, Any]:
    """A connection as Airflow's `get_conn_value` JSON: exactly these eight keys, each as
    stored (empty text stays empty text, unset stays null, as Airflow's own metastore keeps
    them), extra as a JSON string (`{}` too: Airflow then shows `conn.extra == '{}'`)."""
    extra = values.get("extra")
    return {
        "conn_type": values.get("conn_type") or None,
        "description": values.get("description"),
        "host": values.get("host"),
        "login": values.get("login"),
        "password": values.get("password"),
        "schema": values.get("schema"),
        "port": values.get("port"),
        "extra": None if extra is None else json.dumps(extra),
    }


def environment_version(deployment_id: int, object_type: str | None = None) -> str:
    """A version of everything a Deployment resolves (or of one type of it), from one aggregate
    query: it changes whenever a link or a linked object is created, changed or deleted."""
    links = Link.objects.filter(deployment=deployment_id)
    if object_type:
        links = links.filter(object_type=object_type)
    agg = links.aggregate(
        n=Count("id"),
        ids=Sum("id"),
        link_at=Max("updated_at"),
        object_at=Max("environment_object__updated_at"),
        keys=Sum("environment_object_id"),
    )
    raw = "|".join(str(agg[k]) for k in ("n", "ids", "link_at", "object_at", "keys"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _dotenv_line(key: str, value: str) -> str:
    try:
        return f"{key}={object_types.dotenv_value(value)}\n"
    except ValueError:
        # Stored before such values were refused: left out rather than written unsafely.
        return f"# {key} is left out: its value cannot be written safely in a dotenv file.\n"


METRICS_FIELDS = {
    "endpoint": "endpoint",
    "exporter_type": "exporterType",
    "auth_type": "authType",
    "basic_token": "basicToken",
    "username": "username",
    "password": "password",
    "sig_v4_assume_arn": "sigV4AssumeArn",
    "sig_v4_sts_region": "sigV4StsRegion",
    "headers": "headers",
    "labels": "labels",
}


def environment_document(deployment_id: int) -> dict[str, Any]:
    """The whole resolved environment, for a Deployment's start-up."""
    resolved = deployment_resolved_environment(deployment_id)
    env_vars = {k: r.values["value"] for k, r in resolved[ObjectType.ENVIRONMENT_VARIABLE].items()}
    return {
        "connections": {
            k: airflow_connection(r.values) for k, r in resolved[ObjectType.CONNECTION].items()
        },
        "variables": {
            k: r.values["value"] for k, r in resolved[ObjectType.AIRFLOW_VARIABLE].items()
        },
        "environmentVariables": env_vars,
        "dotenv": "".join(_dotenv_line(k, v) for k, v in env_vars.items()),
        "metricsExports": {
            k: {METRICS_FIELDS[f]: v for f, v in r.values.items() if f in METRICS_FIELDS}
            for k, r in resolved[ObjectType.METRICS_EXPORT].items()
        },
    }


class DocumentCache:
    """The last environment document built per Deployment in this process, by version: a
    Deployment's Airflow components starting together get it built once. In process memory
    only (it holds secrets), and keyed by the version, so it is never stale."""

    SIZE = 64

    def __init__(self) -> None:
        self._documents: OrderedDict[int, tuple[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, deployment_id: int, version: str) -> dict[str, Any]:
        with self._lock:
            cached = self._documents.get(deployment_id)
        if cached and cached[0] == version:
            return cached[1]
        document = environment_document(deployment_id)
        with self._lock:
            self._documents.pop(deployment_id, None)
            self._documents[deployment_id] = (version, document)
            while len(self._documents) > self.SIZE:
                self._documents.popitem(last=False)
        return document

    def forget(self, deployment_id: int) -> None:
        """Drop a deleted Deployment's document (its secrets) from memory at once."""
        with self._lock:
            self._documents.pop(deployment_id, None)


document_cache = DocumentCache()


class LookupCounter:
    """Counts lookups per (token, type, key, found) in this process, with the time of the last
    one, and adds them to the database in one statement per few hundred keys: from a timer
    thread every ENVMANAGER_LOOKUP_COUNT_SECONDS (started with the first lookup, one per
    process: a forked gunicorn worker starts its own) and once more when the process exits
    (atexit, which a gunicorn worker reaches on SIGTERM, SIGQUIT and SIGINT). No lookup waits
    for a write. What a SIGKILL'd process held is lost (at most one interval's worth)."""

    BATCH = 500

    def __init__(self) -> None:
        # key -> [count, epoch seconds of the last lookup]
        self._counts: dict[tuple[int, str, str, bool], list[float]] = {}
        self._lock = threading.Lock()
        # One flush at a time: the exit flush waits for the timer's write in progress.
        self._flush_lock = threading.Lock()
        self._timer_pid: int | None = None
        self._stop = threading.Event()

    def add(self, token_id: int, object_type: str, key: str, found: bool) -> None:
        now = time.time()
        with self._lock:
            entry = self._counts.get((token_id, object_type, key, found))
            if entry is None:
                self._counts[(token_id, object_type, key, found)] = [1, now]
            else:
                entry[0] += 1
                entry[1] = max(entry[1], now)
            started = self._timer_pid == os.getpid()
        if not started:
            self._start()

    def _start(self) -> None:
        interval = settings.ENVMANAGER_LOOKUP_COUNT_SECONDS
        with self._lock:
            if self._timer_pid == os.getpid() or interval <= 0:
                return
            # A fresh process (or a fork, whose parent's thread did not come along).
            self._timer_pid = os.getpid()
            self._stop = threading.Event()
        threading.Thread(
            target=self._run, args=(interval, self._stop), name="lookup-counts", daemon=True
        ).start()
        atexit.register(self._at_exit)

    def _run(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            self._flush_in_thread()

    def _flush_in_thread(self) -> None:
        # This thread's own database connection: dropped when broken or too old, as Django
        # does around each request.
        close_old_connections()
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - the timer must go on whatever one write did
            log.exception("Lookup counts not written")
        close_old_connections()

    def _at_exit(self) -> None:
        self._stop.set()
        self.flush()
        connection.close()

    def pending(self) -> int:
        """Lookups counted in this process and not yet written."""
        with self._lock:
            return int(sum(entry[0] for entry in self._counts.values()))

    def reset(self) -> None:
        with self._lock:
            self._counts = {}

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                counts, self._counts = self._counts, {}
            if not counts:
                return
            try:
                self._write(counts)
            except DatabaseError as exc:
                # Keep them for the next flush; the responses they follow have gone out.
                with self._lock:
                    for k, (n, at) in counts.items():
                        entry = self._counts.setdefault(k, [0, at])
                        entry[0] += n
                        entry[1] = max(entry[1], at)
                log.warning("Lookup counts not written, kept for later: %s", type(exc).__name__)

    def _write(self, counts: dict[tuple[int, str, str, bool], list[float]]) -> None:
        live = set(
            DeploymentToken.objects.filter(pk__in={k[0] for k in counts}).values_list(
                "pk", flat=True
            )
        )
        adapt = connection.ops.adapt_datetimefield_value
        # A token deleted meanwhile takes its counts with it.
        rows = [
            (*k, int(n), adapt(datetime.fromtimestamp(at, tz=UTC)))
            for k, (n, at) in counts.items()
            if k[0] in live
        ]
        with transaction.atomic():  # all batches or none, so a retry never counts twice
            for start in range(0, len(rows), self.BATCH):
                batch = rows[start : start + self.BATCH]
                placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(batch))
                with connection.cursor() as cursor:
                    cursor.execute(
                        COUNT_UPSERT_SQL.format(rows=placeholders),
                        [value for row in batch for value in row],
                    )


lookup_counter = LookupCounter()
