from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import (
    DeploymentPermission,
    User,
    Workspace,
    WorkspacePermission,
    hash_token,
    new_token,
)
from accounts.permissions import require_deployment_perm, require_workspace_perm
from accounts.services import grant_deployment_role_permissions
from deployments.models import Deployment, DeploymentToken, IdeProject
from envmanager.errors import Conflict, InvalidInput, NotFound
from envmanager.services.audit import audit_record

METADATA_DB_SCHEMES = (
    "postgresql://",
    "postgresql+psycopg2://",
    "postgresql+psycopg://",
    "postgres://",
    "sqlite:///",
)


def validate_metadata_db_url(url: str) -> None:
    if url and not url.startswith(METADATA_DB_SCHEMES):
        raise InvalidInput(
            "The metadata database URL must start with postgresql:// or sqlite:///.",
            {"metadata_db_url": "Use a SQLAlchemy-style URL: postgresql://… or sqlite:///…"},
        )


def validate_fernet_key(value: str) -> None:
    from cryptography.fernet import Fernet

    for part in (p.strip() for p in value.split(",") if p.strip()):
        try:
            Fernet(part.encode())
        except (ValueError, TypeError):
            # The message never repeats the key.
            raise InvalidInput(
                "The Fernet key is not valid.",
                {"fernet_key": "Each comma-separated key must be 32 url-safe base64 bytes."},
            ) from None


def _save(obj, unique_message: str, field: str = "name"):
    try:
        # Uniqueness is left to the database, which names the field through Conflict below.
        obj.full_clean(validate_constraints=False, validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from None
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise Conflict(unique_message, {field: unique_message}) from None


def deployment_create(
    *,
    user: User,
    workspace: Workspace,
    name: str,
    kind: str = Deployment.Kind.STANDARD,
    description: str = "",
    metadata_db_url: str = "",
    fernet_key: str = "",
) -> Deployment:
    """Operators and Owners add Deployments. Auto-linked Workspace objects link to it at once."""
    from envmanager.services import auto_link_new_deployment

    require_workspace_perm(
        user, WorkspacePermission.CREATE_DEPLOYMENTS, workspace, "create Deployments"
    )
    validate_metadata_db_url(metadata_db_url)
    validate_fernet_key(fernet_key)
    deployment = Deployment(
        workspace=workspace,
        name=(name or "").strip(),
        kind=kind,
        description=description,
        metadata_db_url=metadata_db_url.strip(),
        fernet_key=fernet_key.strip(),
    )
    with transaction.atomic():
        _save(
            deployment, f"A Deployment named {deployment.name!r} already exists in this Workspace."
        )
        grant_deployment_role_permissions(deployment)
        auto_link_new_deployment(deployment=deployment)
        audit_record(
            workspace=workspace,
            actor=user,
            action="deployment.create",
            deployment_id=deployment.pk,
            detail={"name": deployment.name},
        )
    return deployment


def deployment_update(
    *,
    user: User,
    deployment: Deployment,
    name: str | None = None,
    description: str | None = None,
    kind: str | None = None,
    metadata_db_url: str | None = None,
    fernet_key: str | None = None,
) -> Deployment:
    """Fields left as None keep their value, so stored secrets stay unless a new one is given."""
    require_deployment_perm(user, DeploymentPermission.UPDATE, deployment, "update it")
    if metadata_db_url is not None:
        validate_metadata_db_url(metadata_db_url)
        deployment.metadata_db_url = metadata_db_url.strip()
    if fernet_key is not None:
        validate_fernet_key(fernet_key)
        deployment.fernet_key = fernet_key.strip()
    for field, value in (("name", name), ("description", description), ("kind", kind)):
        if value is not None:
            setattr(deployment, field, value.strip() if field == "name" else value)
    changed = [
        n
        for n, v in (
            ("name", name),
            ("description", description),
            ("kind", kind),
            ("metadata_db_url", metadata_db_url),
            ("fernet_key", fernet_key),
        )
        if v is not None
    ]
    with transaction.atomic():
        _save(
            deployment, f"A Deployment named {deployment.name!r} already exists in this Workspace."
        )
        audit_record(
            workspace=deployment.workspace_id,
            actor=user,
            action="deployment.update",
            deployment_id=deployment.pk,
            fields=changed,
        )
    return deployment


def ide_project_create(
    *, user: User, workspace: Workspace, name: str, description: str = ""
) -> IdeProject:
    require_workspace_perm(
        user, WorkspacePermission.CREATE_DEPLOYMENTS, workspace, "create IDE projects"
    )
    project = IdeProject(workspace=workspace, name=(name or "").strip(), description=description)
    _save(project, f"An IDE project named {project.name!r} already exists in this Workspace.")
    return project


def deployment_token_create(
    *, user: User, deployment: Deployment, name: str
) -> tuple[DeploymentToken, str]:
    """A read-only token for one Deployment's secrets backend; the plain token is shown once."""
    require_deployment_perm(user, DeploymentPermission.CREATE_TOKENS, deployment, "create tokens")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("A token needs a name of 1 to 100 characters.", {"name": "Required."})
    plain = new_token("emd")
    with transaction.atomic():
        token = DeploymentToken.objects.create(
            deployment=deployment,
            name=name,
            token_hash=hash_token(plain),
            hint=plain[:8],
            created_by=user,
        )
        audit_record(
            workspace=deployment.workspace_id,
            actor=user,
            action="deployment_token.create",
            deployment_id=deployment.pk,
            detail={"tokenId": token.pk, "name": name},
        )
    return token, plain


def deployment_token_revoke(*, user: User, token: DeploymentToken) -> DeploymentToken:
    require_deployment_perm(
        user, DeploymentPermission.CREATE_TOKENS, token.deployment, "revoke tokens"
    )
    with transaction.atomic():
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(
                workspace=token.deployment.workspace_id,
                actor=user,
                action="deployment_token.revoke",
                deployment_id=token.deployment_id,
                detail={"tokenId": token.pk, "name": token.name},
            )
    return token


def deployment_for_token(plain: str) -> DeploymentToken:
    token = (
        DeploymentToken.objects.select_related("deployment")
        .filter(token_hash=hash_token(plain), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        raise NotFound("Unknown or revoked Deployment token.")
    return token
