import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditEvent
from envmanager.celery import app as celery_app
from envmanager.kernel.errors import InvalidInput, NotPermitted
from envmanager.models import EnvironmentObject, ObjectVersion
from envmanager.selectors import deleted_object_versions, deployment_resolved_environment
from envmanager.services import (
    environment_object_create,
    environment_object_delete,
    environment_object_update,
    link_create,
    link_set_overrides,
)
from envmanager.services.versions import (
    deleted_objects_purge,
    environment_object_restore_version,
)

SECRET = "s3cret-Value-that-must-not-leak"


def create(team, **values):
    return environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "h1", "password": SECRET, **values},
    )


def test_every_change_is_audited_with_field_names_and_no_values(team):
    obj = create(team)
    link = link_create(
        user=team.operator,
        obj=obj,
        deployment=team.deployment,
        overrides={"password": SECRET + "-prod"},
    )
    link_set_overrides(user=team.operator, link=link, unset_fields=["password"])
    environment_object_update(user=team.operator, obj=obj, values={"password": "x", "host": "h2"})
    environment_object_delete(user=team.operator, obj=obj)
    events = list(AuditEvent.objects.order_by("id").values_list("action", "fields", "actor_label"))
    actions = [e[0] for e in events if e[0].startswith(("environment_object", "link"))]
    assert actions == [
        "environment_object.create",
        "link.create",
        "link.override",
        "environment_object.update",
        "environment_object.delete",
    ]
    update = next(e for e in events if e[0] == "environment_object.update")
    assert update[1] == ["host", "password"] and update[2] == team.operator.email
    dump = str(list(AuditEvent.objects.values()))
    assert SECRET not in dump and "h2" not in dump


def test_a_change_whose_audit_row_cannot_be_written_does_not_happen(team, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("audit storage unavailable")

    monkeypatch.setattr(AuditEvent, "save", broken)
    with pytest.raises(RuntimeError):
        create(team)
    assert not EnvironmentObject.objects.exists()


def test_updates_keep_previous_versions_that_can_be_restored(team):
    obj = create(team)
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2"})
    environment_object_update(user=team.operator, obj=obj, values={"host": "h3", "login": "l"})
    versions = list(ObjectVersion.objects.filter(environment_object_id=obj.pk).order_by("id"))
    assert [v.changed_fields for v in versions] == [["host"], ["host", "login"]]
    assert versions[0].snapshot["values"]["host"] == "h1"
    restored = environment_object_restore_version(user=team.owner, version=versions[0])
    restored.refresh_from_db()
    assert restored.values["host"] == "h1" and restored.values["password"] == SECRET
    # The state before the restore is kept too.
    latest = ObjectVersion.objects.filter(environment_object_id=obj.pk).first()
    assert latest.reason == "RESTORE" and latest.snapshot["values"]["host"] == "h3"


def test_a_deleted_object_comes_back_with_its_links_and_overrides(team):
    obj = create(team)
    link_create(
        user=team.operator, obj=obj, deployment=team.deployment, overrides={"host": "prod-host"}
    )
    environment_object_delete(user=team.operator, obj=obj)
    version = ObjectVersion.objects.get(reason="DELETE")
    environment_object_restore_version(user=team.operator, version=version)
    env = deployment_resolved_environment(team.deployment)["CONNECTION"]
    assert env["warehouse"].values["host"] == "prod-host"
    assert env["warehouse"].values["password"] == SECRET


def test_a_restored_auto_linked_object_links_to_deployments_made_while_it_was_deleted(team):
    """Auto-linked means every Deployment: one created while the object was deleted resolves
    it after the restore too; a Deployment excluded before the deletion stays excluded."""
    from deployments.services import deployment_create
    from envmanager.services import auto_link_exclude

    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="everywhere",
        values={"conn_type": "http", "host": "h"},
        auto_link_deployments=True,
    )
    excluded = deployment_create(user=team.owner, workspace=team.workspace, name="left-out")
    auto_link_exclude(user=team.operator, obj=obj, deployment=excluded)
    environment_object_delete(user=team.operator, obj=obj)
    newcomer = deployment_create(user=team.owner, workspace=team.workspace, name="newcomer")
    version = ObjectVersion.objects.get(reason="DELETE")
    environment_object_restore_version(user=team.operator, version=version)
    assert "everywhere" in deployment_resolved_environment(newcomer)["CONNECTION"]
    assert "everywhere" in deployment_resolved_environment(team.deployment)["CONNECTION"]
    assert "everywhere" not in deployment_resolved_environment(excluded)["CONNECTION"]


def test_deleted_objects_can_be_restored_for_30_days_only(team):
    obj = create(team)
    environment_object_delete(user=team.operator, obj=obj)
    version = ObjectVersion.objects.get(reason="DELETE")
    ObjectVersion.objects.filter(pk=version.pk).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    version.refresh_from_db()
    with pytest.raises(InvalidInput):
        environment_object_restore_version(user=team.owner, version=version)
    assert not EnvironmentObject.objects.exists()


@pytest.mark.parametrize("role", ["AUTHOR", "MEMBER"])
def test_only_operators_and_owners_restore(team, role):
    obj = create(team)
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2"})
    version = ObjectVersion.objects.get()
    with pytest.raises(NotPermitted):
        environment_object_restore_version(user=team.user(role), version=version)


def _delete(team, obj) -> int:
    pk = obj.pk  # delete() forgets it
    environment_object_delete(user=team.operator, obj=obj)
    return pk


def _age_versions(obj_id, days):
    ObjectVersion.objects.filter(environment_object_id=obj_id).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def test_objects_deleted_more_than_30_days_ago_are_forgotten_with_their_secrets(team):
    expired = create(team)
    environment_object_update(user=team.operator, obj=expired, values={"host": "h2"})
    expired_id = _delete(team, expired)
    _age_versions(expired_id, 31)
    recent = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="recently_deleted",
        values={"value": SECRET},
    )
    recent_id = _delete(team, recent)
    _age_versions(recent_id, 29)
    live = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="still_here",
        values={"conn_type": "http", "host": "a"},
    )
    environment_object_update(user=team.operator, obj=live, values={"host": "b"})
    _age_versions(live.pk, 400)

    assert deleted_objects_purge() == 2
    assert not ObjectVersion.objects.filter(environment_object_id=expired_id).exists()
    assert ObjectVersion.objects.filter(environment_object_id=recent_id).count() == 1
    assert ObjectVersion.objects.filter(environment_object_id=live.pk).count() == 1
    event = AuditEvent.objects.get(action="environment_object.purge")
    assert event.workspace == team.workspace and event.detail == {"objects": 1, "versions": 2}
    assert [v.key for v in deleted_object_versions(team.workspace)] == ["recently_deleted"]
    assert deleted_objects_purge() == 0


def test_purge_runs_from_the_command_and_on_celery_beats_schedule(team, settings):
    _age_versions(_delete(team, create(team)), 45)
    out = io.StringIO()
    call_command("purge_deleted_objects", stdout=out)
    assert "1 versions of deleted objects removed" in out.getvalue()
    assert not ObjectVersion.objects.exists()
    _age_versions(_delete(team, create(team)), 45)
    celery_app.loader.import_default_modules()  # what a worker does when it starts
    entry = settings.CELERY_BEAT_SCHEDULE["purge-deleted-objects"]
    assert entry["task"] == "envmanager.tasks.deleted_objects_purge"
    assert celery_app.tasks[entry["task"]].apply().get() == 1
    assert not ObjectVersion.objects.exists()
