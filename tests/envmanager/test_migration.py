"""Migrate from Airflow, against metadata databases made by real Airflow (SQLite and
PostgreSQL), run in the embedded default (eager Celery) unless a test says otherwise."""

import json
import os
import sqlite3

import psycopg
import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from accounts.models import AuditEvent
from deployments.airflow_metadata import AirflowMetadataDb, MetadataDbUnusable, WrongFernetKey
from deployments.models import Deployment
from deployments.services import deployment_create, deployment_update
from envmanager.kernel.errors import Conflict, InvalidInput, NotPermitted
from envmanager.models import EnvironmentObject, Link, MigrationItem, MigrationRun, ObjectVersion
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import (
    environment_object_create,
    environment_object_delete,
    link_create,
    link_delete,
)
from envmanager.services.migration import (
    migration_candidates,
    migration_copy,
    migration_delete_sources,
    migration_retry,
    migration_start,
    migration_undo,
)
from tests.airflow_support import drop_metadata_db, make_metadata_db

pytestmark = pytest.mark.airflow

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
BIG_EXTRA = {f"key_{i}": "v" * 100 for i in range(800)}  # about 90 KB

CONNECTIONS = {
    "warehouse": {
        "conn_type": "postgres",
        "host": "db.internal",
        "login": "etl",
        "password": "p:a/s@s?w#o%rd",
        "schema": "analytics",
        "port": 5432,
        "extra": {"sslmode": "require"},
        "description": "Main warehouse",
    },
    "unicode_conn": {
        "conn_type": "http",
        "host": "api.example.com",
        "login": "zoë",
        "password": "pässwörd-日本語",
        "extra": {"note": "naïve ☃"},
    },
    "big_extra": {"conn_type": "generic", "extra": BIG_EXTRA},
    "no_password": {"conn_type": "ftp", "host": "ftp.example.com", "login": "anonymous"},
    # Empty text and an empty extra, which stay apart from unset.
    "empty_strings": {
        "conn_type": "ftp",
        "description": "",
        "host": "",
        "schema": "",
        "login": "",
        "extra": "{}",  # as text: Airflow's import cannot take an empty dict
    },
}
VARIABLES = {
    "env": "production",
    "config_json": '{"retries": 3, "targets": ["a", "b"]}',
    "api_token": "tok-123",
    "with_description": {"value": "v1", "description": "a described variable"},
}


def airflow_values(conn: dict) -> dict:
    """A seeded connection as Airflow holds it: a field left out is NULL, unset here too."""
    extra = conn.get("extra")
    return {
        "conn_type": conn["conn_type"],
        **{
            name: conn.get(name)
            for name in ("description", "host", "schema", "login", "password", "port")
        },
        "extra": json.loads(extra) if isinstance(extra, str) else extra,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def metadata(team, tmp_path, backend):
    """The team's production Deployment pointed at a fresh Airflow metadata DB."""
    url = make_metadata_db(
        tmp_path, backend=backend, fernet_key=NEW_KEY, connections=CONNECTIONS, variables=VARIABLES
    )
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=NEW_KEY
    )
    team.deployment.refresh_from_db()
    yield url
    if backend == "postgresql":
        drop_metadata_db(url)


def source(deployment: Deployment):
    return AirflowMetadataDb(deployment.metadata_db_url, deployment.fernet_key)


def run_migration(team, object_type, keys, capture, user=None):
    with capture(execute=True):
        run = migration_start(
            user=user or team.owner,
            deployment=team.deployment,
            object_type=object_type,
            object_keys=keys,
        )
    run.refresh_from_db()
    return run


def resolved(deployment, object_type):
    env = deployment_resolved_environment(deployment)[object_type]
    return {key: item.values for key, item in env.items()}


def test_connections_move_with_every_field_equal_and_rows_deleted(
    team, metadata, django_capture_on_commit_callbacks
):
    run = run_migration(team, "CONNECTION", list(CONNECTIONS), django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.SUCCEEDED
    assert set(run.items.values_list("state", flat=True)) == {MigrationItem.State.DELETED}
    env = resolved(team.deployment, "CONNECTION")
    for conn_id, conn in CONNECTIONS.items():
        assert env[conn_id] == airflow_values(conn), conn_id
        obj = EnvironmentObject.objects.get(key=conn_id, object_type="CONNECTION")
        assert obj.scope == "WORKSPACE"
        assert [link.deployment_id for link in obj.links.all()] == [team.deployment.pk]
    assert resolved(team.other_deployment, "CONNECTION") == {}
    with source(team.deployment) as db:
        assert db.connections() == []
        assert db.count_variables() == len(VARIABLES)


def test_variables_move_and_secret_looking_keys_stay_secret(
    team, metadata, django_capture_on_commit_callbacks
):
    run = run_migration(
        team, "AIRFLOW_VARIABLE", list(VARIABLES), django_capture_on_commit_callbacks
    )
    assert run.status == MigrationRun.Status.SUCCEEDED
    env = resolved(team.deployment, "AIRFLOW_VARIABLE")
    assert env["config_json"]["value"] == VARIABLES["config_json"]
    assert env["with_description"] == {
        "value": "v1",
        "description": "a described variable",
        "is_secret": False,
    }
    assert env["api_token"]["is_secret"] is True
    with source(team.deployment) as db:
        assert db.count_variables() == 0


def test_an_existing_workspace_key_gets_an_override_not_a_duplicate(
    team, metadata, django_capture_on_commit_callbacks
):
    existing = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={
            **airflow_values(CONNECTIONS["warehouse"]),
            "password": "staging-pw",
            "host": "staging.internal",
        },
    )
    link_create(user=team.owner, obj=existing, deployment=team.other_deployment)
    statuses = {
        c.object_key: c.status
        for c in migration_candidates(
            user=team.owner, deployment=team.deployment, object_type="CONNECTION"
        )
    }
    assert statuses["warehouse"] == "EXISTS_IN_WORKSPACE"
    assert statuses["no_password"] == "NEW"
    run = run_migration(team, "CONNECTION", ["warehouse"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.SUCCEEDED
    assert EnvironmentObject.objects.filter(key="warehouse").count() == 1
    link = Link.objects.get(environment_object=existing, deployment=team.deployment)
    assert link.overrides == {"host": "db.internal", "password": "p:a/s@s?w#o%rd"}
    assert resolved(team.deployment, "CONNECTION")["warehouse"]["password"] == "p:a/s@s?w#o%rd"
    assert resolved(team.other_deployment, "CONNECTION")["warehouse"]["password"] == "staging-pw"


def test_a_secret_looking_variable_moved_onto_a_plain_workspace_one_makes_it_secret(
    team, metadata, django_capture_on_commit_callbacks
):
    """Its value becomes the override of a plain Workspace variable, which every Author would
    see: the Workspace variable becomes secret (as promotion does), versioned and audited, and
    stays secret after an undo."""
    plain = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="api_token",
        values={"value": "staging-token", "is_secret": False},
    )
    link_create(user=team.owner, obj=plain, deployment=team.other_deployment)
    run = run_migration(team, "AIRFLOW_VARIABLE", ["api_token"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.SUCCEEDED
    plain.refresh_from_db()
    assert plain.values["is_secret"] is True
    assert plain.values["value"] == "staging-token"
    assert resolved(team.deployment, "AIRFLOW_VARIABLE")["api_token"]["value"] == "tok-123"
    assert resolved(team.other_deployment, "AIRFLOW_VARIABLE")["api_token"]["value"] == (
        "staging-token"
    )
    versions = ObjectVersion.objects.filter(environment_object_id=plain.pk, reason="UPDATE")
    assert [v.changed_fields for v in versions] == [["is_secret"]]
    event = AuditEvent.objects.get(action="environment_object.update", object_key="api_token")
    assert event.detail == {"madeSecret": True, "runId": run.pk}
    with django_capture_on_commit_callbacks(execute=True):
        migration_undo(user=team.owner, run=run)
    plain.refresh_from_db()
    assert plain.values["is_secret"] is True


def test_a_key_the_deployment_owns_is_a_conflict_and_left_in_airflow(
    team, metadata, django_capture_on_commit_callbacks
):
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    run = run_migration(
        team, "CONNECTION", ["warehouse", "no_password"], django_capture_on_commit_callbacks
    )
    assert run.status == MigrationRun.Status.PARTIAL
    assert run.items.get(object_key="warehouse").state == MigrationItem.State.CONFLICT
    with source(team.deployment) as db:
        assert [c.conn_id for c in db.connections()] == [
            "big_extra",
            "empty_strings",
            "unicode_conn",
            "warehouse",
        ]


def test_a_wrong_fernet_key_is_refused_when_saved_and_before_anything_changes(team, metadata):
    wrong = Fernet.generate_key().decode()
    with pytest.raises(WrongFernetKey):
        deployment_update(user=team.owner, deployment=team.deployment, fernet_key=wrong)
    team.deployment.refresh_from_db()
    assert team.deployment.fernet_key == NEW_KEY
    # Airflow's key changed after it was saved here: the run refuses before anything changes.
    Deployment.objects.filter(pk=team.deployment.pk).update(fernet_key=wrong)
    team.deployment.refresh_from_db()
    with pytest.raises(WrongFernetKey) as error:
        migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=["warehouse"],
        )
    assert "Fernet key" in error.value.message
    assert not MigrationRun.objects.exists() and not EnvironmentObject.objects.exists()
    Deployment.objects.filter(pk=team.deployment.pk).update(fernet_key=NEW_KEY)
    team.deployment.refresh_from_db()
    with source(team.deployment) as db:
        assert db.count_connections() == len(CONNECTIONS)


@pytest.mark.parametrize(
    ("object_type", "table", "keys"),
    [("CONNECTION", "connection", CONNECTIONS), ("AIRFLOW_VARIABLE", "variable", VARIABLES)],
)
def test_the_start_reads_the_selected_rows_once_per_chunk_not_once_per_key(
    team, metadata, settings, monkeypatch, object_type, table, keys
):
    """The start checks that every selected row exists and that the key opens it: one read of
    the table per chunk of keys, whatever the chunk's size (a read per key made a start of
    10,000 keys take minutes)."""
    settings.ENVMANAGER_MIGRATION_CHUNK_SIZE = 2
    reads: list[str] = []
    real_execute = AirflowMetadataDb._execute

    def counted(self, sql, params=()):
        if sql.startswith("SELECT") and f'FROM "{table}"' in sql:
            reads.append(sql)
        return real_execute(self, sql, params)

    monkeypatch.setattr(AirflowMetadataDb, "_execute", counted)
    run = migration_start(
        user=team.owner, deployment=team.deployment, object_type=object_type, object_keys=keys
    )
    assert run.items.count() == len(keys)
    assert len(reads) == -(-len(keys) // 2)  # one per chunk of 2


def test_a_rotated_key_pair_reads_rows_written_with_the_old_key(
    team, tmp_path, django_capture_on_commit_callbacks
):
    url = make_metadata_db(tmp_path, backend="sqlite", fernet_key=OLD_KEY, connections=CONNECTIONS)
    deployment_update(
        user=team.owner,
        deployment=team.deployment,
        metadata_db_url=url,
        fernet_key=f"{NEW_KEY},{OLD_KEY}",
    )
    run = run_migration(team, "CONNECTION", list(CONNECTIONS), django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.SUCCEEDED
    assert resolved(team.deployment, "CONNECTION")["warehouse"]["password"] == "p:a/s@s?w#o%rd"


def test_a_database_gone_since_it_was_saved_changes_nothing(team, tmp_path):
    url = make_metadata_db(tmp_path, backend="sqlite", fernet_key=NEW_KEY, connections=CONNECTIONS)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=NEW_KEY
    )
    team.deployment.refresh_from_db()
    os.remove(url.removeprefix("sqlite:///"))
    with pytest.raises(MetadataDbUnusable):
        migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=["warehouse"],
        )
    assert not MigrationRun.objects.exists()
    assert not os.path.exists(url.removeprefix("sqlite:///"))  # nothing was created there


@pytest.mark.parametrize("role", ["OPERATOR", "AUTHOR", "MEMBER"])
def test_only_owners_migrate(team, metadata, role):
    with pytest.raises(NotPermitted):
        migration_start(
            user=team.user(role),
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=["warehouse"],
        )


def test_remote_execution_deployments_are_refused(team, metadata):
    remote = deployment_create(
        user=team.owner, workspace=team.workspace, name="remote", kind="REMOTE_EXECUTION"
    )
    # A database has one Deployment: the Remote Execution one takes this one over.
    deployment_update(user=team.owner, deployment=team.deployment, metadata_db_url="")
    deployment_update(
        user=team.owner, deployment=remote, metadata_db_url=metadata, fernet_key=NEW_KEY
    )
    remote.refresh_from_db()
    with pytest.raises(InvalidInput):
        migration_start(
            user=team.owner, deployment=remote, object_type="CONNECTION", object_keys=["warehouse"]
        )


def test_source_rows_wait_out_the_propagation_window(
    team, metadata, settings, django_capture_on_commit_callbacks
):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    run = run_migration(team, "CONNECTION", ["warehouse"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.WAITING
    # Both copies exist during the window: the Deployment resolves it from us already.
    assert "warehouse" in resolved(team.deployment, "CONNECTION")
    migration_delete_sources(run_id=run.pk)  # early: does nothing
    with source(team.deployment) as db:
        assert [c.conn_id for c in db.connections(["warehouse"])] == ["warehouse"]
    MigrationRun.objects.filter(pk=run.pk).update(delete_after=timezone.now())
    migration_delete_sources(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.SUCCEEDED


def _change_row(url: str, conn_id: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute(
                "UPDATE connection SET host = 'edited.in.airflow' WHERE conn_id = ?", (conn_id,)
            )
    else:
        with psycopg.connect(url) as db:
            db.execute(
                "UPDATE connection SET host = 'edited.in.airflow' WHERE conn_id = %s", (conn_id,)
            )


def test_a_row_changed_in_airflow_meanwhile_is_kept_and_reported(
    team, metadata, settings, django_capture_on_commit_callbacks
):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    run = run_migration(
        team, "CONNECTION", ["warehouse", "no_password"], django_capture_on_commit_callbacks
    )
    _change_row(metadata, "warehouse")
    MigrationRun.objects.filter(pk=run.pk).update(delete_after=timezone.now())
    migration_delete_sources(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.PARTIAL
    kept = run.items.get(object_key="warehouse")
    assert kept.state == MigrationItem.State.KEPT_CHANGED and "changed in Airflow" in kept.reason
    # Our copy is withdrawn, so the Deployment falls back to what Airflow has now.
    assert "warehouse" not in resolved(team.deployment, "CONNECTION")
    with source(team.deployment) as db:
        rows = {c.conn_id: c for c in db.connections()}
    assert rows["warehouse"].host == "edited.in.airflow"
    assert "no_password" not in rows


def test_a_copy_unlinked_or_deleted_during_the_window_keeps_its_row_in_airflow(
    team, metadata, settings, django_capture_on_commit_callbacks
):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    keys = ["warehouse", "no_password", "unicode_conn"]
    run = run_migration(team, "CONNECTION", keys, django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.WAITING
    copies = {item.object_key: item.environment_object for item in run.items.all()}
    link = Link.objects.get(environment_object=copies["warehouse"], deployment=team.deployment)
    link_delete(user=team.owner, link=link)
    environment_object_delete(user=team.owner, obj=copies["no_password"])
    MigrationRun.objects.filter(pk=run.pk).update(delete_after=timezone.now())
    migration_delete_sources(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.PARTIAL
    states = dict(run.items.values_list("object_key", "state"))
    assert states == {
        "warehouse": MigrationItem.State.KEPT_UNRESOLVED,
        "no_password": MigrationItem.State.KEPT_UNRESOLVED,
        "unicode_conn": MigrationItem.State.DELETED,
    }
    assert "unlinked or deleted" in run.items.get(object_key="warehouse").reason
    # The Deployment resolves those keys from Airflow again, as before the migration.
    with source(team.deployment) as db:
        assert [
            c.conn_id for c in db.connections(["warehouse", "no_password", "unicode_conn"])
        ] == [
            "no_password",
            "warehouse",
        ]


def test_connections_and_variables_migrate_at_the_same_time(
    team, metadata, settings, django_capture_on_commit_callbacks
):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    connections = run_migration(
        team, "CONNECTION", ["warehouse"], django_capture_on_commit_callbacks
    )
    assert connections.status == MigrationRun.Status.WAITING
    variables = run_migration(team, "AIRFLOW_VARIABLE", ["env"], django_capture_on_commit_callbacks)
    assert variables.status == MigrationRun.Status.WAITING
    # Two runs that could touch the same key never overlap.
    with pytest.raises(Conflict) as error:
        migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=["unicode_conn"],
        )
    assert "connections is under way" in error.value.message
    assert MigrationRun.objects.count() == 2


def test_a_failed_run_can_be_retried_and_resumes(
    team, metadata, backend, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        run = migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=list(CONNECTIONS),
        )
    path = metadata.removeprefix("sqlite:///") if backend == "sqlite" else None
    if path:
        os.rename(path, path + ".away")  # the database is gone for a while
    else:
        Deployment.objects.filter(pk=team.deployment.pk).update(
            fernet_key=Fernet.generate_key().decode()
        )
    migration_copy(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.FAILED and run.error
    assert not EnvironmentObject.objects.exists()
    if path:
        os.rename(path + ".away", path)
    else:
        Deployment.objects.filter(pk=team.deployment.pk).update(fernet_key=NEW_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        migration_retry(user=team.owner, run=run)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.SUCCEEDED
    assert EnvironmentObject.objects.count() == len(CONNECTIONS)


def test_undo_puts_rows_back_and_removes_what_the_run_created(
    team, metadata, django_capture_on_commit_callbacks
):
    existing = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={**airflow_values(CONNECTIONS["warehouse"]), "password": "other"},
    )
    link = link_create(
        user=team.owner,
        obj=existing,
        deployment=team.other_deployment,
        overrides={"login": "before"},
    )
    with source(team.deployment) as db:
        before = {c.conn_id: c for c in db.connections()}
    run = run_migration(team, "CONNECTION", list(CONNECTIONS), django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.SUCCEEDED
    assert run.items.get(object_key="warehouse").action == MigrationItem.Action.OVERRIDDEN
    with django_capture_on_commit_callbacks(execute=True):
        migration_undo(user=team.owner, run=run)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.UNDONE
    with source(team.deployment) as db:
        after = {c.conn_id: c for c in db.connections()}
    assert set(after) == set(before)
    for conn_id, row in before.items():
        assert after[conn_id].row == row.row, conn_id
        assert after[conn_id].password == row.password
    assert list(EnvironmentObject.objects.values_list("key", flat=True)) == ["warehouse"]
    assert list(existing.links.all()) == [link]  # the override the run made is gone
    link.refresh_from_db()
    assert link.overrides == {"login": "before"}


def test_the_history_of_an_existing_object_says_the_run_linked_it_and_the_undo_unlinked_it(
    team, metadata, django_capture_on_commit_callbacks
):
    existing = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={**airflow_values(CONNECTIONS["warehouse"]), "password": "other"},
    )
    run = run_migration(team, "CONNECTION", ["warehouse"], django_capture_on_commit_callbacks)
    assert run.items.get(object_key="warehouse").action == MigrationItem.Action.OVERRIDDEN
    linked = ObjectVersion.objects.get(
        environment_object_id=existing.pk, reason=ObjectVersion.Reason.LINK
    )
    assert linked.detail == {
        "deploymentId": team.deployment.pk,
        "deploymentName": "production",
        "overrideFields": ["password"],
        "migrationRunId": run.pk,
    }
    assert linked.changed_fields == ["password"] and linked.created_by == team.owner
    assert linked.snapshot["links"] == []  # the object as it was before the run linked it
    with django_capture_on_commit_callbacks(execute=True):
        migration_undo(user=team.owner, run=run)
    unlinked = ObjectVersion.objects.get(
        environment_object_id=existing.pk, reason=ObjectVersion.Reason.UNLINK
    )
    assert unlinked.detail == {
        "deploymentId": team.deployment.pk,
        "deploymentName": "production",
        "migrationRunId": run.pk,
    }
    assert [link["deployment_id"] for link in unlinked.snapshot["links"]] == [team.deployment.pk]
    assert (
        unlinked.snapshot["links"][0]["overrides"]["password"]
        == CONNECTIONS["warehouse"]["password"]
    )
    assert not existing.links.exists()


def test_undo_is_owner_only_and_only_for_finished_runs(
    team, metadata, settings, django_capture_on_commit_callbacks
):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    run = run_migration(team, "CONNECTION", ["warehouse"], django_capture_on_commit_callbacks)
    with pytest.raises(NotPermitted):
        migration_undo(user=team.operator, run=run)
    with pytest.raises(Conflict):
        migration_undo(user=team.owner, run=run)  # still waiting


def test_extra_that_is_not_a_json_object_fails_that_object_only(
    team, tmp_path, django_capture_on_commit_callbacks
):
    url = make_metadata_db(
        tmp_path,
        backend="sqlite",
        fernet_key=NEW_KEY,
        connections={"ok": {"conn_type": "http"}, "bad": {"conn_type": "http"}},
    )
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        # Older Airflow versions accepted any JSON here; 3.x refuses it on import.
        db.execute(
            "UPDATE connection SET extra = '[1, 2]', is_extra_encrypted = 0 WHERE conn_id = 'bad'"
        )
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=NEW_KEY
    )
    run = run_migration(team, "CONNECTION", ["ok", "bad"], django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.PARTIAL
    bad = run.items.get(object_key="bad")
    assert bad.state == MigrationItem.State.FAILED and "JSON object" in bad.reason
    with source(team.deployment) as db:
        assert [c.conn_id for c in db.connections()] == ["bad"]


def test_nothing_secret_is_logged(team, metadata, caplog, django_capture_on_commit_callbacks):
    caplog.set_level("DEBUG")
    run_migration(team, "CONNECTION", list(CONNECTIONS), django_capture_on_commit_callbacks)
    logged = caplog.text + json.dumps([r.args for r in caplog.records], default=str)
    for conn in CONNECTIONS.values():
        if conn.get("password"):
            assert conn["password"] not in logged
    assert NEW_KEY not in logged
