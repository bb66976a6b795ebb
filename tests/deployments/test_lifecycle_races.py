"""Deleting a Deployment raced on PostgreSQL against a migration run being created in another
session: never both. Django's foreign keys are checked at COMMIT (DEFERRABLE INITIALLY
DEFERRED), and that check needs the Deployment row `deployment_delete` holds FOR UPDATE: a run
not yet committed when the deletion locks the row cannot commit after it, and a committed run
refuses the deletion."""

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from deployments.models import Deployment
from deployments.services import deployment_delete
from envmanager.kernel.errors import Conflict
from envmanager.models import MigrationRun

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def test_a_run_committed_first_refuses_the_deletion(team):
    MigrationRun.objects.create(
        workspace=team.workspace,
        deployment=team.deployment,
        object_type="CONNECTION",
        status=MigrationRun.Status.COPYING,
    )
    with pytest.raises(Conflict, match="migration run in progress"):
        deployment_delete(user=team.owner, deployment=team.deployment)
    assert Deployment.objects.filter(pk=team.deployment.pk).exists()


def test_a_run_still_uncommitted_when_the_deletion_locks_cannot_commit(team):
    inserted, results = threading.Event(), {}

    def start_run():
        try:
            with transaction.atomic():
                MigrationRun.objects.create(
                    workspace=team.workspace,
                    deployment=team.deployment,
                    object_type="CONNECTION",
                    status=MigrationRun.Status.COPYING,
                )
                inserted.set()
                time.sleep(0.5)  # the deletion locks the row while this is open
            results["run"] = "created"
        except IntegrityError:
            results["run"] = "refused"
        finally:
            connection.close()

    def delete():
        inserted.wait(5)
        try:
            deployment_delete(user=team.owner, deployment=team.deployment)
            results["delete"] = "deleted"
        except Conflict:
            results["delete"] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=fn) for fn in (start_run, delete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"delete": "deleted", "run": "refused"}
    assert not Deployment.objects.filter(pk=team.deployment.pk).exists()
    assert not MigrationRun.objects.filter(deployment_id=team.deployment.pk).exists()


def test_a_run_cannot_be_created_for_a_deployment_being_deleted(team):
    locked, results = threading.Event(), {}

    def delete():
        try:
            with transaction.atomic():
                deployment_delete(user=team.owner, deployment=team.deployment)
                locked.set()
                time.sleep(0.5)  # the run's insert arrives before this commits
        finally:
            connection.close()

    def start_run():
        locked.wait(5)
        try:
            MigrationRun.objects.create(
                workspace=team.workspace,
                deployment=team.deployment,
                object_type="CONNECTION",
                status=MigrationRun.Status.COPYING,
            )
            results["run"] = "created"
        except IntegrityError:
            results["run"] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=fn) for fn in (delete, start_run)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["run"] == "refused"
    assert not Deployment.objects.filter(pk=team.deployment.pk).exists()
    assert not MigrationRun.objects.filter(deployment_id=team.deployment.pk).exists()
