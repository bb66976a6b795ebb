"""Services that write environment objects, links and overrides. One transaction each; the
permission check comes first; bad input raises `envmanager.kernel.errors` and changes nothing."""

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import DeploymentPermission, User, Workspace, WorkspacePermission
from accounts.permissions import has_deployment_perm, has_workspace_perm, require_workspace_perm
from deployments.models import Deployment, IdeProject
from envmanager import object_types
from envmanager.kernel.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NotPermitted,
    PreconditionFailed,
)
from envmanager.models import EnvironmentObject, Link, ObjectVersion
from envmanager.object_types import ObjectType, Scope, type_name, type_with_article
from envmanager.services.link_rows import (
    auto_links_create,
    link_row_create,
    lock_workspace_auto_links,
)
from envmanager.services.versions import (
    changed_field_names,
    link_version_record,
    link_versions_record,
    version_record,
)


def _require_edit(
    user: User,
    obj_workspace: Workspace,
    deployment: Deployment | None,
    action: str,
    workspace_perm: str,
) -> None:
    """Workspace objects need the Workspace permission; a Deployment-scoped object may also be
    edited by whoever may update its Deployment (a per-Deployment grant)."""
    if has_workspace_perm(user, workspace_perm, obj_workspace):
        return
    if deployment is not None and has_deployment_perm(
        user, DeploymentPermission.UPDATE, deployment
    ):
        return
    raise NotPermitted(f"Your role in this Workspace does not allow you to {action}.")


def _clean(object_type: str, key: str, values: dict[str, Any]) -> dict[str, Any]:
    if object_type not in ObjectType.values:
        raise InvalidInput(
            f"Unknown object type {object_type!r}.",
            {"object_type": f"One of {', '.join(ObjectType.values)}."},
        )
    try:
        object_types.validate_key(object_type, key)
        return object_types.clean_values(object_type, values)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from None


def _resolving_link(deployment: Deployment, object_type: str, key: str) -> Link | None:
    return (
        Link.objects.select_related("environment_object")
        .filter(deployment=deployment, object_type=object_type, object_key=key)
        .first()
    )


def _key_conflict(message: str) -> Conflict:
    return Conflict(message, {"key": message})


def _conflict_for(deployment: Deployment, object_type: str, key: str) -> Conflict:
    """The Deployment resolves that key already: say from where."""
    link = _resolving_link(deployment, object_type, key)
    where = "one of its own objects" if link and link.is_home else "a linked Workspace object"
    return _key_conflict(
        f"Deployment {deployment.name!r} already resolves "
        f"{type_with_article(object_type)} {key!r} from {where}."
    )


def _taken_on_ide_project(project: IdeProject, object_type: str, key: str) -> Conflict:
    return _key_conflict(
        f"IDE project {project.name!r} already has {type_with_article(object_type)} {key!r}."
    )


def _taken_in_scope(object_type: str, key: str, deployment: Deployment | None) -> Conflict:
    """Another object of the same scope (the Workspace, or that Deployment) has the key."""
    if deployment is not None:
        return _key_conflict(
            f"Deployment {deployment.name!r} already has its own {type_name(object_type)} {key!r}."
        )
    return _key_conflict(f"This Workspace already has {type_with_article(object_type)} {key!r}.")


def _link(
    obj: EnvironmentObject,
    *,
    deployment: Deployment | None = None,
    ide_project: IdeProject | None = None,
    is_home: bool = False,
    is_auto: bool = False,
    overrides: dict[str, Any] | None = None,
) -> Link:
    """Create a link; a key the target already resolves is a Conflict (enforced by the DB)."""
    target = deployment or ide_project
    if target is None or target.workspace_id != obj.workspace_id:
        raise InvalidInput("That target is not in this Workspace.", {"scopeEntityId": "Unknown."})
    link = link_row_create(
        obj,
        deployment=deployment,
        ide_project=ide_project,
        is_home=is_home,
        is_auto=is_auto,
        overrides=overrides,
    )
    if link is not None:
        return link
    if deployment is not None:
        raise _conflict_for(deployment, obj.object_type, obj.key)
    raise _taken_on_ide_project(cast(IdeProject, ide_project), obj.object_type, obj.key)


def _apply_auto_link(obj: EnvironmentObject) -> None:
    taken = auto_links_create(obj)
    if taken:
        raise _conflict_for(taken[0], obj.object_type, obj.key)


def environment_object_create(
    *,
    user: User,
    workspace: Workspace,
    object_type: str,
    key: str,
    values: dict[str, Any],
    scope: str = Scope.WORKSPACE,
    deployment: Deployment | None = None,
    auto_link_deployments: bool = False,
    link_deployments: Sequence[Deployment] = (),
    link_ide_projects: Sequence[IdeProject] = (),
) -> EnvironmentObject:
    """Create an object. A Workspace key is unique per type; a Deployment-scoped object's key
    must not be one its Deployment already resolves (one key, one value per type)."""
    if scope == Scope.DEPLOYMENT:
        if deployment is None or deployment.workspace_id != workspace.pk:
            raise InvalidInput(
                "A Deployment-scoped object needs a Deployment of this Workspace.",
                {"scopeEntityId": "Unknown Deployment."},
            )
        if auto_link_deployments or link_deployments or link_ide_projects:
            raise InvalidInput(
                "Only Workspace objects can be linked.",
                {"links": "A Deployment-scoped object belongs to its Deployment."},
            )
    elif scope == Scope.WORKSPACE:
        deployment = None
    else:
        raise InvalidInput(f"Unknown scope {scope!r}.", {"scope": "WORKSPACE or DEPLOYMENT."})
    _require_edit(
        user,
        workspace,
        deployment,
        "create environment objects",
        WorkspacePermission.CREATE_ENV_OBJECTS,
    )
    cleaned = _clean(object_type, key, values)
    now = timezone.now()
    obj = EnvironmentObject(
        workspace=workspace,
        scope=scope,
        deployment=deployment,
        object_type=object_type,
        key=key,
        values=cleaned,
        auto_link_deployments=auto_link_deployments,
        created_at=now,
        updated_at=now,
        created_by=user,
        updated_by=user,
    )
    with transaction.atomic():
        if auto_link_deployments:
            lock_workspace_auto_links(workspace.pk)
        try:
            with transaction.atomic():
                obj.save()
        except IntegrityError:
            raise _taken_in_scope(object_type, key, deployment) from None
        if deployment is not None:
            _link(obj, deployment=deployment, is_home=True)
        for target in link_deployments:
            _link(obj, deployment=target)
        for project in link_ide_projects:
            _link(obj, ide_project=project)
        if auto_link_deployments:
            _apply_auto_link(obj)
        audit_record(
            workspace=workspace,
            actor=user,
            action="environment_object.create",
            obj=obj,
            fields=object_types.set_fields(object_type, cleaned),
        )
    return obj


_Row = TypeVar("_Row", EnvironmentObject, Link)


def _locked(row: _Row) -> _Row:
    """The row as it is now, locked until the transaction ends; gone meanwhile is a 404."""
    locked: _Row | None = type(row).objects.select_for_update().filter(pk=row.pk).first()
    if locked is None:
        raise NotFound("It was deleted meanwhile.")
    return locked


def object_etag(obj: EnvironmentObject) -> str:
    """The object's ETag (strong): it changes with every update of the object."""
    return f'"{obj.pk}-{int(obj.updated_at.timestamp() * 1_000_000)}"'


def _etag_matches(if_match: str, etag: str) -> bool:
    """RFC 9110 If-Match: `*`, or a list of tags one of which is this one (compared strongly;
    a weak tag never matches)."""
    tags = [tag.strip() for tag in if_match.split(",")]
    return "*" in tags or etag in tags


def _require_unchanged_since(
    obj: EnvironmentObject, seen: Mapping[str, Any], if_match: str | None
) -> None:
    if if_match is not None and not _etag_matches(if_match, object_etag(obj)):
        raise PreconditionFailed(
            f"{obj.key} changed since you read it (If-Match does not name it as it is now); "
            "read it again and retry. Nothing was saved."
        )
    secret = set(object_types.secret_fields(obj.object_type, obj.values))
    stale = {
        name: obj.key if name == "key" else obj.values.get(name)
        for name, value in seen.items()
        if (obj.key if name == "key" else obj.values.get(name)) != value
    }
    if stale:
        now = {
            name: "a new secret" if name in secret else json.dumps(value, ensure_ascii=False)
            for name, value in stale.items()
        }
        retry = "Nothing was saved; reload to see the current values and make your change again."
        raise Conflict(
            f"Changed since you opened it: {'; '.join(f'{n} is now {v}' for n, v in now.items())}"
            f". {retry}",
            {
                name: f"Changed since you opened it: now {value}. {retry}"
                for name, value in now.items()
            },
        )


def environment_object_update(
    *,
    user: User,
    obj: EnvironmentObject,
    key: str | None = None,
    values: dict[str, Any] | None = None,
    auto_link_deployments: bool | None = None,
    seen: Mapping[str, Any] | None = None,
    if_match: str | None = None,
) -> EnvironmentObject:
    """Change an object. `values` holds only the fields to change; the others, secrets
    included, keep their stored value.

    `seen`: what the caller saw of the fields it changes (the key under "key"), as a page
    opened earlier showed them; a field that holds something else now was changed since, and
    nothing is saved (Conflict, naming the fields and their current values; never a secret's).
    `if_match`: the object's ETag as the caller read it (`object_etag`); another is a
    PreconditionFailed."""
    _require_edit(
        user,
        obj.workspace,
        obj.deployment,
        "edit environment objects",
        WorkspacePermission.UPDATE_ENV_OBJECTS,
    )
    with transaction.atomic():
        if key is not None or auto_link_deployments is not None:
            # A rename or an auto-link change meets Deployments being created: see
            # `lock_workspace_auto_links`.
            lock_workspace_auto_links(obj.workspace_id)
        # Merge into the row as it is now, not as the caller read it: a change made meanwhile
        # to another field stays.
        obj = _locked(obj)
        _require_unchanged_since(obj, seen or {}, if_match)
        new_key = obj.key if key is None else key
        cleaned = _clean(obj.object_type, new_key, {**obj.values, **(values or {})})
        if object_types.secret_flag_lowered(obj.values, cleaned):
            message = (
                f"{obj.key} is secret, and a secret stays secret: its value (and those of its "
                "overrides) would be shown to every Author. To make it plain, delete it and "
                "create it again with the value typed anew. Nothing was saved."
            )
            raise InvalidInput(message, {"is_secret": message})
        key_changed = new_key != obj.key
        changed = changed_field_names(obj.object_type, obj.values, cleaned)
        if key_changed:
            changed.append("key")
        if auto_link_deployments is not None and auto_link_deployments != obj.auto_link_deployments:
            changed.append("auto_link_deployments")
        if changed:
            version_record(
                obj=obj, reason=ObjectVersion.Reason.UPDATE, user=user, changed_fields=changed
            )
            audit_record(
                workspace=obj.workspace_id,
                actor=user,
                action="environment_object.update",
                obj=obj,
                fields=changed,
                detail={"newKey": new_key} if key_changed else None,
            )
        obj.key, obj.values = new_key, cleaned
        obj.updated_at, obj.updated_by = timezone.now(), user
        try:
            with transaction.atomic():
                obj.save()
        except IntegrityError:
            raise _taken_in_scope(obj.object_type, new_key, obj.deployment) from None
        if key_changed:
            for link in obj.links.select_related("deployment", "ide_project"):
                link.object_key = new_key
                try:
                    with transaction.atomic():
                        link.save(update_fields=["object_key"])
                except IntegrityError:
                    if link.deployment is not None:
                        raise _conflict_for(link.deployment, obj.object_type, new_key) from None
                    raise _taken_on_ide_project(
                        cast(IdeProject, link.ide_project), obj.object_type, new_key
                    ) from None
        if auto_link_deployments is not None and auto_link_deployments != obj.auto_link_deployments:
            if obj.scope != Scope.WORKSPACE:
                raise InvalidInput(
                    "Only Workspace objects can be auto-linked.",
                    {"autoLinkDeployments": "Not for a Deployment-scoped object."},
                )
            obj.auto_link_deployments = auto_link_deployments
            obj.save(update_fields=["auto_link_deployments"])
            if auto_link_deployments:
                _apply_auto_link(obj)
            else:
                # Auto links go; one that carries an override stays as an explicit link.
                auto = obj.links.filter(is_auto=True)
                for link in auto:
                    if link.overrides:
                        link.is_auto = False
                        link.save(update_fields=["is_auto"])
                    else:
                        link.delete()
    return obj


def environment_object_delete(*, user: User, obj: EnvironmentObject) -> None:
    """Delete an object and its links: every Deployment stops resolving it at once."""
    _require_edit(
        user,
        obj.workspace,
        obj.deployment,
        "delete environment objects",
        WorkspacePermission.DELETE_ENV_OBJECTS,
    )
    with transaction.atomic():
        # The version kept is the row as it is now, not as the caller read it.
        obj = _locked(obj)
        version_record(obj=obj, reason=ObjectVersion.Reason.DELETE, user=user)
        audit_record(
            workspace=obj.workspace_id, actor=user, action="environment_object.delete", obj=obj
        )
        obj.delete()


def _require_linkable(obj: EnvironmentObject) -> None:
    if obj.scope != Scope.WORKSPACE:
        raise InvalidInput(
            "Only Workspace objects can be linked; promote it first.",
            {"scope": "A Deployment-scoped object belongs to its Deployment."},
        )


def link_create(
    *,
    user: User,
    obj: EnvironmentObject,
    deployment: Deployment | None = None,
    ide_project: IdeProject | None = None,
    overrides: dict[str, Any] | None = None,
) -> Link:
    """Make a Workspace object available to one Deployment or IDE project. Linking a
    Deployment that was excluded from the object's auto-link ends that exclusion: the user
    now wants it linked."""
    require_workspace_perm(
        user, WorkspacePermission.UPDATE_ENV_OBJECTS, obj.workspace, "link environment objects"
    )
    _require_linkable(obj)
    if (deployment is None) == (ide_project is None):
        raise InvalidInput(
            "Link to one Deployment or one IDE project.", {"scopeEntityId": "Required."}
        )
    if overrides and deployment is None:
        raise InvalidInput("Overrides apply to Deployment links only.", {"overrides": "Not here."})
    cleaned = _clean_overrides(obj, overrides or {})
    with transaction.atomic():
        # The object as it is now, locked: a rename at the same moment waits, or has already
        # happened, so the link carries the current key (never a stale one). The Workspace's
        # auto-link lock first, in the order a rename takes them.
        lock_workspace_auto_links(obj.workspace_id)
        obj = _locked(obj)
        link_version_record(
            obj=obj,
            reason=ObjectVersion.Reason.LINK,
            user=user,
            deployment=deployment,
            ide_project=ide_project,
            set_fields=list(cleaned),
        )
        link = _link(obj, deployment=deployment, ide_project=ide_project, overrides=cleaned)
        detail = {"ideProjectId": link.ide_project_id} if ide_project else {}
        if deployment is not None and obj.auto_link_excluded.filter(pk=deployment.pk).exists():
            obj.auto_link_excluded.remove(deployment)
            detail["autoLinkExclusionEnded"] = True
        audit_record(
            workspace=obj.workspace_id,
            actor=user,
            action="link.create",
            obj=obj,
            deployment_id=link.deployment_id,
            fields=cleaned,
            detail=detail,
        )
        return link


def link_delete(*, user: User, link: Link) -> None:
    """Unlink. Unlinking an auto-linked object from a Deployment excludes that Deployment from
    the auto-link, so it does not come back."""
    require_workspace_perm(
        user,
        WorkspacePermission.UPDATE_ENV_OBJECTS,
        link.environment_object.workspace,
        "unlink environment objects",
    )
    if link.is_home:
        raise InvalidInput("A Deployment-scoped object cannot be unlinked from its Deployment.")
    with transaction.atomic():
        # Against auto-link being switched on at the same moment: the Workspace's auto-link
        # lock, then the object and the link as they are now (see `lock_workspace_auto_links`).
        lock_workspace_auto_links(link.environment_object.workspace_id)
        obj = _locked(link.environment_object)
        locked_link = Link.objects.select_for_update().filter(pk=link.pk).first()
        if locked_link is None:
            return  # unlinked meanwhile: nothing left to do
        link = locked_link
        if link.deployment_id and obj.auto_link_deployments:
            obj.auto_link_excluded.add(link.deployment_id)
        link_version_record(
            obj=obj,
            reason=ObjectVersion.Reason.UNLINK,
            user=user,
            deployment_id=link.deployment_id,
            ide_project_id=link.ide_project_id,
        )
        audit_record(
            workspace=obj.workspace_id,
            actor=user,
            action="link.delete",
            obj=obj,
            deployment_id=link.deployment_id,
            detail={"ideProjectId": link.ide_project_id} if link.ide_project_id else None,
        )
        link.delete()


def _clean_overrides(obj: EnvironmentObject, overrides: dict[str, Any]) -> dict[str, Any]:
    try:
        return object_types.clean_overrides(obj.object_type, overrides)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc, prefix="overrides.") from None


_MISSING = object()


def link_set_overrides(
    *,
    user: User,
    link: Link,
    overrides: dict[str, Any] | None = None,
    unset_fields: Sequence[str] = (),
) -> Link:
    """Set some override fields of a Deployment link and unset others (they fall back to the
    Workspace value). Unsetting `extra` unsets its `extra.KEY` overrides too. Fields not named
    keep their override."""
    obj = link.environment_object
    require_workspace_perm(
        user, WorkspacePermission.UPDATE_ENV_OBJECTS, obj.workspace, "override environment objects"
    )
    if link.is_home or link.deployment_id is None:
        raise InvalidInput(
            "Overrides apply to a Workspace object's Deployment links only.",
            {"overrides": "Not on this link."},
        )
    cleaned = _clean_overrides(obj, overrides or {})
    unknown = [
        name
        for name in unset_fields
        if name not in object_types.SPECS[obj.object_type].overridable
        and not (obj.object_type == ObjectType.CONNECTION and name.startswith("extra."))
    ]
    if unknown:
        raise InvalidInput(
            f"Cannot unset {', '.join(map(repr, unknown))}: not an overridable field.",
            {"unset_fields": "Only overridable fields can be unset."},
        )

    def unset(name: str) -> bool:
        return name in unset_fields or ("extra" in unset_fields and name.startswith("extra."))

    with transaction.atomic():
        # The object before its link, in the order an unlink takes them: its version is the
        # object as it is now.
        obj = _locked(obj)
        link = _locked(link)
        merged = {k: v for k, v in link.overrides.items() if not unset(k)}
        merged.update(cleaned)
        if merged != link.overrides:
            link_version_record(
                obj=obj,
                reason=ObjectVersion.Reason.OVERRIDE,
                user=user,
                deployment_id=link.deployment_id,
                set_fields=[k for k in cleaned if link.overrides.get(k, _MISSING) != cleaned[k]],
                unset_fields=[k for k in link.overrides if unset(k)],
            )
        link.overrides = merged
        link.updated_at = timezone.now()
        link.save(update_fields=["overrides", "updated_at"])
        audit_record(
            workspace=obj.workspace_id,
            actor=user,
            action="link.override",
            obj=obj,
            deployment_id=link.deployment_id,
            fields=[*cleaned, *unset_fields],
            detail={"unset": sorted(unset_fields)} if unset_fields else None,
        )
    return link


def auto_link_exclude(*, user: User, obj: EnvironmentObject, deployment: Deployment) -> None:
    """Keep one Deployment out of an object's auto-link (and unlink it there)."""
    require_workspace_perm(
        user, WorkspacePermission.UPDATE_ENV_OBJECTS, obj.workspace, "change links"
    )
    _require_linkable(obj)
    if deployment.workspace_id != obj.workspace_id:
        raise InvalidInput(
            "That Deployment is not in this Workspace.", {"scopeEntityId": "Unknown."}
        )
    with transaction.atomic():
        obj = _locked(obj)
        obj.auto_link_excluded.add(deployment)
        unlinked = obj.links.filter(deployment=deployment, is_home=False)
        if unlinked.exists():
            link_version_record(
                obj=obj, reason=ObjectVersion.Reason.UNLINK, user=user, deployment=deployment
            )
        unlinked.delete()
        audit_record(
            workspace=obj.workspace_id,
            actor=user,
            action="link.exclude",
            obj=obj,
            deployment_id=deployment.pk,
        )


def auto_link_new_deployment(*, deployment: Deployment) -> None:
    """Link every auto-linked Workspace object to a Deployment that was just created (called
    inside `deployment_create`'s transaction). Under the Workspace's auto-link lock, so an
    object auto-linked, created or renamed at the same moment is seen as it is after."""
    lock_workspace_auto_links(deployment.workspace_id)
    objects = list(
        EnvironmentObject.objects.filter(
            workspace=deployment.workspace_id, scope=Scope.WORKSPACE, auto_link_deployments=True
        )
    )
    # Each object's history says it was linked here, as a link made by hand does.
    link_versions_record(
        override_fields={o.pk: () for o in objects},
        reason=ObjectVersion.Reason.LINK,
        user=None,
        deployment=deployment,
        detail={"autoLink": True},
    )
    Link.objects.bulk_create(
        Link(
            environment_object=o,
            deployment=deployment,
            object_type=o.object_type,
            object_key=o.key,
            is_auto=True,
            overrides={},
        )
        for o in objects
    )
