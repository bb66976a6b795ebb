from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Workspace, WorkspacePermission
from deployments.models import Deployment, IdeProject
from envmanager import object_types
from envmanager.encryption import EncryptedJSONField
from envmanager.object_types import ObjectType, Scope


class EnvironmentObjectQuerySet(models.QuerySet):
    def visible_to(self, user) -> "EnvironmentObjectQuerySet":
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
        return self.deployment or self.ide_project
