"""A migration's copy racing a user who creates the same Workspace key, on PostgreSQL with two
database sessions: the user's insert is made first and committed while the copy's insert waits
on the unique index, so the copy's chunk read the keys before the object existed. The chunk
takes the override path on the user's object (never a 500, never a run stuck in COPYING)."""

import threading

import pytest
from cryptography.fernet import Fernet
from django.db import connection, transaction

from deployments.services import deployment_update
from envmanager.models import EnvironmentObject, Link, MigrationItem, MigrationRun
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import environment_object_create
from envmanager.services.migration import migration_copy, migration_start
from tests.airflow_support import make_metadata_db

pytestmark = [pytest.mark.postgresql, pytest.mark.airflow, pytest.mark.django_db(transaction=True)]

KEY = Fernet.generate_key().decode()
SOURCE = {"conn_type": "postgres", "host": "db.airflow", "login": "etl", "password": "from-af"}


def test_a_key_created_by_a_user_while_the_copy_runs_becomes_an_override(team, tmp_path, settings):
    settings.ENVMANAGER_PROPAGATION_SECONDS = 3600
    url = make_metadata_db(tmp_path, fernet_key=KEY, connections={"warehouse": SOURCE})
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=KEY
    )
    inserted, errors = threading.Event(), []

    def user_creates() -> None:
        try:
            with transaction.atomic():
                environment_object_create(
                    user=team.operator,
                    workspace=team.workspace,
                    object_type="CONNECTION",
                    key="warehouse",
                    values={"conn_type": "postgres", "host": "db.user", "password": "users"},
                )
                inserted.set()
                # Committed while the copy's insert of the same key waits for it.
                threading.Event().wait(1.5)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            inserted.set()
            connection.close()

    user = threading.Thread(target=user_creates)
    user.start()
    assert inserted.wait(10)
    run = migration_start(
        user=team.owner,
        deployment=team.deployment,
        object_type="CONNECTION",
        object_keys=["warehouse"],
    )
    # The copy, here and now, while the user's insert is still uncommitted (a no-op if an eager
    # Celery ran it already; a test before this one may have left Celery not eager).
    migration_copy(run_id=run.pk)
    user.join()
    assert not errors, errors
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.WAITING, run.error
    item = run.items.get()
    assert item.state == MigrationItem.State.VERIFIED
    assert item.action == MigrationItem.Action.OVERRIDDEN
    users = EnvironmentObject.objects.get(key="warehouse")
    assert item.environment_object_id == users.pk
    assert users.values["host"] == "db.user" and users.values["password"] == "users"
    link = Link.objects.get(environment_object=users, deployment=team.deployment)
    assert link.overrides["host"] == "db.airflow" and link.overrides["password"] == "from-af"
    resolved = deployment_resolved_environment(team.deployment)["CONNECTION"]["warehouse"]
    assert {k: resolved.values[k] for k in SOURCE} == SOURCE
