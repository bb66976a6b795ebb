"""A Deployment's metadata-DB URL is a door the server opens for the user: it opens only onto
the operator's allowlist, never onto the app's own database, one database to one Deployment,
only Owners set it, and a migration run only ever touches the database it read. Every attack
of the security review is a test here; each checks the answer and that the target is
untouched."""

import hashlib
import os
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from deployments.airflow_metadata import AirflowMetadataDb
from deployments.metadata_db_target import metadata_db_target
from deployments.models import Deployment
from deployments.services import SHARED_DATABASE, deployment_update
from envmanager.kernel.errors import MetadataDbChanged, MetadataDbError, MetadataDbUnusable
from envmanager.models import EnvironmentObject, MigrationRun
from envmanager.services.migration import (
    migration_copy,
    migration_delete_sources,
    migration_start,
    migration_undo,
)

CONNECTIONS = {
    "s3_raw": {"conn_type": "aws", "login": "AKIA", "password": "door-secret-1"},
    "warehouse": {"conn_type": "postgres", "host": "db", "password": "door-secret-2"},
}


def patch_url(api, team, user, url, key=None):
    body = {"metadataDbUrl": url, **({"fernetKey": key} if key is not None else {})}
    return api.as_user(user).patch(
        f"/api/v1/workspaces/{team.workspace.pk}/deployments/{team.deployment.pk}",
        body,
        format="json",
    )


def digest(url: str) -> str:
    return hashlib.sha256(Path(url.removeprefix("sqlite:///")).read_bytes()).hexdigest()


def stored(team) -> Deployment:
    return Deployment.objects.get(pk=team.deployment.pk)


# One database, one Deployment


def test_another_workspaces_database_is_refused_naming_no_one(
    api, team, other_team, airflow_sqlite
):
    url, key = airflow_sqlite("victim.db", CONNECTIONS)
    assert patch_url(api, other_team, other_team.owner, url, key).status_code == 200
    before = digest(url)
    path = url.removeprefix("sqlite:///")
    os.symlink(path, Path(path).parent / "alias.db")
    spellings = [
        url,
        f"sqlite:///{Path(path).parent}/./sub/../victim.db",
        f"sqlite:///{Path(path).parent}/alias.db",
    ]
    os.mkdir(Path(path).parent / "sub")
    for spelling in spellings:
        response = patch_url(api, team, team.owner, spelling, key)
        assert response.status_code == 409, spelling
        body = response.content.decode()
        assert SHARED_DATABASE in body
        for name in ("Other Company", "production", "other-owner", "s3_raw"):
            assert name not in body
    assert stored(team).metadata_db_url == ""
    assert digest(url) == before
    assert not AuditEvent.objects.filter(
        workspace=other_team.workspace, action="deployment.update", actor=team.owner
    ).exists()


def test_a_second_deployment_of_the_same_workspace_is_refused_too(api, team, airflow_sqlite):
    url, key = airflow_sqlite()
    assert patch_url(api, team, team.owner, url, key).status_code == 200
    response = api.as_user(team.owner).patch(
        f"/api/v1/workspaces/{team.workspace.pk}/deployments/{team.other_deployment.pk}",
        {"metadataDbUrl": url, "fernetKey": key},
        format="json",
    )
    assert response.status_code == 409
    # The database constraint holds even when the service's check is skipped.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.filter(pk=team.other_deployment.pk).update(
            metadata_db_fingerprint=stored(team).metadata_db_fingerprint
        )


@pytest.mark.airflow
def test_localhost_and_127_0_0_1_are_one_postgresql_database(api, team, other_team, tmp_path):
    from tests.airflow_support import drop_metadata_db, make_metadata_db

    key = "4V2Kz8lfbUeaRg7mDJmPPQmuWvc9y3aVwZHGPkq6a9M="
    url = make_metadata_db(tmp_path, backend="postgresql", fernet_key=key, connections={})
    try:
        assert url.startswith("postgresql://postgres@127.0.0.1:5432/")
        assert patch_url(api, other_team, other_team.owner, url, key).status_code == 200
        alias = url.replace("@127.0.0.1:5432/", "@localhost:5432/")
        assert patch_url(api, team, team.owner, alias, key).status_code == 409
        assert patch_url(api, team, team.owner, alias.replace(":5432/", "/"), key).status_code == (
            409
        )
    finally:
        drop_metadata_db(url)


# Only what the allowlist admits, never the app's own database


def refusals(api, team, urls: list[str]) -> list[tuple[int, dict]]:
    answers = []
    for url in urls:
        response = patch_url(api, team, team.owner, url)
        body = response.json()
        body.pop("requestId")
        answers.append((response.status_code, body))
    return answers


def test_every_refusal_answers_the_same(api, team, tmp_path, settings, airflow_sqlite):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside, _ = airflow_sqlite("outside.db", CONNECTIONS)  # a real one, off the list
    (allowed / "notes.txt").write_text("not a database")
    (allowed / "empty.db").write_bytes(b"")
    (allowed / "folder.db").mkdir()
    os.symlink(outside.removeprefix("sqlite:///"), allowed / "link.db")
    settings.ENVMANAGER_METADATA_DB_ALLOWLIST = [str(allowed), "/etc", "127.0.0.1"]
    before = digest(outside)
    urls = [
        outside,  # off the allowlist
        f"sqlite:///{allowed}/../outside.db",  # `..` out of an allowed folder
        f"sqlite:///{allowed}/link.db",  # a symlink out of it
        f"sqlite:///{allowed}/missing.db",
        f"sqlite:///{allowed}/notes.txt",
        f"sqlite:///{allowed}/empty.db",
        f"sqlite:///{allowed}/folder.db",
        "sqlite:////etc/passwd",  # listed, readable, not a database
        "sqlite:////etc/shadow",
        "sqlite:////proc/self/environ",
        "postgresql://postgres@127.0.0.1:1/airflow",  # a closed port
        "postgresql://postgres@127.0.0.1:5432/postgres",  # a database without Airflow's tables
        "postgresql://postgres@127.0.0.1:5432/no_such_database",
        "postgresql://postgres@10.255.255.1:5432/airflow",  # off the allowlist
        "postgresql://postgres@127.0.0.2:5432/airflow",
    ]
    answers = refusals(api, team, urls)
    assert answers[0][0] == 400
    assert answers[0][1]["message"] == MetadataDbUnusable.MESSAGE
    for url, answer in zip(urls, answers, strict=True):
        assert answer == answers[0], url
    assert digest(outside) == before
    assert not (allowed / "missing.db").exists()  # nothing was created
    assert (allowed / "empty.db").read_bytes() == b""
    assert stored(team).metadata_db_url == ""


def test_a_postgresql_server_off_the_allowlist_is_not_opened(api, team, settings):
    settings.ENVMANAGER_METADATA_DB_ALLOWLIST = ["db.example.invalid", "127.0.0.1:6543"]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        pg.execute("DROP DATABASE IF EXISTS envmanager_door_victim")
        pg.execute("CREATE DATABASE envmanager_door_victim")
    try:
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/envmanager_door_victim", autocommit=True
        ) as victim:
            victim.execute("CREATE TABLE connection (conn_id text)")
            victim.execute("CREATE TABLE variable (key text)")
            victim.execute("INSERT INTO connection VALUES ('victim_row')")
            url = "postgresql://postgres@127.0.0.1:5432/envmanager_door_victim"
            response = patch_url(api, team, team.owner, url)
            assert response.status_code == 400
            assert MetadataDbUnusable.MESSAGE in response.content.decode()
            assert "victim_row" not in response.content.decode()
            sessions = victim.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'envmanager'"
            ).fetchone()[0]
            assert sessions == 0
            assert victim.execute("SELECT count(*) FROM connection").fetchone()[0] == 1
    finally:
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
        ) as pg:
            pg.execute("DROP DATABASE IF EXISTS envmanager_door_victim WITH (FORCE)")


def test_the_apps_own_database_is_refused_even_when_listed(api, team, settings):
    data = Path(django_settings.DATA_DIR)
    settings.ENVMANAGER_METADATA_DB_ALLOWLIST = [str(data), "127.0.0.1", "localhost"]
    own = connection.settings_dict
    if connection.vendor == "sqlite":
        urls = [f"sqlite:///{os.path.realpath(own['NAME'])}"]
    else:
        port = own.get("PORT") or 5432
        urls = [
            f"postgresql://postgres@127.0.0.1:{port}/{own['NAME']}",
            f"postgresql://postgres@localhost:{port}/{own['NAME']}",
        ]
    # Anything in the data folder outside the demo's folder, even a real Airflow database.
    from deployments.airflow_metadata import create_airflow_shaped_sqlite

    planted = data / "planted-airflow.db"
    create_airflow_shaped_sqlite(planted, Fernet_key(), {"c": {"conn_type": "http"}}, {})
    try:
        urls.append(f"sqlite:///{planted}")
        for url, (status, body) in zip(urls, refusals(api, team, urls), strict=True):
            assert status == 400, url
            assert body["message"] == MetadataDbUnusable.MESSAGE
    finally:
        planted.unlink()
    assert stored(team).metadata_db_url == ""


def Fernet_key() -> str:  # noqa: N802
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_the_demo_folder_is_admitted_by_default(settings, tmp_path):
    demo = Path(django_settings.ENVMANAGER_DEMO_METADATA_DIR)
    settings.ENVMANAGER_METADATA_DB_ALLOWLIST = [str(demo)]
    target = metadata_db_target(f"sqlite:///{demo}/production.sqlite3")
    assert target.path == os.path.realpath(demo / "production.sqlite3")
    with pytest.raises(MetadataDbUnusable):
        metadata_db_target(f"sqlite:///{tmp_path}/airflow.db")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///relative/airflow.db",
        "sqlite:////tmp/airflow.db?mode=rwc",
        "sqlite:////tmp/airflow.db#x",
        "postgresql://postgres@127.0.0.1/airflow?host=/var/run/postgresql",
        "postgresql://postgres@127.0.0.1/airflow?options=-c%20statement_timeout=0",
        "postgresql://postgres@127.0.0.1/airflow?sslmode=bogus",
        "postgresql://127.0.0.1/airflow",  # no user
        "postgresql://postgres@/airflow",  # a socket
        "postgresql://postgres@127.0.0.1:5432",  # no database
        "postgresql://postgres@ho$t/airflow",
        "mysql://root@127.0.0.1/airflow",
        "file:///etc/passwd",
        "sqlite:////tmp/air flow.db",
    ],
)
def test_a_malformed_url_is_a_clear_400_and_opens_nothing(api, team, url, tmp_path):
    response = patch_url(api, team, team.owner, url)
    assert response.status_code == 400
    error = response.json()
    assert error["message"] != MetadataDbUnusable.MESSAGE
    assert stored(team).metadata_db_url == ""
    assert not Path("/tmp/airflow.db").exists() or url.startswith("postgresql")


def test_the_allowlist_is_checked_again_at_every_connect(team, settings, airflow_sqlite, tmp_path):
    url, key = airflow_sqlite("a.db", CONNECTIONS)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=key
    )
    settings.ENVMANAGER_METADATA_DB_ALLOWLIST = [str(tmp_path / "elsewhere")]
    with pytest.raises(MetadataDbUnusable):
        migration_start(
            user=team.owner,
            deployment=stored(team),
            object_type="CONNECTION",
            object_keys=["s3_raw"],
        )
    assert not MigrationRun.objects.exists()


def test_a_url_saved_before_the_guard_must_be_saved_again(team, airflow_sqlite):
    url, key = airflow_sqlite("legacy.db", CONNECTIONS)
    Deployment.objects.filter(pk=team.deployment.pk).update(metadata_db_url=url, fernet_key=key)
    with pytest.raises(MetadataDbError, match="saved again"):
        migration_start(
            user=team.owner,
            deployment=stored(team),
            object_type="CONNECTION",
            object_keys=["s3_raw"],
        )
    deployment_update(user=team.owner, deployment=team.deployment, metadata_db_url=url)
    assert stored(team).metadata_db_fingerprint


def test_the_gateway_connects_to_the_checked_address(settings):
    settings.ENVMANAGER_METADATA_DB_ALLOWLIST = ["localhost:5432"]
    target = metadata_db_target("postgresql://postgres:pw@localhost/airflow")
    assert target.address in ("127.0.0.1", "::1") and target.host == "localhost"
    assert "pw" not in repr(target)


# Owners only


def test_an_operator_cannot_set_or_change_the_url_or_keys(api, team, airflow_sqlite):
    url, key = airflow_sqlite()
    for body in ({"metadataDbUrl": url}, {"fernetKey": key}, {"metadataDbUrl": ""}):
        response = api.as_user(team.operator).patch(
            f"/api/v1/workspaces/{team.workspace.pk}/deployments/{team.deployment.pk}",
            body,
            format="json",
        )
        assert response.status_code == 403, body
    assert (stored(team).metadata_db_url, stored(team).fernet_key) == ("", "")
    response = api.as_user(team.operator).patch(
        f"/api/v1/workspaces/{team.workspace.pk}/deployments/{team.deployment.pk}",
        {"description": "still theirs to edit"},
        format="json",
    )
    assert response.status_code == 200


def test_every_change_is_an_audit_row_without_values(api, team, airflow_sqlite):
    url, key = airflow_sqlite("audited-door-secret.db")
    assert patch_url(api, team, team.owner, url, key).status_code == 200
    assert patch_url(api, team, team.owner, "", "").status_code == 200
    events = AuditEvent.objects.filter(action="deployment.update").order_by("id")
    assert [sorted(e.fields) for e in events] == [["fernet_key", "metadata_db_url"]] * 2
    assert events.last().detail == {"cleared": ["metadata_db_url", "fernet_key"]}
    dumped = str(list(events.values()))
    assert "audited-door-secret" not in dumped and key not in dumped
    assert stored(team).metadata_db_fingerprint is None


# Test connection


def test_test_connection_counts_and_checks_the_key(api, team, airflow_sqlite):
    url, key = airflow_sqlite("t.db", CONNECTIONS, {"plain": "1", "api_token": "door-secret-3"})
    test = f"/api/v1/deployments/{team.deployment.pk}/metadata-db/test"
    assert api.as_user(team.owner).post(test).status_code == 400  # no URL yet
    assert patch_url(api, team, team.owner, url, key).status_code == 200
    response = api.as_user(team.owner).post(test)
    assert response.status_code == 200
    # Each connection's password and every variable's value are encrypted.
    assert response.json() == {"connections": 2, "variables": 2, "decryptedValues": 4}
    assert "door-secret" not in response.content.decode()
    assert api.as_user(team.operator).post(test).status_code == 403
    Deployment.objects.filter(pk=team.deployment.pk).update(fernet_key=Fernet_key())
    response = api.as_user(team.owner).post(test)
    assert response.status_code == 400 and "Fernet key" in response.json()["message"]


def test_a_wrong_key_is_refused_when_the_url_is_saved(api, team, airflow_sqlite):
    url, _ = airflow_sqlite("k.db", CONNECTIONS)
    response = patch_url(api, team, team.owner, url, Fernet_key())
    assert response.status_code == 400 and "Fernet key" in response.json()["message"]
    assert stored(team).metadata_db_url == ""


def test_the_settings_page_tests_the_connection(team, airflow_sqlite):
    url, key = airflow_sqlite("p.db", CONNECTIONS)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=key
    )
    client = Client()
    client.force_login(team.owner)
    page = client.get(f"/deployments/{team.deployment.pk}/settings/").content.decode()
    assert "Test connection" in page
    response = client.post(
        f"/deployments/{team.deployment.pk}/settings/test-metadata-db/", follow=True
    )
    assert "holds 2 connections and 1 variable;" in response.content.decode()
    client.force_login(team.operator)
    page = client.get(f"/deployments/{team.deployment.pk}/settings/").content.decode()
    assert "Test connection" not in page


# A run is pinned to the database it read


def migrate(team, capture, keys=("s3_raw", "warehouse"), execute=True) -> MigrationRun:
    with capture(execute=execute):
        run = migration_start(
            user=team.owner,
            deployment=stored(team),
            object_type="CONNECTION",
            object_keys=list(keys),
        )
    run.refresh_from_db()
    return run


def conn_ids(url: str, key: str) -> list[str]:
    with AirflowMetadataDb(url, key) as db:
        return [c.conn_id for c in db.connections()]


def test_undo_refuses_when_the_url_names_another_database(
    team, airflow_sqlite, django_capture_on_commit_callbacks
):
    first, key = airflow_sqlite("first.db", CONNECTIONS)
    second, _ = airflow_sqlite("second.db", {"other": {"conn_type": "http"}}, {}, fernet_key=key)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=first, fernet_key=key
    )
    run = migrate(team, django_capture_on_commit_callbacks)
    assert run.status == MigrationRun.Status.SUCCEEDED and conn_ids(first, key) == []
    deployment_update(user=team.owner, deployment=team.deployment, metadata_db_url=second)
    before = digest(second)
    with pytest.raises(MetadataDbChanged) as error, django_capture_on_commit_callbacks():
        migration_undo(user=team.owner, run=run)
    assert error.value.status_code == 409 and "nothing was changed" in error.value.message
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.SUCCEEDED
    assert digest(second) == before and conn_ids(first, key) == []
    assert EnvironmentObject.objects.count() == 2
    # Put back, the undo goes into the database the rows came from.
    deployment_update(user=team.owner, deployment=team.deployment, metadata_db_url=first)
    with django_capture_on_commit_callbacks(execute=True):
        migration_undo(user=team.owner, run=run)
    assert conn_ids(first, key) == ["s3_raw", "warehouse"]


def test_deleting_refuses_when_the_url_changed_during_the_window(
    team, airflow_sqlite, settings, django_capture_on_commit_callbacks
):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    first, key = airflow_sqlite("first.db", CONNECTIONS)
    second, _ = airflow_sqlite("second.db", CONNECTIONS, {}, fernet_key=key)
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=first, fernet_key=key
    )
    run = migrate(team, django_capture_on_commit_callbacks, execute=False)
    with django_capture_on_commit_callbacks(execute=False):
        migration_copy(run_id=run.pk)
    MigrationRun.objects.filter(pk=run.pk).update(delete_after=timezone.now())  # window over
    deployment_update(user=team.owner, deployment=team.deployment, metadata_db_url=second)
    before = digest(second)
    with django_capture_on_commit_callbacks(execute=False):
        migration_delete_sources(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.FAILED and "another database" in run.error
    assert digest(second) == before
    assert conn_ids(first, key) == ["s3_raw", "warehouse"]
