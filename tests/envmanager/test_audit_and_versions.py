from datetime import timedelta

import pytest
from django.utils import timezone

from envmanager.errors import InvalidInput, NotPermitted
from envmanager.models import AuditEvent, EnvironmentObject, ObjectVersion
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import (
    environment_object_create,
    environment_object_delete,
    environment_object_update,
    link_create,
    link_set_overrides,
)
from envmanager.services.versions import environment_object_restore_version

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
