"""A Deployment object that promotion merged into an existing Workspace object's override is
gone but not deleted: its history keeps it, the deleted-objects list does not offer it, a
restore is refused with the reason, and it is forgotten 30 days later like any gone object."""

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.utils import timezone

from envmanager.kernel.errors import InvalidInput
from envmanager.models import EnvironmentObject, Link, ObjectVersion
from envmanager.selectors import deleted_object_versions, object_versions
from envmanager.services import environment_object_create, environment_object_delete
from envmanager.services.promotion import environment_object_promote
from envmanager.services.versions import (
    deleted_objects_purge,
    environment_object_restore_version,
)

WORKSPACE_VALUES = {"conn_type": "postgres", "host": "staging-db", "password": "staging-pw"}


def deployment_object(team, key="warehouse", **values):
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key=key,
        values={**WORKSPACE_VALUES, **values},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )


@pytest.fixture
def merged(team):
    """The production Deployment's own `warehouse`, promoted into the Workspace's one."""
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values=WORKSPACE_VALUES,
    )
    local = deployment_object(team, host="prod-db", password="prod-pw")
    workspace_object, override_created = environment_object_promote(user=team.operator, obj=local)
    assert override_created
    return local.pk, workspace_object


def test_a_merged_object_is_in_its_history_not_among_the_deleted(team, merged, api):
    local_id, _ = merged
    [version] = object_versions(local_id, team.workspace)
    assert version.reason == ObjectVersion.Reason.PROMOTE
    assert version.get_reason_display() == "Merged into a Workspace object by promotion"
    assert sorted(version.changed_fields) == ["host", "password"]
    assert list(deleted_object_versions(team.workspace)) == []
    listed = api.as_user(team.author).get(
        f"/api/v1/workspaces/{team.workspace.pk}/deleted-environment-objects"
    )
    assert listed.status_code == 200 and listed.json()["deletedObjects"] == []


def test_a_deleted_deployment_object_is_still_offered(team, merged):
    gone = deployment_object(team, key="scratch")
    environment_object_delete(user=team.operator, obj=gone)
    assert [v.key for v in deleted_object_versions(team.workspace)] == ["scratch"]


def test_restoring_a_merged_object_is_refused_with_the_reason(team, merged, api):
    local_id, workspace_object = merged
    version = ObjectVersion.objects.get(environment_object_id=local_id)
    with pytest.raises(InvalidInput) as refused:
        environment_object_restore_version(user=team.operator, version=version)
    assert "merged into the Workspace object 'warehouse' by promotion" in refused.value.message
    response = api.as_user(team.operator).post(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{local_id}"
        f"/versions/{version.pk}/restore"
    )
    assert response.status_code == 400 and "by promotion" in response.json()["message"]
    assert not EnvironmentObject.objects.filter(pk=local_id).exists()
    link = Link.objects.get(environment_object=workspace_object, deployment=team.deployment)
    assert link.overrides == {"host": "prod-db", "password": "prod-pw"}


def test_its_history_page_says_it_was_merged_and_offers_no_restore(team, merged):
    local_id, _ = merged
    client = Client()
    client.force_login(team.owner)
    page = client.get(f"/workspaces/{team.workspace.pk}/environment/{local_id}/history/")
    html = page.content.decode()
    assert "an object merged into the Workspace by promotion" in html
    assert "version-restore" not in html and "/restore/" not in html
    assert "its values live on as that object's override" in html


def test_a_merged_object_is_forgotten_30_days_later(team, merged):
    local_id, workspace_object = merged
    assert deleted_objects_purge(now=timezone.now() + timedelta(days=29)) == 0
    assert ObjectVersion.objects.filter(environment_object_id=local_id).exists()
    assert deleted_objects_purge(now=timezone.now() + timedelta(days=31)) == 1
    assert not ObjectVersion.objects.filter(environment_object_id=local_id).exists()
    assert Link.objects.filter(environment_object=workspace_object).count() == 1


def test_the_migration_relabels_merges_recorded_as_deletions(team, merged):
    local_id, _ = merged
    ObjectVersion.objects.filter(environment_object_id=local_id).update(reason="DELETE")
    gone = deployment_object(team, key="scratch")
    environment_object_delete(user=team.operator, obj=gone)
    migration = importlib.import_module("envmanager.migrations.0006_promote_merge_versions")
    # The models as that migration sees them (the audit trail was envmanager's then).
    historical = (
        MigrationLoader(connection)
        .project_state(("envmanager", "0006_promote_merge_versions"))
        .apps
    )
    migration.promote_merges_are_not_deletions(historical, None)
    assert dict(ObjectVersion.objects.values_list("key", "reason")) == {
        "warehouse": "PROMOTE",
        "scratch": "DELETE",
    }
    assert [v.key for v in deleted_object_versions(team.workspace)] == ["scratch"]
