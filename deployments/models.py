from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import DeploymentPermission, Token, User, Workspace
from envmanager.kernel.encryption import EncryptedTextField


class DeploymentQuerySet(models.QuerySet["Deployment"]):
    def visible_to(self, user: User) -> "DeploymentQuerySet":
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(workspace__memberships__user=user)


class Deployment(models.Model):
    """One Airflow installation in a Workspace, and how to reach its metadata database."""

    class Kind(models.TextChoices):
        STANDARD = "STANDARD", "Standard"
        REMOTE_EXECUTION = "REMOTE_EXECUTION", "Remote execution"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="deployments")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STANDARD)
    # SQLAlchemy-style URL of the Airflow metadata DB and the Fernet key(s) of its
    # `[core] fernet_key` (comma-separated, newest first). Both are secrets.
    metadata_db_url = EncryptedTextField(blank=True, default="")
    fernet_key = EncryptedTextField(blank=True, default="")
    # Which database the URL reaches (`deployments.metadata_db_target`), hashed: one metadata
    # database belongs to at most one Deployment of the whole installation.
    metadata_db_fingerprint = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="deployment_name_unique")
        ]
        permissions = [
            (DeploymentPermission.UPDATE, "deployment.update"),
            (DeploymentPermission.CREATE_TOKENS, "deployment.apiTokens.create"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_remote_execution(self) -> bool:
        return self.kind == self.Kind.REMOTE_EXECUTION


class IdeProject(models.Model):
    """A development project that can be linked to Workspace environment objects."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="ide_projects")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="ide_project_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class DeploymentToken(Token):
    """A read-only token scoped to one Deployment, used by its Airflow's secrets backend."""

    PREFIX = "emd"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="tokens")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )


class LookupCount(models.Model):
    """How often one Deployment token looked up one key (counted in memory, written in
    batches: not one row per lookup)."""

    token = models.ForeignKey(
        DeploymentToken, on_delete=models.CASCADE, related_name="lookup_counts"
    )
    object_type = models.CharField(max_length=24)
    object_key = models.CharField(max_length=255)
    found = models.BooleanField(default=True)
    count = models.BigIntegerField(default=0)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table keeps the name it was made with in envmanager (moved here, beside the tokens
        # it counts, without copying a row: migrations deployments 0003, envmanager 0013).
        db_table = "envmanager_lookupcount"
        constraints = [
            models.UniqueConstraint(
                fields=["token", "object_type", "object_key", "found"], name="lookup_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_key}: {self.count}"
