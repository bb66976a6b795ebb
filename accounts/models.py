import hashlib
import secrets
from datetime import timedelta
from typing import Any, ClassVar

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person, identified by email address."""

    username = None  # type: ignore[assignment]  # no username: the email is the USERNAME_FIELD
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]  # stubs expect auth.UserManager (username-based); ours is the email-based one

    def __str__(self) -> str:
        return self.email


class Role(models.TextChoices):
    OWNER = "OWNER", "Owner"
    OPERATOR = "OPERATOR", "Operator"
    AUTHOR = "AUTHOR", "Author"
    MEMBER = "MEMBER", "Member"


class WorkspacePermission:
    """Codenames of the object permissions a Workspace carries (reference vocabulary in labels)."""

    VIEW = "view_workspace"
    VIEW_ENV_OBJECTS = "view_env_objects"
    USE_ENV_OBJECTS = "use_env_objects"
    CREATE_ENV_OBJECTS = "create_env_objects"
    UPDATE_ENV_OBJECTS = "update_env_objects"
    DELETE_ENV_OBJECTS = "delete_env_objects"
    CREATE_DEPLOYMENTS = "create_deployments"
    # A Deployment's metadata-DB URL and Fernet keys: a door the server opens, so Owners only.
    SET_METADATA_DB = "set_metadata_db"
    # Deleting a Deployment revokes its tokens and drops its migration runs' undo data: Owners.
    DELETE_DEPLOYMENTS = "delete_deployments"
    MIGRATE_FROM_AIRFLOW = "migrate_from_airflow"
    MANAGE_MEMBERS = "manage_members"
    UPDATE_SETTINGS = "update_settings"
    VIEW_AUDIT_LOG = "view_audit_log"


class DeploymentPermission:
    """Codenames of the object permissions a Deployment carries."""

    VIEW = "view_deployment"
    UPDATE = "update_deployment"
    CREATE_TOKENS = "create_deployment_tokens"


P = WorkspacePermission
D = DeploymentPermission
_MEMBER_WS = [P.VIEW]
_AUTHOR_WS = [*_MEMBER_WS, P.VIEW_ENV_OBJECTS, P.USE_ENV_OBJECTS]
_OPERATOR_WS = [
    *_AUTHOR_WS,
    P.CREATE_ENV_OBJECTS,
    P.UPDATE_ENV_OBJECTS,
    P.DELETE_ENV_OBJECTS,
    P.CREATE_DEPLOYMENTS,
]
_OWNER_WS = [
    *_OPERATOR_WS,
    P.SET_METADATA_DB,
    P.DELETE_DEPLOYMENTS,
    P.MIGRATE_FROM_AIRFLOW,
    P.MANAGE_MEMBERS,
    P.UPDATE_SETTINGS,
    P.VIEW_AUDIT_LOG,
]

# What each role may do: Workspace permissions, and the permissions it holds on every
# Deployment of the Workspace. This table is the single source of the role rules.
ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    Role.MEMBER: {"workspace": _MEMBER_WS, "deployment": [D.VIEW]},
    Role.AUTHOR: {"workspace": _AUTHOR_WS, "deployment": [D.VIEW]},
    Role.OPERATOR: {"workspace": _OPERATOR_WS, "deployment": [D.VIEW, D.UPDATE, D.CREATE_TOKENS]},
    Role.OWNER: {"workspace": _OWNER_WS, "deployment": [D.VIEW, D.UPDATE, D.CREATE_TOKENS]},
}


class WorkspaceQuerySet(models.QuerySet["Workspace"]):
    def visible_to(self, user: "User") -> "WorkspaceQuerySet":
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(memberships__user=user)


class Workspace(models.Model):
    """The tenant: Deployments, IDE projects and environment objects belong to one Workspace."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # Lets Authors and above fetch a Deployment's resolved environment with secrets for a
    # local Airflow. Off by default; every such fetch is audited.
    local_development_secrets = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        permissions = [
            (P.VIEW_ENV_OBJECTS, "workspace.envObjects.get"),
            (P.USE_ENV_OBJECTS, "workspace.envObjects.use"),
            (P.CREATE_ENV_OBJECTS, "workspace.envObjects.create"),
            (P.UPDATE_ENV_OBJECTS, "workspace.envObjects.update"),
            (P.DELETE_ENV_OBJECTS, "workspace.envObjects.delete"),
            (P.CREATE_DEPLOYMENTS, "workspace.deployments.create"),
            (P.SET_METADATA_DB, "workspace.deployments.metadataDb.update"),
            (P.DELETE_DEPLOYMENTS, "workspace.deployments.delete"),
            (P.MIGRATE_FROM_AIRFLOW, "workspace.envObjects.migrate"),
            (P.MANAGE_MEMBERS, "workspace.members.manage"),
            (P.UPDATE_SETTINGS, "workspace.settings.update"),
            (P.VIEW_AUDIT_LOG, "workspace.auditLogs.get"),
        ]

    def __str__(self) -> str:
        return self.name

    def role_group_name(self, role: str) -> str:
        return f"workspace-{self.pk}-{role.lower()}"

    def role_group(self, role: str) -> Group:
        return Group.objects.get(name=self.role_group_name(role))


class Membership(models.Model):
    """A user's one role in one Workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace_id", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_role_per_workspace")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace}: {self.get_role_display()}"


def hash_token(token: str) -> str:
    """Tokens are long random strings, so one SHA-256 is enough (no slow hash needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


# Writing last_used_at on every request would turn each read into a write; a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenQuerySet(models.QuerySet):
    def for_bearer(self, plain: str | None) -> "TokenQuerySet":
        """The active token whose plain value is `plain`; a value without this kind's prefix
        (or none at all) matches nothing, without a query."""
        if not plain or not plain.startswith(f"{self.model.PREFIX}_"):
            return self.none()
        return self.filter(token_hash=hash_token(plain), revoked_at__isnull=True)


class Token(models.Model):
    """What a personal API token and a Deployment token share: a name, the hash of the plain
    value (shown once, never stored), a hint to tell it apart, when it was last used, and
    revocation. `Kind.objects.for_bearer(plain)` is the one way to find a token."""

    PREFIX: ClassVar[str]

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(
        max_length=12, help_text="The token's first characters, to tell it apart."
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def new_plain(cls) -> str:
        return new_token(cls.PREFIX)

    def mark_used(self) -> None:
        """Record the use, at most once per LAST_USED_RESOLUTION."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > LAST_USED_RESOLUTION:
            type(self).objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class ApiToken(Token):
    """A personal API token: acts as its user."""

    PREFIX = "emp"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")


class AuditEvent(models.Model):
    """Who did what, when, to which object: written in the same transaction as the change, so
    a change without its audit row cannot happen. Holds field names, never values."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_events")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who, as text that outlives the user row: an email, "token <hint>" or "system".
    actor_label = models.CharField(max_length=255)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=24, blank=True)
    object_key = models.CharField(max_length=255, blank=True)
    # Plain ids, not foreign keys: the event must outlive what it is about.
    environment_object_id = models.BigIntegerField(null=True, blank=True)
    deployment_id = models.BigIntegerField(null=True, blank=True)
    fields = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        # The table keeps the name it was made with in envmanager (moved here, to the app every
        # other app stands on, without copying a row: migrations accounts 0003, envmanager 0013).
        db_table = "envmanager_auditevent"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"
