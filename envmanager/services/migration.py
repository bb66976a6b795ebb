"""Migrate from Airflow: move connections and variables out of a Deployment's metadata DB,
losing nothing.

The rules (DESIGN.md, "Zero-loss migration"):
- copy each selected row into a Workspace object linked to the source Deployment (or, where a
  Workspace object with that key exists but is not linked there, a new link to it with an
  override), then verify the stored copy field by field against the decrypted source;
- a key the Deployment already resolves (its own object, or a linked Workspace object) is a
  conflict: the row is shadowed by what we serve, so it is left where it is;
- wait out the propagation window (`ENVMANAGER_PROPAGATION_SECONDS`), then delete each source
  row by compare-and-delete: a row changed in Airflow since it was read is kept, reported, and
  our copy of it is withdrawn so the Deployment keeps resolving what Airflow has;
- a wrong or missing Fernet key, an unreachable DB or a failed verification deletes nothing;
- every step is recorded per object; a run resumes after a crash; two runs on one Deployment
  never overlap (a database constraint plus a lease held by the worker);
- the source rows are kept (encrypted) with the run, so an Owner can undo it;
- nothing secret is logged: only run ids, keys, counts and states.
"""

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import ExpressionWrapper, F, Field, Lookup, Q, TextField
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User, Workspace, WorkspacePermission
from accounts.permissions import require_workspace_perm
from deployments.airflow_metadata import (
    AirflowMetadataDb,
    MetadataDbError,
    open_deployment_metadata_db,
)
from deployments.models import Deployment
from envmanager import object_types
from envmanager.kernel.encryption import (
    EncryptedJSONField,
    EncryptedTextField,
    JSONTokenReader,
    json_tokens,
)
from envmanager.kernel.errors import Conflict, InvalidInput
from envmanager.models import EnvironmentObject, Link, MigrationItem, MigrationRun, ObjectVersion
from envmanager.object_types import MIGRATABLE_TYPES, ObjectType, Scope
from envmanager.services.versions import (
    link_version_record,
    link_versions_record,
    version_record,
)

logger = logging.getLogger(__name__)

Status = MigrationRun.Status
State = MigrationItem.State
Action = MigrationItem.Action


# What verification compares: every field of a connection (all of them reach Airflow), and a
# variable's value and description (the secret flag is ours, not Airflow's).
VERIFIED_FIELDS: dict[str, tuple[str, ...]] = {
    ObjectType.CONNECTION: object_types.SPECS[ObjectType.CONNECTION].fields,
    ObjectType.AIRFLOW_VARIABLE: ("value", "description"),
}


class ItemRefused(Exception):
    """A source row that cannot become an environment object; the message says why."""


def _lease_seconds() -> int:
    return settings.ENVMANAGER_MIGRATION_LEASE_SECONDS


def open_run_metadata_db(run: MigrationRun) -> AbstractContextManager[AirflowMetadataDb]:
    """The database a run read, and no other (raises MetadataDbChanged when the Deployment's
    URL names another one now)."""
    return open_deployment_metadata_db(
        run.deployment, pinned_fingerprint=run.metadata_db_fingerprint
    )


def read_source_rows(
    db: AirflowMetadataDb, object_type: str, keys: list[str] | None = None
) -> dict[str, Any]:
    """Decrypted rows of the metadata DB by key (all of them when `keys` is None)."""
    if object_type == ObjectType.CONNECTION:
        return {row.conn_id: row for row in db.connections(keys)}
    return {row.key: row for row in db.variables(keys)}


def source_values(object_type: str, row: Any) -> dict[str, Any]:
    """A metadata-DB row as the values of an environment object of that type, field for field
    as Airflow shows it: NULL stays unset and empty text stays empty text (a Dag can tell
    `conn.schema == ''` from `conn.schema is None`). A row whose values no secrets backend can
    hand to Airflow unchanged is refused with the reason, and stays in Airflow."""
    if object_type == ObjectType.AIRFLOW_VARIABLE:
        return {
            "value": row.value,
            "description": row.description,
            "is_secret": object_types.variable_key_looks_secret(row.key),
        }
    extra: Any = None
    if row.extra == "":
        raise ItemRefused(
            "Its extra is empty text, which Airflow reads from any secrets backend as no extra "
            "(conn.extra would turn from '' into None); clear its extra in Airflow first."
        )
    if row.extra is not None:
        try:
            extra = json.loads(row.extra)
        except ValueError:
            raise ItemRefused("Its extra is not valid JSON; fix it in Airflow first.") from None
        if not isinstance(extra, dict):
            raise ItemRefused("Its extra is not a JSON object; fix it in Airflow first.")
    if row.password == "":
        raise ItemRefused(
            "Its password is empty text, which Airflow reads from a secrets backend as no "
            "password (its Connection keeps no empty password); clear its password in Airflow "
            "first."
        )
    if row.port == 0:
        raise ItemRefused(
            "Its port is 0, which Airflow reads from any secrets backend as no port "
            "(conn.port would turn from 0 into None); clear or set its port in Airflow first."
        )
    return {
        "conn_type": row.conn_type or "",
        "description": row.description,
        "host": row.host,
        "schema": row.schema,
        "login": row.login,
        "password": row.password,
        "port": row.port,
        "extra": extra,
    }


SHADOWED = "the metadata-DB row is shadowed by it and is left where it is"


class _AnyOf(Lookup):  # type: ignore[type-arg]
    """`field = ANY(%s)` with the keys as one array parameter (PostgreSQL)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*params, list(self.rhs)]


def _key_in(field: str, keys: Iterable[str]) -> "Q | Lookup[bool]":
    """A filter on `field` being one of `keys`. On PostgreSQL a chunk's thousand keys go as one
    array parameter: a thousand placeholders cost more to bind and parse than the query."""
    keys = list(keys)
    if connection.vendor == "postgresql":
        return _AnyOf(F(field), keys)
    return Q(**{f"{field}__in": keys})


def migration_conflicts(
    *, deployment: Deployment, object_type: str, keys: Iterable[str]
) -> dict[str, str]:
    """The keys a Deployment already resolves, each with the reason its metadata-DB row is a
    conflict and is not migrated.

    Airflow asks our secrets backend before its metastore, so for such a key Dags never see the
    row: they see the Deployment's own Deployment-scoped object, or the Workspace object linked
    to it (explicitly or by auto-link, with or without an override). Migrating the row would
    replace those values with the row's stale ones and change what a running Deployment
    resolves, so the row is left where it is. One query (the link carries the key)."""
    links = Link.objects.filter(
        _key_in("object_key", keys), deployment=deployment, object_type=object_type
    )
    conflicts = {}
    for link in links:
        if link.is_home:
            conflicts[link.object_key] = (
                f"Already resolved here from this Deployment's own object {link.object_key}; "
                f"{SHADOWED}."
            )
            continue
        how = "auto-linked" if link.is_auto else "linked"
        overridden = sorted(link.overrides or {})
        if overridden:
            how += f", with an override of {', '.join(overridden)}"
        conflicts[link.object_key] = (
            f"Already resolved here from the Workspace object {link.object_key} ({how}); "
            f"{SHADOWED}."
        )
    return conflicts


# What a Dag sees of each type: a shadowed row may leave only when all of these are equal.
SHADOW_FIELDS: dict[str, tuple[str, ...]] = {
    ObjectType.CONNECTION: VERIFIED_FIELDS[ObjectType.CONNECTION],
    ObjectType.AIRFLOW_VARIABLE: ("value",),
}
NOT_SHADOWED = "The Deployment does not resolve this key; migrate it instead."


def resolved_values(
    deployment_id: int, object_type: str, keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """What the Deployment resolves for each key (the object's values with its link's
    overrides), read from the database afresh."""
    rows = cast(
        Iterable[tuple[str, dict[str, Any], dict[str, Any]]],
        Link.objects.filter(
            _key_in("object_key", keys), deployment=deployment_id, object_type=object_type
        ).values_list("object_key", "environment_object__values", "overrides"),
    )
    return {key: object_types.apply_overrides(values, overrides) for key, values, overrides in rows}


def shadow_differences(
    deployment: Deployment, object_type: str, rows: dict[str, Any]
) -> dict[str, str]:
    """For each metadata-DB row the Deployment already resolves: "" when what Dags see of it is
    the same either way (the row can leave Airflow and nothing changes), else which fields
    differ (names only, never values). Keys it does not resolve are left out."""
    have = resolved_values(deployment.pk, object_type, rows)
    out = {}
    for key, values in have.items():
        try:
            want = object_types.clean_values(object_type, source_values(object_type, rows[key]))
        except (ItemRefused, ValidationError):
            out[key] = "Its row cannot be read as an object of this type."
            continue
        differing = [f for f in SHADOW_FIELDS[object_type] if values.get(f) != want.get(f)]
        out[key] = f"Differs in {', '.join(differing)}." if differing else ""
    return out


def migration_remove_shadowed(
    *, user: User, deployment: Deployment, object_type: str, object_keys: Iterable[str]
) -> MigrationRun:
    """ "Remove from Airflow": rows the Deployment already resolves (a Conflict) with the very
    same values leave the metadata DB, nothing is copied. The run checks each again, waits out
    the propagation window, compare-and-deletes, records every row and can be undone (the rows
    go back). A row that differs is refused before anything changes, with the fields named."""
    return migration_start(
        user=user,
        deployment=deployment,
        object_type=object_type,
        object_keys=object_keys,
        mode=MigrationRun.Mode.REMOVE_SHADOWED,
    )


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Starting, retrying and scheduling


def require_may_migrate(user: User, deployment: Deployment, object_type: str) -> None:
    """Who may migrate what, the one place: a Workspace Owner, from a Deployment that is not
    remote-execution, connections and Airflow variables only (`object_types.MIGRATABLE_TYPES`).
    Listing the candidates and starting a run both ask it."""
    require_workspace_perm(
        user, WorkspacePermission.MIGRATE_FROM_AIRFLOW, deployment.workspace, "migrate from Airflow"
    )
    if deployment.is_remote_execution:
        raise InvalidInput("Migration is not available for remote-execution Deployments.")
    if object_type not in MIGRATABLE_TYPES:
        raise InvalidInput(
            "Only connections and Airflow variables can be migrated from Airflow.",
            {"objectType": "CONNECTION or AIRFLOW_VARIABLE."},
        )


@dataclass(frozen=True)
class MigrationCandidate:
    """One row of a Deployment's metadata DB, as the migration selection page shows it."""

    NEW = "NEW"
    EXISTS_IN_WORKSPACE = "EXISTS_IN_WORKSPACE"
    CONFLICT = "CONFLICT"
    STATUSES = (NEW, EXISTS_IN_WORKSPACE, CONFLICT)

    object_key: str
    status: str
    summary: str
    description: str
    # What migrating it would do, or (for a conflict) why it is left in Airflow.
    reason: str = ""
    # A conflict whose row is identical to what the Deployment resolves can be removed from
    # Airflow ("Remove from Airflow"); otherwise `difference` names the fields that differ.
    removable: bool = False
    difference: str = ""


def migration_candidates(
    *, user: User, deployment: Deployment, object_type: str
) -> list[MigrationCandidate]:
    """Every row of that type in the metadata DB, marked new to the Workspace, existing in the
    Workspace but not linked to this Deployment (an override will be created), or in conflict
    with what the Deployment already resolves (`migration_conflicts`: its own object or a
    linked Workspace object). Decrypts every row, so a wrong Fernet key is reported here,
    before anything changes (raises MetadataDbError). Asked by the user who would migrate
    them: the same refusals as `migration_start` (`require_may_migrate`)."""
    require_may_migrate(user, deployment, object_type)
    with open_deployment_metadata_db(deployment) as db:
        rows = read_source_rows(db, object_type)
    in_workspace = set(
        EnvironmentObject.objects.filter(
            workspace=deployment.workspace_id,
            scope=Scope.WORKSPACE,
            object_type=object_type,
            key__in=list(rows),
        ).values_list("key", flat=True)
    )
    conflicts = migration_conflicts(deployment=deployment, object_type=object_type, keys=rows)
    differences = shadow_differences(
        deployment, object_type, {k: rows[k] for k in conflicts if k in rows}
    )
    candidates = []
    for key in sorted(rows):
        row = rows[key]
        if key in conflicts:
            status, reason = MigrationCandidate.CONFLICT, conflicts[key]
        elif key in in_workspace:
            status = MigrationCandidate.EXISTS_IN_WORKSPACE
            reason = f"A Deployment-level override on the Workspace object {key} will be created."
        else:
            status = MigrationCandidate.NEW
            reason = "A new Workspace object linked to this Deployment only will be created."
        if object_type == ObjectType.CONNECTION:
            summary = " ".join(p for p in (row.conn_type, row.host or "") if p)
        else:
            summary = ""
        difference = differences.get(key, "")
        candidates.append(
            MigrationCandidate(
                key,
                status,
                summary,
                row.description or "",
                reason,
                removable=key in conflicts and not difference,
                difference=difference,
            )
        )
    return candidates


def migration_start(
    *,
    user: User,
    deployment: Deployment,
    object_type: str,
    object_keys: Iterable[str],
    mode: str = MigrationRun.Mode.MOVE,
) -> MigrationRun:
    """Start a run for the selected keys. Owner only; refused for remote-execution Deployments,
    while another run of the Deployment is active, and (before anything changes) when the
    metadata DB is unreachable, the Fernet key is wrong or a key is not in the metadata DB.
    `mode=REMOVE_SHADOWED`: see `migration_remove_shadowed`."""
    require_may_migrate(user, deployment, object_type)
    if mode not in MigrationRun.Mode.values:
        raise InvalidInput("Unknown mode.", {"mode": "MOVE or REMOVE_SHADOWED."})
    keys = sorted({k for k in object_keys if isinstance(k, str) and k})
    if not keys:
        raise InvalidInput("Select at least one object to migrate.", {"objectKeys": "Empty."})
    missing: list[str] = []
    refused: dict[str, str] = {}
    with open_deployment_metadata_db(deployment) as db:
        # Every row read and decrypted, a chunk at a time: memory stays flat in N.
        for chunk in _chunks(keys, settings.ENVMANAGER_MIGRATION_CHUNK_SIZE):
            if mode == MigrationRun.Mode.REMOVE_SHADOWED:
                rows = read_source_rows(db, object_type, chunk)
                differing = shadow_differences(deployment, object_type, rows)
                refused.update({k: differing.get(k, NOT_SHADOWED) for k in chunk})
            else:
                # The copy reads and decrypts the values; here the key is checked to open
                # every one of them, so a wrong key is refused before anything changes. One
                # read per chunk (not per key: that made the start quadratic in the chunk).
                if object_type == ObjectType.CONNECTION:
                    present = db.present_connections(chunk)
                else:
                    present = db.present_variables(chunk)
                missing += [k for k in chunk if k not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InvalidInput(f"Not in the metadata database: {shown}.", {"objectKeys": "Unknown."})
    if mode == MigrationRun.Mode.REMOVE_SHADOWED:
        refused = {k: why for k, why in refused.items() if why}
        if refused:
            shown = "; ".join(f"{k}: {why}" for k, why in list(refused.items())[:5])
            raise InvalidInput(
                "Only rows identical to what the Deployment resolves can be removed from "
                f"Airflow. {shown}{' …' if len(refused) > 5 else ''}",
                refused,
            )
    try:
        with transaction.atomic():
            run = MigrationRun.objects.create(
                workspace=deployment.workspace,
                deployment=deployment,
                object_type=object_type,
                mode=mode,
                created_by=user,
                metadata_db_fingerprint=deployment.metadata_db_fingerprint or "",
            )
            _insert_rows(
                MigrationItem, [{"run_id": run.pk, "object_key": k} for k in keys], "object_key"
            )
            audit_record(
                workspace=deployment.workspace_id,
                actor=user,
                action="migration.start",
                object_type=object_type,
                deployment_id=deployment.pk,
                detail={"runId": run.pk, "count": len(keys)},
            )
            transaction.on_commit(lambda: _enqueue("copy", run.pk))
    except IntegrityError:
        raise Conflict(_busy(object_type)) from None
    logger.info("migration run %s started: %s %s objects", run.pk, len(keys), object_type)
    return run


def _busy(object_type: str) -> str:
    return (
        f"Another migration of this Deployment's {object_types.type_name(object_type)}s is "
        "under way; wait for it to finish or retry it. (Runs of the other type go on at the "
        "same time.)"
    )


def migration_retry(*, user: User, run: MigrationRun) -> MigrationRun:
    """Resume a run that failed or whose worker died (its lease ran out). Finished objects are
    not touched again; objects that failed are tried again."""
    require_workspace_perm(
        user, WorkspacePermission.MIGRATE_FROM_AIRFLOW, run.workspace, "migrate from Airflow"
    )
    now = timezone.now()
    with transaction.atomic():
        run = MigrationRun.objects.select_for_update().get(pk=run.pk)
        if run.is_active and run.lease_until and run.lease_until > now:
            raise Conflict("This run is being worked on right now.")
        if run.status in (Status.SUCCEEDED, Status.UNDONE):
            raise Conflict(f"This run is {run.get_status_display().lower()}; nothing to retry.")
        if run.status == Status.UNDOING:
            transaction.on_commit(lambda: _enqueue("undo", run.pk))
            return run
        retried = run.items.filter(state__in=[State.FAILED, State.KEPT_CHANGED, State.CONFLICT])
        retried.update(
            state=State.SELECTED,
            reason="",
            action="",
            environment_object=None,
            link_created=False,
            source_row=None,
            previous_overrides=None,
        )
        has_verified = run.items.filter(state=State.VERIFIED).exists()
        has_selected = run.items.filter(state=State.SELECTED).exists()
        if has_selected:
            step, run.status = "copy", Status.PENDING
        elif has_verified:
            step, run.status = "delete", Status.WAITING
        else:
            raise Conflict("Every object of this run is finished; nothing to retry.")
        run.error, run.lease_until, run.finished_at, run.updated_at = "", None, None, now
        try:
            with transaction.atomic():
                run.save()
        except IntegrityError:
            raise Conflict(_busy(run.object_type)) from None
        transaction.on_commit(lambda: _enqueue(step, run.pk))
    return run


# The task of each step, by its Celery name (envmanager/tasks.py calls this module, so this
# module names the tasks rather than importing them).
STEP_TASKS = {
    "copy": "envmanager.tasks.migration_copy",
    "delete": "envmanager.tasks.migration_delete_sources",
    "undo": "envmanager.tasks.migration_undo",
}


def _enqueue(step: str, run_id: int, delay: float = 0) -> None:
    # The registered task itself (not `send_task`), so eager mode runs it in this process.
    task = current_app.tasks[STEP_TASKS[step]]
    if delay > 0 and settings.CELERY_TASK_ALWAYS_EAGER:
        # Eager mode has no broker to hold a delayed task: a timer in this process holds it,
        # so the propagation window holds in the embedded default too. If the process stops,
        # `migration_run_resume_due` picks the run up when its page is next viewed.
        timer = threading.Timer(delay, task.delay, args=(run_id,))
        timer.daemon = True
        timer.start()
    elif delay > 0:
        task.apply_async((run_id,), countdown=delay)
    else:
        task.delay(run_id)


def migration_run_resume_due(*, run: MigrationRun) -> bool:
    """Re-enqueue a run whose worker is gone (lease expired) or whose delete step is due.
    Idempotent: the steps themselves check state and lease. Called when a run is looked at."""
    now = timezone.now()
    if not run.is_active or (run.lease_until and run.lease_until > now):
        return False
    if run.status == Status.WAITING and run.delete_after and run.delete_after > now:
        return False
    steps: dict[str, str] = {
        Status.PENDING: "copy",
        Status.COPYING: "copy",
        Status.WAITING: "delete",
        Status.DELETING: "delete",
        Status.UNDOING: "undo",
    }
    step = steps[run.status]
    if run.status in (Status.PENDING, Status.WAITING) and run.updated_at > now - timedelta(
        seconds=_lease_seconds()
    ):
        return False  # just queued: give the worker its time before queueing it again
    _enqueue(step, run.pk)
    return True


def migration_runs_resume_due() -> int:
    """Resume every active run that is due (its worker died, or its delete step is due and
    nobody took it): run by Celery beat every `ENVMANAGER_MIGRATION_RESUME_SECONDS`, so a run
    goes on within about a lease plus that interval with nobody watching. Returns how many
    runs were queued again."""
    now = timezone.now()
    due = MigrationRun.objects.filter(status__in=MigrationRun.ACTIVE).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    return sum(migration_run_resume_due(run=run) for run in due)


def _claim(run_id: int, statuses: tuple[Any, ...], status: str) -> MigrationRun | None:
    """Take the run's lease if it is in one of `statuses` and no live worker holds it. One
    conditional UPDATE, so two workers can never both win."""
    now = timezone.now()
    claimed = (
        MigrationRun.objects.filter(pk=run_id, status__in=statuses)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            status=status, lease_until=now + timedelta(seconds=_lease_seconds()), updated_at=now
        )
    )
    return MigrationRun.objects.select_related("deployment").get(pk=run_id) if claimed else None


def _renew(run: MigrationRun) -> None:
    now = timezone.now()
    MigrationRun.objects.filter(pk=run.pk).update(
        lease_until=now + timedelta(seconds=_lease_seconds()), updated_at=now
    )


def _audit_step(run: MigrationRun, action: str, **detail: Any) -> None:
    """One audit row per step of a run, with the keys in each state (keys are not secret)."""
    by_state: dict[str, list[str]] = {}
    for key, state in run.items.values_list("object_key", "state"):
        by_state.setdefault(state, []).append(key)
    audit_record(
        workspace=run.workspace_id,
        actor=None,
        action=action,
        object_type=run.object_type,
        deployment_id=run.deployment_id,
        detail={"runId": run.pk, **detail, "keysByState": by_state},
    )


def _fail_run(run: MigrationRun, message: str) -> None:
    with transaction.atomic():
        MigrationRun.objects.filter(pk=run.pk).update(
            status=Status.FAILED,
            error=message,
            lease_until=None,
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        _audit_step(run, "migration.failed", error=message)
    logger.warning("migration run %s failed: %s", run.pk, message)


# Copy and verify


def migration_copy(*, run_id: int) -> None:
    """Copy and verify every selected object of a run, in chunks of one transaction each, then
    schedule the deletion of the source rows after the propagation window."""
    run = _claim(run_id, (Status.PENDING, Status.COPYING), Status.COPYING)
    if run is None:
        return
    try:
        with open_run_metadata_db(run) as db:
            # Chunk by chunk, rows read just before their copy: memory stays flat in N.
            for chunk in _item_pages(run, State.SELECTED):
                sources = read_source_rows(db, run.object_type, [i.object_key for i in chunk])
                with transaction.atomic():
                    _copy_chunk_taking_what_appeared(run, chunk, sources)
                _renew(run)
    except MetadataDbError as exc:
        # Chunks copied so far stay verified (their rows are still in Airflow); a retry
        # copies the rest.
        _fail_run(run, str(exc))
        return
    _after_copy(run)


def _item_pages(run: MigrationRun, state: str) -> Iterator[list[Any]]:
    """The run's items in `state`, a chunk at a time in key order (keyset paging, so a chunk
    whose items change state is never read twice and memory stays flat in N)."""
    size = settings.ENVMANAGER_MIGRATION_CHUNK_SIZE
    after = None
    while True:
        page = run.items.filter(state=state).order_by("object_key")
        if after is not None:
            page = page.filter(object_key__gt=after)
        # Rows, not model instances: building a thousand instances (their signals, their
        # descriptors) cost more than reading them. Each item has the model's field attnames,
        # `pk` and `run`, which is all the steps use; they write items back by `_update_items`.
        names = [f.attname for f in MigrationItem._meta.concrete_fields]
        chunk = [
            SimpleNamespace(**dict(zip(names, row, strict=True)), run=run)
            for row in page.values_list(*names)[:size]
        ]
        if not chunk:
            return
        for item in chunk:
            item.pk = item.id
        yield chunk
        after = chunk[-1].object_key


COPY_ATTEMPTS = 3


def _copy_chunk_taking_what_appeared(
    run: MigrationRun, items: list[MigrationItem], sources: dict[str, Any]
) -> None:
    """Copy a chunk; where a user created one of its keys (or linked one to this Deployment)
    after the chunk read them, the unique constraints refuse our insert: the chunk is rolled
    back to its savepoint and done again from the rows as they are now, so that key takes the
    override path (or is a conflict), never a 500 or a run stuck in COPYING.

    The chunk reads the Workspace's keys, so it first locks the Workspace row against a
    rename (and a link, an auto-link, a Deployment created) at the same moment: those take
    the row `FOR UPDATE` (`lock_workspace_auto_links`) before they change a key, so either
    the chunk reads the keys after the rename, or the rename waits and then carries the
    chunk's new links to the new key. Never a link left on a key its object no longer has.
    `FOR NO KEY UPDATE`, held for the whole chunk (retries included): a plain create of an
    object in the Workspace (which only needs the row to stay) goes on meanwhile."""
    list(
        Workspace.objects.select_for_update(no_key=True)
        .filter(pk=run.workspace_id)
        .values_list("pk")
    )
    for attempt in range(COPY_ATTEMPTS):
        try:
            with transaction.atomic():
                _copy_chunk(run, items, sources)
            return
        except IntegrityError:
            if attempt == COPY_ATTEMPTS - 1:
                raise
            for item in items:
                item.state, item.reason, item.action = State.SELECTED, "", ""
                item.environment_object_id, item.link_created = None, False
                item.previous_overrides, item.verified_at = None, None


def _check_shadowed_chunk(
    run: MigrationRun, items: list[MigrationItem], sources: dict[str, Any]
) -> None:
    """A removal run's "copy": each row is checked again, in this chunk's transaction, to be
    identical to what the Deployment resolves; nothing is written but the items."""
    rows = {i.object_key: sources[i.object_key] for i in items if i.object_key in sources}
    differing = shadow_differences(run.deployment, run.object_type, rows)
    now = timezone.now()
    for item in items:
        why = differing.get(item.object_key, NOT_SHADOWED)
        if item.object_key not in rows:
            item.state, item.reason = State.FAILED, "It is no longer in the metadata database."
        elif why:
            item.state, item.reason = State.FAILED, why
        else:
            item.state, item.action, item.verified_at = State.VERIFIED, Action.SHADOWED, now
            item.source_row, item.reason = rows[item.object_key].row, ""
    _update_items(items, ["state", "action", "reason", "source_row", "verified_at"])


def _copy_chunk(run: MigrationRun, items: list[MigrationItem], sources: dict[str, Any]) -> None:
    if run.mode == MigrationRun.Mode.REMOVE_SHADOWED:
        _check_shadowed_chunk(run, items, sources)
        return
    deployment, object_type = run.deployment, run.object_type
    keys = [i.object_key for i in items]
    existing = {
        o.key: o
        for o in EnvironmentObject.objects.filter(
            _key_in("key", keys),
            workspace=run.workspace_id,
            scope=Scope.WORKSPACE,
            object_type=object_type,
        )
    }
    # Read in this chunk's transaction: a key linked since it was selected is a conflict too.
    conflicts = migration_conflicts(deployment=deployment, object_type=object_type, keys=keys)
    now = timezone.now()
    new_objects: dict[str, dict[str, Any]] = {}
    new_links: list[dict[str, Any]] = []
    expected: dict[str, dict[str, Any]] = {}
    made_secret: list[EnvironmentObject] = []
    linked: dict[int, list[str]] = {}  # existing objects linked here: their override fields
    for item in items:
        row = sources.get(item.object_key)
        item.reason = ""
        if row is None:
            item.state, item.reason = State.FAILED, "It is no longer in the metadata database."
            continue
        if item.object_key in conflicts:
            item.state, item.reason = State.CONFLICT, conflicts[item.object_key]
            continue
        try:
            values = object_types.clean_values(object_type, source_values(object_type, row))
            object_types.validate_key(object_type, item.object_key)
        except ItemRefused as exc:
            item.state, item.reason = State.FAILED, str(exc)
            continue
        except ValidationError as exc:
            item.state = State.FAILED
            item.reason = "Not a valid object here: " + "; ".join(
                f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()
            )
            continue
        item.source_row = row.row
        expected[item.object_key] = values
        workspace_object = existing.get(item.object_key)
        if workspace_object is None:
            item.action = MigrationItem.Action.CREATED
            new_objects[item.object_key] = {
                "workspace_id": run.workspace_id,
                "scope": Scope.WORKSPACE,
                "object_type": object_type,
                "key": item.object_key,
                "values": values,
                "created_at": now,
                "updated_at": now,
                "created_by_id": run.created_by_id,
                "updated_by_id": run.created_by_id,
            }
            continue
        # Not linked to this Deployment yet (a linked key is a conflict): a new link with the
        # override that makes it resolve to the source row's values.
        item.action = MigrationItem.Action.OVERRIDDEN
        item.environment_object_id = workspace_object.pk
        item.link_created, item.previous_overrides = True, None
        overrides = _overrides_to_reach(object_type, workspace_object.values, values)
        if object_types.secret_flag_lowered(values, workspace_object.values):
            made_secret.append(workspace_object)
        linked[workspace_object.pk] = list(overrides)
        new_links.append(
            _new_link(workspace_object.pk, object_type, item.object_key, deployment, overrides, now)
        )
    created = _insert_rows(EnvironmentObject, list(new_objects.values()), "key")
    for item in items:
        if item.action == MigrationItem.Action.CREATED and item.object_key in created:
            item.environment_object_id = created[item.object_key]
            item.link_created = True
            new_links.append(
                _new_link(
                    item.environment_object_id, object_type, item.object_key, deployment, {}, now
                )
            )
    if linked:  # their history says the run linked them here
        link_versions_record(
            override_fields=linked,
            reason=ObjectVersion.Reason.LINK,
            user=run.created_by,
            deployment=deployment,
            detail={"migrationRunId": run.pk},
        )
    _insert_rows(Link, new_links, "object_key")
    _make_secret(run, made_secret, now)
    _verify(run, items, expected)
    _update_items(
        items,
        [
            "state",
            "action",
            "reason",
            "environment_object",
            "link_created",
            "source_row",
            "previous_overrides",
            "verified_at",
        ],
    )


def _make_secret(run: MigrationRun, objects: list[EnvironmentObject], now: datetime) -> None:
    """A secret stays secret (as promotion has it): a secret-looking Airflow variable moved onto
    a plain Workspace variable becomes its override there, which every Author would see, so the
    Workspace variable becomes secret (nothing Airflow reads changes). Versioned and audited;
    undo leaves the flag set (a secret is never made plain again)."""
    for obj in objects:
        version_record(
            obj=obj,
            reason=ObjectVersion.Reason.UPDATE,
            user=run.created_by,
            changed_fields=["is_secret"],
            detail={"migrationRunId": run.pk},
        )
        obj.values = {**obj.values, "is_secret": True}
        obj.updated_at = now
        obj.save(update_fields=["values", "updated_at"])
        audit_record(
            workspace=run.workspace_id,
            actor=run.created_by,
            action="environment_object.update",
            obj=obj,
            deployment_id=run.deployment_id,
            fields=["is_secret"],
            detail={"madeSecret": True, "runId": run.pk},
        )


def _new_link(
    object_id: int,
    object_type: str,
    key: str,
    deployment: Deployment,
    overrides: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A new link's row, for `_insert_rows`."""
    return {
        "environment_object_id": object_id,
        "deployment_id": deployment.pk,
        "object_type": object_type,
        "object_key": key,
        "overrides": overrides,
        "created_at": now,
        "updated_at": now,
    }


def _overrides_to_reach(
    object_type: str, workspace_values: dict[str, Any], wanted: dict[str, Any]
) -> dict[str, Any]:
    """The override fields that make a Workspace object resolve to `wanted` on one link."""
    return {
        name: wanted[name]
        for name in object_types.SPECS[object_type].overridable
        if wanted.get(name) != workspace_values.get(name)
    }


def _stored_copies(
    deployment_id: int, object_type: str, keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """What the Deployment resolves for each key, from the tokens as stored now: each object's
    values and each link's overrides decrypted from the database (a token shared by many links,
    such as a chunk's empty overrides, once), never from what we meant to write."""
    read = JSONTokenReader()
    rows = (
        Link.objects.filter(_key_in("object_key", keys), deployment=deployment_id)
        .filter(object_type=object_type)
        .annotate(
            stored_values=ExpressionWrapper(
                F("environment_object__values"), output_field=TextField()
            ),
            stored_overrides=ExpressionWrapper(F("overrides"), output_field=TextField()),
        )
        .values_list("object_key", "stored_values", "stored_overrides")
    )
    return {
        key: object_types.apply_overrides(read(values), read(overrides) or {})
        for key, values, overrides in rows
    }


def _verify(
    run: MigrationRun, items: list[MigrationItem], expected: dict[str, dict[str, Any]]
) -> None:
    """Read our stored copies back from the database (decrypting what is stored afresh) and
    compare them field by field with the decrypted source. A mismatch withdraws that copy and
    fails it."""
    stored = _stored_copies(run.deployment_id, run.object_type, expected)
    now = timezone.now()
    for item in items:
        if item.object_key not in expected or item.state != State.SELECTED:
            continue
        want, have = expected[item.object_key], stored.get(item.object_key)
        fields = VERIFIED_FIELDS[run.object_type]
        if have is not None and all(have.get(f) == want.get(f) for f in fields):
            item.state, item.verified_at = State.VERIFIED, now
            continue
        differing = [f for f in fields if have is None or have.get(f) != want.get(f)]
        _withdraw_copy(item, run.deployment_id)
        item.state = State.FAILED
        item.reason = f"The stored copy did not match the source ({', '.join(differing)})."


def _withdraw_copy(item: MigrationItem, deployment_id: int) -> str:
    """Take back what the run created for one item, so the Deployment resolves as before. What
    happened to it since the run (`later_work`) is never taken back with it: an object edited,
    linked elsewhere or given an override since stays, with that work, and only this
    Deployment's part of it (its link, or the override the run made) is withdrawn.

    Returns what it did, in a sentence for the run's page ("" when the run made nothing)."""
    if item.environment_object_id is None:
        return ""
    obj = (
        EnvironmentObject.objects.select_for_update().filter(pk=item.environment_object_id).first()
    )
    if obj is None:
        item.environment_object_id, item.link_created = None, False
        return "The Workspace object had been deleted since; there was nothing to remove."
    link = (
        Link.objects.select_for_update()
        .filter(environment_object=obj, deployment=deployment_id)
        .first()
    )
    since = later_work(item, obj, link) if item.action == MigrationItem.Action.CREATED else []
    if item.action == MigrationItem.Action.CREATED and not since:
        EnvironmentObject.objects.filter(pk=obj.pk).delete()
        done = "Removed the Workspace object the migration made."
    elif item.action == MigrationItem.Action.CREATED or item.link_created:
        if link is not None:
            link_version_record(
                obj=obj,
                reason=ObjectVersion.Reason.UNLINK,
                user=None,
                deployment_id=deployment_id,
                detail={"migrationRunId": item.run_id},
            )
            link.delete()
        withdrew = "Withdrew this Deployment's link" if link else "It was no longer linked here"
        if item.action == MigrationItem.Action.CREATED:
            done = (
                f"{withdrew}; kept the Workspace object for the work done since: {' '.join(since)}"
            )
        else:
            done = f"{withdrew} to the existing Workspace object; the object stays."
    elif link is not None:
        before, after = set(link.overrides), set(item.previous_overrides or {})
        link_version_record(
            obj=obj,
            reason=ObjectVersion.Reason.OVERRIDE,
            user=None,
            deployment_id=deployment_id,
            set_fields=sorted(after),
            unset_fields=sorted(before - after),
            detail={"migrationRunId": item.run_id},
        )
        link.overrides = item.previous_overrides or {}
        link.updated_at = timezone.now()
        link.save(update_fields=["overrides", "updated_at"])
        done = (
            "Restored the override this Deployment had before on the Workspace object."
            if item.previous_overrides
            else "Removed the override the migration added to the Workspace object."
        )
    else:
        done = "The Workspace object's link to this Deployment had been removed since; kept as is."
    item.environment_object_id = None
    item.link_created = False
    return done


def later_work(item: MigrationItem, obj: EnvironmentObject | None, link: Link | None) -> list[str]:
    """What happened since the run to the object it made or overrode (`obj`, None when it was
    deleted) and to its link to the run's Deployment: the work an undo must not take back
    without the user saying so. Empty when it is as the run left it."""
    if item.action not in (Action.CREATED, Action.OVERRIDDEN) or item.state not in (
        State.VERIFIED,
        State.DELETED,
    ):
        return []
    if obj is None:
        return ["It was deleted since the migration."]
    since = item.verified_at or item.run.created_at
    reasons = []
    if item.action == MigrationItem.Action.CREATED:
        if obj.updated_at > since:
            reasons.append("It was edited since the migration.")
        others = obj.links.exclude(deployment_id=item.run.deployment_id).count()
        if others or obj.auto_link_deployments:
            reasons.append("It is linked to other Deployments or IDE projects now.")
        if link is None:
            reasons.append("It was unlinked from this Deployment since.")
        elif link.overrides:
            reasons.append("It was given an override on this Deployment since.")
    elif link is None:
        reasons.append("Its link to this Deployment was removed since.")
    elif link.updated_at > since:
        reasons.append("Its override on this Deployment was changed since.")
    return reasons


def _after_copy(run: MigrationRun) -> None:
    if not run.items.filter(state=State.VERIFIED).exists():
        _finish(run)
        return
    window = settings.ENVMANAGER_PROPAGATION_SECONDS
    now = timezone.now()
    with transaction.atomic():
        MigrationRun.objects.filter(pk=run.pk).update(
            status=Status.WAITING,
            delete_after=now + timedelta(seconds=window),
            lease_until=None,
            updated_at=now,
        )
        _audit_step(run, "migration.copied", propagationSeconds=window)
    logger.info("migration run %s copied and verified; deleting sources in %s s", run.pk, window)
    _enqueue("delete", run.pk, delay=window)


# Delete the source rows


def migration_delete_sources(*, run_id: int) -> None:
    """After the propagation window, delete each verified source row if it is unchanged since
    it was read; keep and report a changed one, and withdraw our copy of it."""
    run = MigrationRun.objects.filter(pk=run_id).first()
    if run is None or run.status not in (Status.WAITING, Status.DELETING):
        return
    remaining = (run.delete_after - timezone.now()).total_seconds() if run.delete_after else 0
    if remaining > 0:
        _enqueue("delete", run.pk, delay=remaining)  # delivered early: wait the window out
        return
    run = _claim(run_id, (Status.WAITING, Status.DELETING), Status.DELETING)
    if run is None:
        return
    try:
        with open_run_metadata_db(run) as db:
            for chunk in _item_pages(run, State.VERIFIED):
                _delete_chunk(run, db, chunk)
                _renew(run)
    except MetadataDbError as exc:
        # Nothing was deleted for the objects still VERIFIED; a retry resumes here.
        _fail_run(run, f"Deleting the source rows stopped: {exc}")
        return
    _finish(run)


UNRESOLVED = (
    "What the Deployment resolved for it was unlinked or deleted during the propagation window, "
    "so it would resolve nothing for it: the row was kept in Airflow."
)


def _delete_chunk(run: MigrationRun, db: AirflowMetadataDb, items: list[MigrationItem]) -> None:
    with transaction.atomic():
        # The links that make the Deployment resolve our copies, locked until the rows are
        # gone: an unlink or a delete of the object waits, and one made during the window
        # keeps its row in Airflow.
        resolving = dict(
            Link.objects.select_for_update()
            .filter(
                _key_in("object_key", [item.object_key for item in items]),
                deployment=run.deployment_id,
                object_type=run.object_type,
            )
            .values_list("object_key", "environment_object_id")
        )
        if run.mode == MigrationRun.Mode.REMOVE_SHADOWED:
            # No copy of ours: the row may go while the Deployment still resolves the key.
            unresolved = [item for item in items if item.object_key not in resolving]
        else:
            unresolved = [
                item
                for item in items
                if item.environment_object_id is None
                or resolving.get(item.object_key) != item.environment_object_id
            ]
        for item in unresolved:
            item.state, item.reason, item.deleted_at = State.KEPT_UNRESOLVED, UNRESOLVED, None
        items, unresolved_items = [i for i in items if i not in unresolved], unresolved
        rows = [item.source_row for item in items]
        if run.object_type == ObjectType.CONNECTION:
            deleted = db.delete_connections_if_unchanged(rows) if rows else []
        else:
            deleted = db.delete_variables_if_unchanged(rows) if rows else []
        not_deleted = [item.object_key for item, ok in zip(items, deleted, strict=True) if not ok]
        still_there = (
            set(read_source_rows(db, run.object_type, not_deleted)) if not_deleted else set()
        )
        now = timezone.now()
        for item, ok in zip(items, deleted, strict=True):
            item.deleted_at = now
            if ok:
                item.state = State.DELETED
            elif item.object_key not in still_there:
                # Gone already: deleted in Airflow, or by this run before a crash.
                item.state, item.reason = State.DELETED, "The source row was already gone."
            else:
                _withdraw_copy(item, run.deployment_id)
                item.state, item.deleted_at = State.KEPT_CHANGED, None
                item.reason = (
                    "It changed in Airflow after it was read, so it was kept there and not "
                    "migrated. Migrate it again to move the new value."
                )
        _update_items(
            [*items, *unresolved_items],
            ["state", "reason", "deleted_at", "environment_object", "link_created"],
        )


def _finish(run: MigrationRun) -> None:
    states = set(run.items.values_list("state", flat=True))
    if states == {State.DELETED}:
        status = Status.SUCCEEDED
    elif State.DELETED in states:
        status = Status.PARTIAL
    else:
        status = Status.FAILED
    now = timezone.now()
    with transaction.atomic():
        MigrationRun.objects.filter(pk=run.pk).update(
            status=status, lease_until=None, finished_at=now, updated_at=now
        )
        _audit_step(run, "migration.finished", status=status)
    logger.info("migration run %s finished: %s", run.pk, status)


# Undo


@dataclass(frozen=True)
class UndoPlanItem:
    key: str
    action: str
    # What was done since the run to what it made (empty: undo removes it cleanly).
    later_work: list[str]


def migration_undo_plan(*, run: MigrationRun) -> list[UndoPlanItem]:
    """What an undo would take back, object by object, and where it would meet work done
    since the run: shown before anything changes, so the user chooses for those."""
    items = run.items.filter(state__in=[State.VERIFIED, State.DELETED]).select_related(
        "environment_object", "run"
    )
    links = {
        link.environment_object_id: link
        for link in Link.objects.filter(
            deployment_id=run.deployment_id,
            environment_object__in=[i.environment_object_id for i in items if i.action],
        )
    }
    return [
        UndoPlanItem(
            key=item.object_key,
            action=item.action,
            later_work=later_work(
                item, item.environment_object, links.get(item.environment_object_id or 0)
            ),
        )
        for item in items
    ]


UNDO = "undo"
KEEP = "keep"


def migration_undo(
    *, user: User, run: MigrationRun, choices: dict[str, str] | None = None
) -> MigrationRun:
    """Start undoing a finished run: the deleted rows go back into the metadata DB, then the
    objects and overrides the run created are removed (in that order, so no lookup misses).

    Work done since the run is not taken back silently: for each object with `later_work`
    (see `migration_undo_plan`) the caller chooses `choices[key]`: "undo" (its row goes back
    and this Deployment's link or override is withdrawn; the object and its edits stay for
    everyone else) or "keep" (it stays migrated, its row is not written back). Without a
    choice for each of them nothing changes and the answer lists them."""
    require_workspace_perm(
        user, WorkspacePermission.MIGRATE_FROM_AIRFLOW, run.workspace, "undo a migration"
    )
    choices = dict(choices or {})
    bad = {k: v for k, v in choices.items() if v not in (UNDO, KEEP)}
    if bad:
        raise InvalidInput(
            'Each choice is "undo" or "keep".',
            {f"choices.{k}": 'Choose "undo" or "keep".' for k in bad},
        )
    # Undo writes rows back only into the database the run read: refuse before anything
    # changes when the Deployment's URL names another one now.
    with open_run_metadata_db(run):
        pass
    with transaction.atomic():
        run = MigrationRun.objects.select_for_update().get(pk=run.pk)
        if run.status not in (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED):
            raise Conflict(
                f"Only a finished run can be undone; this one is "
                f"{run.get_status_display().lower()}."
            )
        unanswered = {
            f"choices.{p.key}": " ".join(p.later_work)
            for p in migration_undo_plan(run=run)
            if p.later_work and p.key not in choices
        }
        if unanswered:
            keys = [k.removeprefix("choices.") for k in unanswered]
            shown = ", ".join(keys[:5]) + (" …" if len(keys) > 5 else "")
            raise Conflict(
                f"{len(unanswered)} of the objects this run moved were changed since: {shown}. "
                "Choose for each whether to undo it anyway (its row goes back to Airflow and "
                "this Deployment's link or override is withdrawn; the object and its changes "
                "stay for everyone else) or to leave it migrated. Nothing was changed.",
                unanswered,
            )
        kept = [k for k, v in choices.items() if v == KEEP]
        run.items.filter(object_key__in=kept, state__in=[State.VERIFIED, State.DELETED]).update(
            state=State.LEFT_MIGRATED, reason="Left migrated when the run was undone (chosen)."
        )
        run.status, run.updated_at, run.error = Status.UNDOING, timezone.now(), ""
        try:
            with transaction.atomic():
                run.save(update_fields=["status", "updated_at", "error"])
        except IntegrityError:
            raise Conflict(_busy(run.object_type)) from None
        audit_record(
            workspace=run.workspace_id,
            actor=user,
            action="migration.undo",
            object_type=run.object_type,
            deployment_id=run.deployment_id,
            detail={"runId": run.pk, "leftMigrated": sorted(kept)},
        )
        transaction.on_commit(lambda: _enqueue("undo", run.pk))
    return run


def migration_undo_apply(*, run_id: int) -> None:
    run = _claim(run_id, (Status.UNDOING,), Status.UNDOING)
    if run is None:
        return
    items = list(
        run.items.filter(state__in=[State.DELETED, State.VERIFIED]).select_related(
            "environment_object", "run"
        )
    )
    try:
        with open_run_metadata_db(run) as db:
            for chunk in _chunks(items, settings.ENVMANAGER_MIGRATION_CHUNK_SIZE):
                _undo_chunk(run, db, chunk)
                _renew(run)
    except MetadataDbError as exc:
        MigrationRun.objects.filter(pk=run.pk).update(
            error=f"Undo stopped: {exc}. Retry to resume.", lease_until=None
        )
        return
    now = timezone.now()
    with transaction.atomic():
        MigrationRun.objects.filter(pk=run.pk).update(
            status=Status.UNDONE, lease_until=None, finished_at=now, updated_at=now
        )
        _audit_step(run, "migration.undone")
    logger.info("migration run %s undone", run.pk)


def _undo_chunk(run: MigrationRun, db: AirflowMetadataDb, items: list[MigrationItem]) -> None:
    deleted = [item for item in items if item.state == State.DELETED]
    rows = [item.source_row for item in deleted]
    if rows:
        restore = (
            db.restore_connections
            if run.object_type == ObjectType.CONNECTION
            else db.restore_variables
        )
        restored = dict(zip([i.object_key for i in deleted], restore(rows), strict=True))
    else:
        restored = {}
    with transaction.atomic():
        for item in items:
            # What the undo did, for the run's page: to the row in Airflow, then to our copy.
            if item.object_key in restored and not restored[item.object_key]:
                row = "Airflow has a new row with this key; it was kept."
            elif item.object_key in restored:
                row = "Restored its row in Airflow."
            else:
                row = ""
            copy = _withdraw_copy(item, run.deployment_id)
            item.state = State.UNDONE
            item.reason = " ".join(part for part in (row, copy) if part)
        _update_items(items, ["state", "reason", "environment_object", "link_created"])


# Bulk writes of a chunk. On PostgreSQL each column goes as one array parameter in binary
# (UNNEST): a chunk's text and its Fernet tokens are neither quoted into the statement nor parsed
# again, which is most of what Django's bulk_create and bulk_update spend on a chunk. Elsewhere
# (SQLite, the embedded default) Django's bulk_create and a VALUES list do it.


@contextmanager
def _binary_cursor() -> Iterator[Any]:
    """A server-side-binding cursor on the connection Django uses, inside its transaction; its
    errors are Django's (an IntegrityError is django.db.IntegrityError, as from the ORM)."""
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _unnest(fields: list[Any], *, pk: bool = False) -> str:
    types = (["bigint"] if pk else []) + [f.db_type(connection) for f in fields]
    casts = ", ".join(f"CAST(%b AS {t}[])" for t in types)
    return f"SELECT * FROM UNNEST({casts})"  # noqa: S608 - types from the model


def _column(field: Any, values: list[Any]) -> list[Any]:
    """One column's values as PostgreSQL takes them. Only encrypted fields need their field's
    conversion (encryption); ids, text, booleans and aware datetimes go as they are, which
    saves the per-value cost of get_db_prep_save on every other column."""
    if isinstance(field, EncryptedJSONField):
        # A chunk's links without overrides share one token of `{}` (see json_tokens).
        return json_tokens(values, share_empty=field.model is Link and field.name == "overrides")
    if isinstance(field, EncryptedTextField):
        db = connections[DEFAULT_DB_ALIAS]  # not the proxy: it costs a lookup per attribute
        return [field.get_db_prep_save(value, db) for value in values]
    return values


def _insert_rows(model: Any, rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Insert new rows of `model` (each a dict of field attnames to values; the fields left out
    take their defaults) in one statement, without a model instance per row. `key` names a
    field unique among them; returns each row's new id by its `key`."""
    if not rows:
        return {}
    if connection.vendor != "postgresql":
        objs = model.objects.bulk_create([model(**row) for row in rows])
        return {getattr(obj, key): obj.pk for obj in objs}
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = []
    for f in fields:
        if f.attname in rows[0]:
            columns.append(_column(f, [row[f.attname] for row in rows]))
        else:
            columns.append(_column(f, [f.get_default() for _ in rows]))
    key_column = quote(model._meta.get_field(key).column)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 - names from the model
        f"{_unnest(fields)} RETURNING {quote(model._meta.pk.column)}, {key_column}"
    )
    with _binary_cursor() as cursor:
        cursor.execute(sql, columns)
        return {k: pk for pk, k in cursor.fetchall()}


def _update_items(items: list[MigrationItem], fields: list[str]) -> None:
    """Write `fields` of many items in one statement (UPDATE … FROM a list of rows): what
    Django's bulk_update does with a CASE per field and row, at a fraction of its cost."""
    if not items:
        return
    quote = connection.ops.quote_name
    model_fields = [cast("Field[Any, Any]", MigrationItem._meta.get_field(name)) for name in fields]
    table = quote(MigrationItem._meta.db_table)
    pk = quote(MigrationItem._meta.pk.column)
    names = ["pk", *(f"f{i}" for i in range(len(model_fields)))]
    assignments = ", ".join(f"{quote(f.column)} = v.f{i}" for i, f in enumerate(model_fields))
    update = f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{pk} = v.pk"  # noqa: S608 - names from the model
    if connection.vendor == "postgresql":
        columns = [[item.pk for item in items]] + [
            _column(f, [getattr(item, f.attname) for item in items]) for f in model_fields
        ]
        with _binary_cursor() as cursor:
            cursor.execute(
                f"WITH v({', '.join(names)}) AS ({_unnest(model_fields, pk=True)}) {update}",
                columns,
            )
        return
    db = connections[DEFAULT_DB_ALIAS]
    columns = [[item.pk for item in items]] + [
        [f.get_db_prep_save(getattr(item, f.attname), db) for item in items] for f in model_fields
    ]
    rows = list(zip(*columns, strict=True))
    per_statement = max(1, UPDATE_PARAMETERS // len(names))
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            cursor.execute(
                f"WITH v({', '.join(names)}) AS (VALUES {', '.join([row] * len(batch))}) {update}",
                [value for values in batch for value in values],
            )


# Parameters per statement, well under SQLite's 32,766.
UPDATE_PARAMETERS = 30_000
