"""Promote to Workspace Environment: a Deployment-scoped object becomes a Workspace object
linked to its Deployment, which goes on resolving exactly the same values."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import DeploymentPermission, User, WorkspacePermission
from accounts.permissions import has_deployment_perm, has_workspace_perm
from deployments.models import Deployment
from envmanager import object_types
from envmanager.kernel.errors import InvalidInput, NotFound, NotPermitted
from envmanager.models import EnvironmentObject, Link, ObjectVersion
from envmanager.object_types import ObjectType, Scope
from envmanager.services.versions import link_version_record, version_record


def _workspace_object(obj: EnvironmentObject) -> EnvironmentObject | None:
    """The Workspace object with this object's type and key, locked, if there is one."""
    return (
        EnvironmentObject.objects.select_for_update()
        .filter(
            workspace=obj.workspace_id,
            scope=Scope.WORKSPACE,
            object_type=obj.object_type,
            key=obj.key,
        )
        .first()
    )


def _promote_in_place(
    user: User, obj: EnvironmentObject, deployment: Deployment
) -> EnvironmentObject:
    """No Workspace object has the key: this object becomes it (raises IntegrityError when
    another one took the key meanwhile)."""
    version_record(obj=obj, reason=ObjectVersion.Reason.UPDATE, user=user, changed_fields=["scope"])
    obj.scope, obj.deployment = Scope.WORKSPACE, None
    obj.updated_at, obj.updated_by = timezone.now(), user
    obj.save(update_fields=["scope", "deployment", "updated_at", "updated_by"])
    obj.links.filter(deployment=deployment).update(is_home=False)
    audit_record(
        workspace=obj.workspace_id,
        actor=user,
        action="environment_object.promote",
        obj=obj,
        deployment_id=deployment.pk,
        detail={"overrideCreated": False},
    )
    return obj


def environment_object_promote(
    *, user: User, obj: EnvironmentObject, confirm_key: str | None = None
) -> tuple[EnvironmentObject, bool]:
    """Promote a Deployment-scoped object; returns the Workspace object now serving the
    Deployment and whether an override was created on an existing one.

    Needs create-env-objects on the Workspace and update on the Deployment (Operator, Owner,
    or an Author with a per-Deployment grant who can also create). Refused for a Workspace
    object, and so for an override (which is part of a Workspace object's link, not an object
    of its own). For environment variables the caller must type the key (`confirm_key`).

    If the Workspace has no object of that type and key, this object itself becomes the
    Workspace object. Otherwise a Deployment-level override on the existing one is created with
    exactly the overridable fields whose values differ, and this object is deleted; fields that
    cannot be overridden (a description, a variable's secret flag) take the Workspace
    object's value, which changes nothing Airflow reads; but a secret stays secret, so a secret
    variable merged into a plain one makes the Workspace variable secret. One transaction.
    """
    deployment = obj.deployment
    if obj.scope != Scope.DEPLOYMENT or deployment is None:
        raise InvalidInput(
            "Only a Deployment's own object can be promoted; this one is already in the "
            "Workspace (an override on it is part of its link, not an object to promote)."
        )
    if not (
        has_workspace_perm(user, WorkspacePermission.CREATE_ENV_OBJECTS, obj.workspace)
        and has_deployment_perm(user, DeploymentPermission.UPDATE, deployment)
    ):
        raise NotPermitted(
            "Promoting needs permission to create Workspace objects and to update this "
            "Deployment (Workspace Operator or Owner)."
        )
    if obj.object_type == ObjectType.ENVIRONMENT_VARIABLE and confirm_key != obj.key:
        raise InvalidInput(
            "Type the environment variable's key to confirm.",
            {"confirmKey": f"Type {obj.key} to confirm."},
        )
    with transaction.atomic():
        locked = EnvironmentObject.objects.select_for_update().filter(pk=obj.pk).first()
        if locked is None or locked.scope != Scope.DEPLOYMENT:
            raise NotFound("It was deleted or promoted meanwhile.")
        obj = locked
        existing = _workspace_object(obj)
        if existing is None:
            try:
                with transaction.atomic():
                    return _promote_in_place(user, obj, deployment), False
            except IntegrityError:
                # Another promotion of this key (from another Deployment) made the Workspace
                # object first: this one becomes an override on it, as if it had been there.
                obj = EnvironmentObject.objects.get(pk=obj.pk)
                existing = _workspace_object(obj)
                if existing is None:
                    raise
        overrides = {
            name: obj.values.get(name)
            for name in object_types.SPECS[obj.object_type].overridable
            if obj.values.get(name) != existing.values.get(name)
        }
        # Not a deletion: its values live on as the override, so it is not offered among the
        # deleted objects to restore (its history keeps this version).
        version_record(
            obj=obj,
            reason=ObjectVersion.Reason.PROMOTE,
            user=user,
            changed_fields=sorted(overrides),
        )
        # Its home link goes with it, freeing the key on the Deployment (which, holding its own
        # object with this key, could not have been linked to the Workspace one).
        obj.delete()
        # A secret stays secret: a secret value merged into a plain variable's override would
        # be shown to every Author, so the Workspace variable becomes secret (which changes
        # nothing Airflow reads).
        made_secret = object_types.secret_flag_lowered(obj.values, existing.values)
        # The Workspace object's history shows the merge too: its version before the override.
        merge = link_version_record(
            obj=existing,
            reason=ObjectVersion.Reason.MERGE,
            user=user,
            deployment=deployment,
            set_fields=sorted(overrides),
        )
        now = timezone.now()
        if made_secret:
            merge.changed_fields = [*merge.changed_fields, "is_secret"]
            merge.save(update_fields=["changed_fields"])
            existing.values = {**existing.values, "is_secret": True}
            existing.updated_at, existing.updated_by = now, user
            existing.save(update_fields=["values", "updated_at", "updated_by"])
        Link.objects.create(
            environment_object=existing,
            deployment=deployment,
            object_type=existing.object_type,
            object_key=existing.key,
            overrides=overrides,
            created_at=now,
            updated_at=now,
        )
        audit_record(
            workspace=existing.workspace_id,
            actor=user,
            action="environment_object.promote",
            obj=existing,
            deployment_id=deployment.pk,
            fields=overrides,
            detail={"overrideCreated": True, **({"madeSecret": True} if made_secret else {})},
        )
        return existing, True
