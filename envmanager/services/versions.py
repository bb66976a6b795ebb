"""Version history of environment objects, and restoring an earlier version."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User, WorkspacePermission
from accounts.permissions import require_workspace_perm
from deployments.models import Deployment, IdeProject
from envmanager import object_types
from envmanager.kernel.errors import Conflict, InvalidInput, NotFound
from envmanager.models import RESTORE_DELETED_DAYS, EnvironmentObject, ObjectVersion
from envmanager.object_types import SPECS, Scope
from envmanager.services.link_rows import (
    auto_links_create,
    link_row_create,
    lock_workspace_auto_links,
)


def changed_field_names(object_type: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the fields whose value differs (keys of extra as `extra.KEY`)."""
    names = []
    for name in SPECS[object_type].fields:
        before, after = old.get(name), new.get(name)
        if name == "extra" and isinstance(before, dict) and isinstance(after, dict):
            names += [
                f"extra.{k}"
                for k in sorted(set(before) | set(after))
                if before.get(k) != after.get(k)
            ]
        elif before != after:
            names.append(name)
    return names


def object_snapshot(obj: EnvironmentObject) -> dict[str, Any]:
    return {
        "values": obj.values,
        "auto_link_deployments": obj.auto_link_deployments,
        # `.all()`, not `values_list`: it uses a prefetch (`link_versions_record`) if there is one.
        "auto_link_excluded": [d.pk for d in obj.auto_link_excluded.all()],
        "links": [
            {
                "deployment_id": link.deployment_id,
                "ide_project_id": link.ide_project_id,
                "is_home": link.is_home,
                "is_auto": link.is_auto,
                "overrides": link.overrides,
            }
            for link in obj.links.all()
        ],
    }


def version_record(
    *,
    obj: EnvironmentObject,
    reason: str,
    user: User | None,
    changed_fields: Sequence[str] = (),
    detail: dict[str, Any] | None = None,
) -> ObjectVersion:
    """Keep the object's state as it is now, before it changes (call inside the transaction).
    `detail` is stored in clear: ids, names and field names only, never a value."""
    version = _version(obj, reason, user, changed_fields, detail or {})
    version.save()
    return version


def _version(
    obj: EnvironmentObject,
    reason: str,
    user: User | None,
    changed_fields: Sequence[str],
    detail: dict[str, Any],
) -> ObjectVersion:
    return ObjectVersion(
        workspace_id=obj.workspace_id,
        environment_object_id=obj.pk,
        object_type=obj.object_type,
        key=obj.key,
        scope=obj.scope,
        deployment_id=obj.deployment_id,
        reason=reason,
        snapshot=object_snapshot(obj),
        changed_fields=list(changed_fields),
        detail=detail,
        created_by=user,
    )


def link_version_record(
    *,
    obj: EnvironmentObject,
    reason: str,
    user: User | None,
    deployment: Deployment | None = None,
    ide_project: IdeProject | None = None,
    deployment_id: int | None = None,
    ide_project_id: int | None = None,
    set_fields: Sequence[str] = (),
    unset_fields: Sequence[str] = (),
    detail: dict[str, Any] | None = None,
) -> ObjectVersion:
    """A version of a Workspace object before one of its links changes (linked, unlinked, its
    overrides set or unset, or an override merged in by promotion): says which Deployment or
    IDE project and which override fields, by name. The override values themselves are in the
    snapshot, encrypted like the rest of it. `detail` adds ids (a migration run's)."""
    if deployment is None and deployment_id is not None:
        deployment = Deployment.objects.filter(pk=deployment_id).first()
    if ide_project is None and ide_project_id is not None:
        ide_project = IdeProject.objects.filter(pk=ide_project_id).first()
    version = _link_version(
        obj, reason, user, deployment, ide_project, set_fields, unset_fields, detail or {}
    )
    version.save()
    return version


def link_versions_record(
    *,
    override_fields: Mapping[int, Sequence[str]],
    reason: str,
    user: User | None,
    deployment: Deployment,
    detail: dict[str, Any] | None = None,
) -> None:
    """`link_version_record` for many objects at once (a new Deployment's auto-links, a
    migration chunk's links to existing objects), each linked to one Deployment with the
    override fields `override_fields[object id]` names: the objects are read afresh with their
    links and exclusions (three queries) and their versions written in one insert, whatever
    their number. Nothing of the caller's instances is cached or changed."""
    objects = EnvironmentObject.objects.filter(pk__in=list(override_fields)).prefetch_related(
        "links", "auto_link_excluded"
    )
    ObjectVersion.objects.bulk_create(
        _link_version(
            obj, reason, user, deployment, None, override_fields[obj.pk], (), detail or {}
        )
        for obj in objects
    )


def _link_version(
    obj: EnvironmentObject,
    reason: str,
    user: User | None,
    deployment: Deployment | None,
    ide_project: IdeProject | None,
    set_fields: Sequence[str],
    unset_fields: Sequence[str],
    extra: dict[str, Any],
) -> ObjectVersion:
    detail: dict[str, Any] = {}
    if deployment is not None:
        detail.update(deploymentId=deployment.pk, deploymentName=deployment.name)
    elif ide_project is not None:
        detail.update(ideProjectId=ide_project.pk, ideProjectName=ide_project.name)
    if set_fields:
        detail["overrideFields"] = sorted(set_fields)
    if unset_fields:
        detail["unsetFields"] = sorted(unset_fields)
    return _version(obj, reason, user, sorted({*set_fields, *unset_fields}), {**detail, **extra})


def restored_values(current: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """The values restoring `saved` onto an object that holds `current` gives it: the saved
    ones, but a secret stays secret (`object_types.secret_flag_lowered`), so a version from
    before the flag was set comes back with its value secret."""
    if object_types.secret_flag_lowered(current, saved):
        return {**saved, "is_secret": True}
    return saved


@dataclass(frozen=True)
class FieldChange:
    """One field in a version and now. A secret field (secret in either) carries no values,
    only whether it changed, compared decrypted here on the server."""

    field: str
    secret: bool
    changed: bool
    version: str | None = None
    current: str | None = None


@dataclass(frozen=True)
class LinkChange:
    """A link that differs between a version and now."""

    target_kind: str  # "Deployment" or "IDE project"
    target_id: int
    target_name: str
    change: str  # UNLINKED_SINCE, LINKED_SINCE, OVERRIDES_CHANGED
    overrides: list[FieldChange]


@dataclass(frozen=True)
class VersionDiff:
    """A version against the object as it is now (or against nothing, for a deleted object):
    every field, and the links that differ. `after_restore` is what restoring would change
    (restoring an existing object keeps its links as they are; a secret stays secret)."""

    version: ObjectVersion
    object_exists: bool
    fields: list[FieldChange]
    links: list[LinkChange]
    secret_flag_kept: bool

    @property
    def changed_fields(self) -> list[FieldChange]:
        return [f for f in self.fields if f.changed]


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _field_change(name: str, secret: bool, then: Any, now: Any) -> FieldChange:
    if secret:
        return FieldChange(field=name, secret=True, changed=then != now)
    return FieldChange(
        field=name, secret=False, changed=then != now, version=_shown(then), current=_shown(now)
    )


def _link_changes(
    object_type: str, secret: set[str], then: list[dict[str, Any]], now: list[dict[str, Any]]
) -> list[LinkChange]:
    def target(link: dict[str, Any]) -> tuple[str, int]:
        if link.get("deployment_id"):
            return ("Deployment", link["deployment_id"])
        return ("IDE project", link["ide_project_id"])

    before = {target(link): link for link in then if not link.get("is_home")}
    after = {target(link): link for link in now if not link.get("is_home")}
    names = {
        ("Deployment", d.pk): d.name
        for d in Deployment.objects.filter(
            pk__in=[i for k, i in {*before, *after} if k == "Deployment"]
        )
    }
    names.update(
        {
            ("IDE project", p.pk): p.name
            for p in IdeProject.objects.filter(
                pk__in=[i for k, i in {*before, *after} if k == "IDE project"]
            )
        }
    )
    changes = []
    for key in sorted({*before, *after}):
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            change = "LINKED_SINCE" if old is None else "UNLINKED_SINCE"
            fields: list[FieldChange] = []
        else:
            fields = [
                _field_change(
                    name,
                    name.split(".")[0] in secret,
                    old["overrides"].get(name),
                    new["overrides"].get(name),
                )
                for name in sorted({*old["overrides"], *new["overrides"]})
            ]
            if not any(f.changed for f in fields):
                continue
            change = "OVERRIDES_CHANGED"
        changes.append(
            LinkChange(
                target_kind=key[0],
                target_id=key[1],
                target_name=names.get(key, "(deleted since)"),
                change=change,
                overrides=fields,
            )
        )
    return changes


def version_diff(*, version: ObjectVersion) -> VersionDiff:
    """Compare a version with the object as it is now: per field its value then and now, a
    secret field (secret then or now) only as changed or unchanged. Reads; shows no secret."""
    snap = version.snapshot
    obj = EnvironmentObject.objects.filter(pk=version.environment_object_id).first()
    then_values: dict[str, Any] = snap["values"]
    now_values: dict[str, Any] = obj.values if obj is not None else {}
    secret = set(object_types.secret_fields(version.object_type, then_values)) | set(
        object_types.secret_fields(version.object_type, now_values)
    )
    fields = [
        FieldChange(
            field="key",
            secret=False,
            changed=obj is None or obj.key != version.key,
            version=version.key,
            current=obj.key if obj is not None else None,
        )
    ]
    for name in SPECS[version.object_type].fields:
        fields.append(
            _field_change(
                name,
                name in secret,
                then_values.get(name),
                now_values.get(name) if obj is not None else None,
            )
        )
    now_links = object_snapshot(obj)["links"] if obj is not None else []
    return VersionDiff(
        version=version,
        object_exists=obj is not None,
        fields=fields,
        links=_link_changes(version.object_type, secret, snap["links"], now_links),
        secret_flag_kept=obj is not None
        and object_types.secret_flag_lowered(now_values, then_values),
    )


def environment_object_restore_version(*, user: User, version: ObjectVersion) -> EnvironmentObject:
    """Restore an earlier version. An existing object gets that version's key and values back
    (its links stay as they are; the current state becomes a version too). A deleted object
    comes back within 30 days, with its links to Deployments and IDE projects that still exist
    and do not resolve that key otherwise meanwhile (skipped ones are listed in the audit log)."""
    require_workspace_perm(
        user,
        WorkspacePermission.UPDATE_ENV_OBJECTS,
        version.workspace,
        "restore environment objects",
    )
    with transaction.atomic():
        # The version as it is now, locked: a purge that removed it meanwhile wins (nothing
        # comes back from a version that was forgotten), and one that is about to waits.
        locked = ObjectVersion.objects.select_for_update().filter(pk=version.pk).first()
        if locked is None:
            raise NotFound("That version no longer exists: it was purged.")
        version = locked
        snap = version.snapshot
        # Restoring can change the key, which meets auto-links and Deployments being created:
        # the Workspace row's lock before the object, in the order a rename takes them. Else a
        # Deployment created now links on the key the object had, or the two deadlock.
        lock_workspace_auto_links(version.workspace_id)
        obj: EnvironmentObject | None = (
            EnvironmentObject.objects.select_for_update()
            .filter(pk=version.environment_object_id)
            .first()
        )
        if obj is not None:
            restored = restored_values(obj.values, snap["values"])
            changed = changed_field_names(obj.object_type, obj.values, restored)
            version_record(
                obj=obj, reason=ObjectVersion.Reason.RESTORE, user=user, changed_fields=changed
            )
            old_key = obj.key
            obj.key, obj.values = version.key, restored
            obj.updated_at, obj.updated_by = timezone.now(), user
            try:
                with transaction.atomic():
                    obj.save()
                    if old_key != obj.key:
                        obj.links.update(object_key=obj.key)
            except IntegrityError:
                raise Conflict(
                    f"The key {version.key!r} is in use again; rename that first."
                ) from None
            audit_record(
                workspace=obj.workspace_id,
                actor=user,
                action="environment_object.restore",
                obj=obj,
                fields=changed,
                detail={"version": version.pk},
            )
            return obj
        return _restore_deleted(user, version, snap)


def _restore_deleted(user: User, version: ObjectVersion, snap: dict[str, Any]) -> EnvironmentObject:
    merged = ObjectVersion.objects.filter(
        environment_object_id=version.environment_object_id, reason=ObjectVersion.Reason.PROMOTE
    ).exists()
    if merged:
        raise InvalidInput(
            f"This object was merged into the Workspace object {version.key!r} by promotion: "
            "its values live on as that object's override for its Deployment, so there is "
            "nothing to restore. Change or remove the override there instead."
        )
    if version.reason != ObjectVersion.Reason.DELETE:
        raise InvalidInput(
            "That object no longer exists; restore the version saved at its deletion."
        )
    if version.created_at < timezone.now() - timedelta(days=RESTORE_DELETED_DAYS):
        raise InvalidInput(f"Deleted objects can be restored for {RESTORE_DELETED_DAYS} days.")
    deployment = None
    if version.deployment_id is not None:
        deployment = Deployment.objects.filter(pk=version.deployment_id).first()
        if deployment is None:
            raise InvalidInput("Its Deployment no longer exists.")
    now = timezone.now()
    obj = EnvironmentObject(
        pk=version.environment_object_id,
        workspace_id=version.workspace_id,
        scope=version.scope,
        deployment=deployment,
        object_type=version.object_type,
        key=version.key,
        values=snap["values"],
        auto_link_deployments=snap["auto_link_deployments"],
        created_at=now,
        updated_at=now,
        created_by=user,
        updated_by=user,
    )
    try:
        with transaction.atomic():
            obj.save(force_insert=True)
    except IntegrityError:
        raise Conflict(
            f"An object with the key {version.key!r} exists again; it cannot be restored beside it."
        ) from None
    obj.auto_link_excluded.set(
        Deployment.objects.filter(pk__in=snap["auto_link_excluded"], workspace=obj.workspace_id)
    )
    skipped = []
    for link in snap["links"]:
        to_deployment = to_project = None
        if link["deployment_id"]:
            to_deployment = Deployment.objects.filter(
                pk=link["deployment_id"], workspace=obj.workspace_id
            ).first()
        else:
            to_project = IdeProject.objects.filter(
                pk=link["ide_project_id"], workspace=obj.workspace_id
            ).first()
        target = to_deployment or to_project
        if target is None:
            skipped.append(link["deployment_id"] or link["ide_project_id"])
            continue
        linked = link_row_create(
            obj,
            deployment=to_deployment,
            ide_project=to_project,
            is_home=link["is_home"],
            is_auto=link["is_auto"],
            overrides=link["overrides"],
        )
        if linked is None:
            if link["is_home"]:
                raise Conflict(f"Its Deployment resolves {obj.key!r} from another object now.")
            skipped.append(target.pk)
    if obj.scope == Scope.WORKSPACE and obj.auto_link_deployments:
        # "Every Deployment" includes those created while it was deleted (not excluded ones);
        # one that resolves the key from another object now is skipped.
        skipped += [target.pk for target in auto_links_create(obj)]
    version.restored_at = now
    version.save(update_fields=["restored_at"])
    audit_record(
        workspace=obj.workspace_id,
        actor=user,
        action="environment_object.restore",
        obj=obj,
        detail={"version": version.pk, "skippedLinks": skipped},
    )
    return obj


PURGE_CHUNK_SIZE = 200


def deleted_objects_purge(
    *, now: datetime | None = None, chunk_size: int = PURGE_CHUNK_SIZE
) -> int:
    """Forget deleted objects for good once they can no longer be restored: every version of
    an object that is gone (deleted, or merged into a Workspace object by promotion) and was
    last changed more than 30 days ago (its secrets with it). Audited in each Workspace that
    lost any. Returns how many versions were removed.

    Runs while the app serves: `chunk_size` objects per short transaction, each of which locks
    the objects' versions and checks the rule again under the lock, so an object restored
    meanwhile keeps its history (a restore locks the version it restores)."""
    cutoff = (now or timezone.now()) - timedelta(days=RESTORE_DELETED_DAYS)
    candidates = sorted(
        row["environment_object_id"]
        for row in _expired_versions(ObjectVersion.objects.all(), cutoff)
    )
    removed = 0
    for start in range(0, len(candidates), chunk_size):
        removed += _purge_chunk(candidates[start : start + chunk_size], cutoff)
    return removed


def _expired_versions(
    versions: QuerySet[ObjectVersion], cutoff: datetime
) -> QuerySet[ObjectVersion, dict[str, Any]]:
    """(workspace_id, environment_object_id) of the objects among `versions` that are gone
    and were last changed before `cutoff`."""
    return (
        versions.exclude(environment_object_id__in=EnvironmentObject.objects.values("pk"))
        .order_by()  # the model's ordering would join the GROUP BY
        .values("workspace_id", "environment_object_id")
        .annotate(last=Max("created_at"))
        .filter(last__lt=cutoff)
    )


def _purge_chunk(object_ids: list[int], cutoff: datetime) -> int:
    with transaction.atomic():
        # Lock every version of these objects (in one order, so two purges never deadlock),
        # then decide again: a restore that committed before we got the lock shows here.
        list(
            ObjectVersion.objects.filter(environment_object_id__in=object_ids)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )
        by_workspace: dict[int, list[int]] = {}
        expired = _expired_versions(
            ObjectVersion.objects.filter(environment_object_id__in=object_ids), cutoff
        )
        for row in expired:
            by_workspace.setdefault(row["workspace_id"], []).append(row["environment_object_id"])
        removed = 0
        for workspace_id, ids in by_workspace.items():
            count, _ = ObjectVersion.objects.filter(
                workspace_id=workspace_id, environment_object_id__in=ids
            ).delete()
            removed += count
            audit_record(
                workspace=workspace_id,
                actor=None,
                action="environment_object.purge",
                detail={"objects": len(ids), "versions": count},
            )
    return removed
