from typing import cast

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import User, Workspace, WorkspacePermission
from deployments.models import Deployment, IdeProject
from envmanager import object_types
from envmanager.kernel.encryption import EncryptedJSONField
from envmanager.object_types import ObjectType, Scope


class EnvironmentObjectQuerySet(models.QuerySet):
    def visible_to(self, user: User) -> "EnvironmentObjectQuerySet":
        """Objects of the Workspaces where the user may see environment objects (Author+)."""
        from guardian.shortcuts import get_objects_for_user

        if not getattr(user, "is_authenticated", False):
            return self.none()
        workspaces = get_objects_for_user(
            user,
            f"accounts.{WorkspacePermission.VIEW_ENV_OBJECTS}",
            klass=Workspace,
            accept_global_perms=False,
        )
        return self.filter(workspace__in=workspaces)


class EnvironmentObject(models.Model):
    """A connection, Airflow variable, environment variable or metrics export.

    All of its values (`values`, a dict whose fields `object_types.SPECS` defines) are stored
    encrypted. A Workspace-scoped object reaches Deployments through links; a Deployment-scoped
    one belongs to one Deployment.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="env_objects")
    scope = models.CharField(max_length=16, choices=Scope.choices)
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.CASCADE, related_name="env_objects"
    )
    object_type = models.CharField(max_length=24, choices=ObjectType.choices)
    key = models.CharField(max_length=255)
    values = EncryptedJSONField()
    auto_link_deployments = models.BooleanField(default=False)
    auto_link_excluded = models.ManyToManyField(
        Deployment, blank=True, related_name="auto_link_exclusions"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = EnvironmentObjectQuerySet.as_manager()

    class Meta:
        ordering = ["object_type", "key", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "object_type", "key"],
                condition=Q(scope=Scope.WORKSPACE),
                name="workspace_object_key_unique",
            ),
            models.UniqueConstraint(
                fields=["deployment", "object_type", "key"],
                condition=Q(scope=Scope.DEPLOYMENT),
                name="deployment_object_key_unique",
            ),
            models.CheckConstraint(
                condition=(Q(scope=Scope.WORKSPACE, deployment__isnull=True))
                | Q(scope=Scope.DEPLOYMENT, deployment__isnull=False, auto_link_deployments=False),
                name="object_scope_matches_owner",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "object_type", "key"])]

    def __str__(self) -> str:
        return f"{self.get_object_type_display()} {self.key}"

    def __repr__(self) -> str:
        return f"<EnvironmentObject {self.pk} {self.object_type} {self.key!r}>"

    @property
    def is_workspace_scoped(self) -> bool:
        return self.scope == Scope.WORKSPACE

    def secret_fields(self) -> tuple[str, ...]:
        return object_types.secret_fields(self.object_type, self.values)


class Link(models.Model):
    """An environment object made available to one Deployment or one IDE project.

    Every object a Deployment resolves has exactly one Link to it: a Workspace object's links,
    and a Deployment-scoped object's own link to its Deployment (`is_home`). The copied
    `object_type` / `object_key` let the database enforce that one key resolves to one value
    per type in a Deployment. Overrides (encrypted) hold the fields that differ here.
    """

    environment_object = models.ForeignKey(
        EnvironmentObject, on_delete=models.CASCADE, related_name="links"
    )
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.CASCADE, related_name="links"
    )
    ide_project = models.ForeignKey(
        IdeProject, null=True, blank=True, on_delete=models.CASCADE, related_name="links"
    )
    object_type = models.CharField(max_length=24, choices=ObjectType.choices)
    object_key = models.CharField(max_length=255)
    is_home = models.BooleanField(default=False)
    # Made by the object's auto-link to every Deployment (removed when that is switched off).
    is_auto = models.BooleanField(default=False)
    overrides = EncryptedJSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(deployment__isnull=False, ide_project__isnull=True)
                | Q(deployment__isnull=True, ide_project__isnull=False, is_home=False),
                name="link_has_one_target",
            ),
            models.UniqueConstraint(
                fields=["deployment", "object_type", "object_key"],
                name="deployment_resolves_key_once",
            ),
            models.UniqueConstraint(
                fields=["ide_project", "object_type", "object_key"],
                name="ide_project_resolves_key_once",
            ),
        ]

    def __str__(self) -> str:
        target = self.deployment or self.ide_project
        return f"{self.object_type} {self.object_key} → {target}"

    def __repr__(self) -> str:
        return f"<Link {self.pk} {self.object_type} {self.object_key!r}>"

    @property
    def target(self) -> Deployment | IdeProject:
        """A link has exactly one target (a check constraint says so)."""
        return cast(Deployment | IdeProject, self.deployment or self.ide_project)


class MigrationRun(models.Model):
    """One "Migrate from Airflow" of some connections or variables of one Deployment.

    The run moves through copy + verify, then waits out the propagation window, then deletes
    the source rows by compare-and-delete. At most one run per Deployment and object type is
    active at a time (a database constraint): a connections run and a variables run of one
    Deployment go on together, and two runs that could touch the same key never overlap. A
    worker holds a lease while it works on the run, so a retry never overlaps a live worker.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        COPYING = "COPYING", "Copying and verifying"
        WAITING = "WAITING", "Waiting for the propagation window"
        DELETING = "DELETING", "Deleting source rows"
        UNDOING = "UNDOING", "Undoing"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        PARTIAL = "PARTIAL", "Partly done"
        FAILED = "FAILED", "Failed"
        UNDONE = "UNDONE", "Undone"

    class Mode(models.TextChoices):
        MOVE = "MOVE", "Migrate from Airflow"
        # Rows the Deployment already resolves with the very same values: removed from the
        # metadata DB (verified, after the window, compare-and-delete), nothing copied.
        REMOVE_SHADOWED = "REMOVE_SHADOWED", "Remove shadowed rows from Airflow"

    ACTIVE = (Status.PENDING, Status.COPYING, Status.WAITING, Status.DELETING, Status.UNDOING)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="migration_runs"
    )
    object_type = models.CharField(max_length=24, choices=ObjectType.choices)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.MOVE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # A message for the user when the run failed as a whole (never a secret).
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    delete_after = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # The database the run read (`Deployment.metadata_db_fingerprint` then): its copy, its
    # deletions and its undo reach only that one, whatever the Deployment's URL says later.
    metadata_db_fingerprint = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "object_type"],
                condition=Q(status__in=["PENDING", "COPYING", "WAITING", "DELETING", "UNDOING"]),
                name="one_active_migration_per_deployment_type",
            )
        ]

    def __str__(self) -> str:
        return f"Migration {self.pk} of {self.deployment} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class MigrationItem(models.Model):
    """One selected connection or variable of a run, and the step it has reached."""

    class State(models.TextChoices):
        SELECTED = "SELECTED", "Selected"
        VERIFIED = "VERIFIED", "Copied and verified"
        DELETED = "DELETED", "Moved (source row deleted)"
        KEPT_CHANGED = "KEPT_CHANGED", "Kept: changed in Airflow since it was read"
        KEPT_UNRESOLVED = (
            "KEPT_UNRESOLVED",
            "Kept: the Deployment no longer resolves the copy (unlinked or deleted meanwhile)",
        )
        CONFLICT = "CONFLICT", "Conflict: the Deployment already resolves this key"
        FAILED = "FAILED", "Failed"
        UNDONE = "UNDONE", "Undone"
        # The user chose, when undoing the run, to leave this one migrated (work done on it
        # since the run would have been undone with it).
        LEFT_MIGRATED = "LEFT_MIGRATED", "Left migrated at undo"

    class Action(models.TextChoices):
        NONE = "", "—"
        CREATED = "CREATED", "New Workspace object"
        OVERRIDDEN = "OVERRIDDEN", "Override on an existing Workspace object"
        SHADOWED = "SHADOWED", "Shadowed row, identical to what the Deployment resolves"

    run = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="items")
    object_key = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SELECTED)
    action = models.CharField(max_length=16, choices=Action.choices, blank=True, default="")
    reason = models.TextField(blank=True)
    environment_object = models.ForeignKey(
        EnvironmentObject, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    link_created = models.BooleanField(default=False)
    # The source row exactly as Airflow stored it (its ciphertext included), encrypted again
    # by us: what compare-and-delete compares with and what undo writes back.
    source_row = EncryptedJSONField(null=True, blank=True)
    # For an override on an existing object: the link's overrides before, for undo.
    previous_overrides = EncryptedJSONField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["object_key"]
        constraints = [
            models.UniqueConstraint(fields=["run", "object_key"], name="migration_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.object_key}: {self.state}"

    def __repr__(self) -> str:
        return f"<MigrationItem {self.pk} {self.object_key!r} {self.state}>"


# How long a deleted object can be restored from its last version; after that it is purged.
RESTORE_DELETED_DAYS = 30


class ObjectVersion(models.Model):
    """An earlier state of an environment object, kept (encrypted) each time it changes or is
    deleted, so it can be restored. Deleted objects can be restored for 30 days. A Deployment
    object that promotion merged into an existing Workspace object's override is gone but not
    deleted (its values live on in the override): its last version says PROMOTE, stays in its
    history, and is not offered among the deleted objects."""

    class Reason(models.TextChoices):
        UPDATE = "UPDATE", "Before an update"
        DELETE = "DELETE", "Before deletion"
        RESTORE = "RESTORE", "Before a restore"
        PROMOTE = "PROMOTE", "Merged into a Workspace object by promotion"
        # Link and override changes of a Workspace object: the version is the object as it was
        # before; `detail` names the Deployment (or IDE project) and the override fields.
        LINK = "LINK", "Before a link"
        UNLINK = "UNLINK", "Before an unlink"
        OVERRIDE = "OVERRIDE", "Before an override change"
        MERGE = "MERGE", "Before a promotion merged a Deployment object into it"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    environment_object_id = models.BigIntegerField(db_index=True)
    object_type = models.CharField(max_length=24, choices=ObjectType.choices)
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    deployment_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    # Values, auto-link and links (with their overrides) as they were: secrets included, so
    # encrypted like the object itself.
    snapshot = EncryptedJSONField()
    changed_fields = models.JSONField(default=list, blank=True)
    # What a link or override change was about, in clear: the Deployment's or IDE project's id
    # and name, the override fields set and unset (names only, never a value).
    detail = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.object_type} {self.key} ({self.get_reason_display()})"
