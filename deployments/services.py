from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from accounts.audit import audit_record
from accounts.models import (
    DeploymentPermission,
    User,
    Workspace,
    WorkspacePermission,
    hash_token,
)
from accounts.permissions import require_deployment_perm, require_workspace_perm
from accounts.services import grant_deployment_role_permissions
from deployments.airflow_metadata import (
    AirflowMetadataDb,
    MetadataDbReport,
    open_deployment_metadata_db,
)
from deployments.metadata_db_target import metadata_db_target
from deployments.models import Deployment, DeploymentToken, IdeProject
from deployments.signals import deployment_created, deployment_deleted, deployment_deleting
from envmanager.kernel.errors import Conflict, InvalidInput, NotFound

SHARED_DATABASE = (
    "Another Deployment already uses this metadata database: one metadata database belongs to "
    "one Deployment."
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


def _save(obj: Deployment | IdeProject, unique_message: str, field: str = "name") -> None:
    try:
        # Uniqueness is left to the database, which names the field through Conflict below.
        obj.full_clean(validate_constraints=False, validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from None
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        fingerprint = getattr(obj, "metadata_db_fingerprint", None)
        if (
            fingerprint
            and Deployment.objects.filter(metadata_db_fingerprint=fingerprint)
            .exclude(pk=obj.pk)
            .exists()
        ):
            raise Conflict(SHARED_DATABASE, {"metadata_db_url": SHARED_DATABASE}) from None
        raise Conflict(unique_message, {field: unique_message}) from None


def _checked_metadata_db(*, deployment_pk: int | None, url: str, fernet_key: str) -> str | None:
    """The fingerprint of the database `url` reaches (None for no URL), once the allowlist
    admits it, no other Deployment has it, and the Fernet key decrypts its rows: what "Test
    connection" checks, run at every save so a wrong key shows here and not on the migrate
    page. Opens a connection: call it outside any transaction."""
    if not url:
        return None
    target = metadata_db_target(url)
    # Before connecting: a database another Deployment has is not opened for this one.
    others = Deployment.objects.filter(metadata_db_fingerprint=target.fingerprint)
    if deployment_pk is not None:
        others = others.exclude(pk=deployment_pk)
    if others.exists():
        raise Conflict(SHARED_DATABASE, {"metadata_db_url": SHARED_DATABASE})
    with AirflowMetadataDb(target, fernet_key) as db:
        db.report()
    return target.fingerprint


def _require_metadata_db_perm(user: User, workspace: Workspace) -> None:
    require_workspace_perm(
        user,
        WorkspacePermission.SET_METADATA_DB,
        workspace,
        "set a Deployment's metadata database URL or Fernet keys (Owners only)",
    )


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
    """Operators and Owners add Deployments; only Owners give one a metadata database (it is
    checked against the allowlist, must be no other Deployment's, and is tested). Auto-linked
    Workspace objects link to it at once (envmanager, on `deployment_created`)."""
    require_workspace_perm(
        user, WorkspacePermission.CREATE_DEPLOYMENTS, workspace, "create Deployments"
    )
    metadata_db_url, fernet_key = (metadata_db_url or "").strip(), (fernet_key or "").strip()
    if metadata_db_url or fernet_key:
        _require_metadata_db_perm(user, workspace)
    validate_fernet_key(fernet_key)
    fingerprint = _checked_metadata_db(
        deployment_pk=None, url=metadata_db_url, fernet_key=fernet_key
    )
    deployment = Deployment(
        workspace=workspace,
        name=(name or "").strip(),
        kind=kind,
        description=description,
        metadata_db_url=metadata_db_url,
        fernet_key=fernet_key,
        metadata_db_fingerprint=fingerprint,
    )
    with transaction.atomic():
        _save(
            deployment, f"A Deployment named {deployment.name!r} already exists in this Workspace."
        )
        grant_deployment_role_permissions(deployment, deployment.workspace)
        deployment_created.send(sender=Deployment, deployment=deployment)
        audit_record(
            workspace=workspace,
            actor=user,
            action="deployment.create",
            deployment_id=deployment.pk,
            detail={"name": deployment.name},
            fields=[
                n
                for n, v in (("metadata_db_url", metadata_db_url), ("fernet_key", fernet_key))
                if v
            ],
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
    """Fields left as None keep their value, so stored secrets stay unless a new one is given;
    an empty string clears one. Operators and per-Deployment grants update the Deployment;
    only Owners change its metadata-DB URL and Fernet keys, which are checked and tested
    before anything is saved (the audit row names the fields, never their values)."""
    require_deployment_perm(user, DeploymentPermission.UPDATE, deployment, "update it")
    touches_db = metadata_db_url is not None or fernet_key is not None
    if touches_db:
        _require_metadata_db_perm(user, deployment.workspace)
    if fernet_key is not None:
        fernet_key = fernet_key.strip()
        validate_fernet_key(fernet_key)
    if metadata_db_url is not None:
        metadata_db_url = metadata_db_url.strip()
    fingerprint = deployment.metadata_db_fingerprint
    current = deployment
    if touches_db:
        current = Deployment.objects.get(pk=deployment.pk)
        fingerprint = _checked_metadata_db(
            deployment_pk=deployment.pk,
            url=current.metadata_db_url if metadata_db_url is None else metadata_db_url,
            fernet_key=current.fernet_key if fernet_key is None else fernet_key,
        )
    changes = {
        "name": name.strip() if name is not None else None,
        "description": description,
        "kind": kind,
        "metadata_db_url": metadata_db_url,
        "fernet_key": fernet_key,
    }
    changed = [n for n, v in changes.items() if v is not None]
    with transaction.atomic():
        # The row as it is now: a change made since the caller read it stays.
        given, deployment = deployment, Deployment.objects.select_for_update().get(pk=deployment.pk)
        previous_name = deployment.name
        if touches_db and (deployment.metadata_db_url, deployment.fernet_key) != (
            current.metadata_db_url,
            current.fernet_key,
        ):
            raise Conflict(
                "The metadata database settings changed while this change was checked; "
                "nothing was saved. Try again."
            )
        for field, value in changes.items():
            if value is not None:
                setattr(deployment, field, value)
        if touches_db:
            deployment.metadata_db_fingerprint = fingerprint
        _save(
            deployment, f"A Deployment named {deployment.name!r} already exists in this Workspace."
        )
        audit_record(
            workspace=deployment.workspace_id,
            actor=user,
            action="deployment.update",
            deployment_id=deployment.pk,
            fields=changed,
            detail={
                **(
                    {"cleared": [n for n in ("metadata_db_url", "fernet_key") if changes[n] == ""]}
                    if touches_db
                    else {}
                ),
                # A rename keeps both names, so the log reads right whatever it is called later.
                **(
                    {"name": deployment.name, "previousName": previous_name}
                    if deployment.name != previous_name
                    else {}
                ),
            },
        )
    # The caller's instance shows what was saved, as a plain `save()` would have left it.
    for f in Deployment._meta.concrete_fields:
        setattr(given, f.attname, getattr(deployment, f.attname))
    return given


def deployment_metadata_db_test(*, user: User, deployment: Deployment) -> MetadataDbReport:
    """ "Test connection": the stored URL is admitted and reachable, Airflow's tables are there,
    the Fernet key decrypts every encrypted value, and how many connections and variables it
    holds. Owners only: it opens the database."""
    _require_metadata_db_perm(user, deployment.workspace)
    with open_deployment_metadata_db(deployment) as db:
        return db.report()


def _confirmed(deployment: Deployment, confirm_name: str | None) -> None:
    if confirm_name is not None and confirm_name.strip() != deployment.name:
        message = f"Type the Deployment's name, {deployment.name}, to confirm its deletion."
        raise InvalidInput(message, {"confirm_name": message})


def deployment_delete(
    *, user: User, deployment: Deployment, confirm_name: str | None = None
) -> dict[str, Any]:
    """Owners delete a Deployment (a page confirms by its name: `confirm_name`, checked
    against the name as it is now). Goes with it: its own (Deployment-scoped) objects and their
    history, its links to Workspace objects and their overrides (the Workspace objects stay),
    its Deployment tokens (deleted, so its secrets backend gets 401 at once), its migration
    runs with their undo data, and its per-Deployment grants. Refused, with nothing changed,
    while one of its migration runs is active (envmanager, on `deployment_deleting`). Audit
    rows about it stay (they hold its id, not a key) and the deletion's own row keeps its
    name. Returns what was deleted, counted."""
    require_workspace_perm(
        user,
        WorkspacePermission.DELETE_DEPLOYMENTS,
        deployment.workspace,
        "delete Deployments (Owners only)",
    )
    with transaction.atomic():
        current = Deployment.objects.select_for_update().filter(pk=deployment.pk).first()
        if current is None:
            raise NotFound("No such Deployment: it was deleted meanwhile.")
        _confirmed(current, confirm_name)
        deleted: dict[str, Any] = {}
        for _receiver, counts in deployment_deleting.send(sender=Deployment, deployment=current):
            if isinstance(counts, dict):
                deleted.update(counts)
        deleted["tokensRevoked"] = current.tokens.filter(revoked_at__isnull=True).count()
        pk, name = current.pk, current.name
        # Guardian's rows name the Deployment by content type and id, without a foreign key.
        grants = {
            "content_type": ContentType.objects.get_for_model(Deployment),
            "object_pk": str(pk),
        }
        UserObjectPermission.objects.filter(**grants).delete()
        GroupObjectPermission.objects.filter(**grants).delete()
        current.delete()
        audit_record(
            workspace=current.workspace_id,
            actor=user,
            action="deployment.delete",
            deployment_id=pk,
            detail={"name": name, **deleted},
        )
        transaction.on_commit(lambda: deployment_deleted.send(sender=Deployment, deployment_id=pk))
    return {"name": name, **deleted}


def ide_project_create(
    *, user: User, workspace: Workspace, name: str, description: str = ""
) -> IdeProject:
    require_workspace_perm(
        user, WorkspacePermission.CREATE_DEPLOYMENTS, workspace, "create IDE projects"
    )
    project = IdeProject(workspace=workspace, name=(name or "").strip(), description=description)
    with transaction.atomic():
        _save(project, f"An IDE project named {project.name!r} already exists in this Workspace.")
        audit_record(
            workspace=workspace,
            actor=user,
            action="ide_project.create",
            detail={"ideProjectId": project.pk, "name": project.name},
        )
    return project


def _locked_project(project: IdeProject) -> IdeProject:
    current = IdeProject.objects.select_for_update().filter(pk=project.pk).first()
    if current is None:
        raise NotFound("No such IDE project: it was deleted meanwhile.")
    return current


def ide_project_update(
    *,
    user: User,
    project: IdeProject,
    name: str | None = None,
    description: str | None = None,
) -> IdeProject:
    """Operators and Owners rename an IDE project or change its description (None keeps a
    field); its links stay. The name stays unique in the Workspace."""
    require_workspace_perm(
        user, WorkspacePermission.CREATE_DEPLOYMENTS, project.workspace, "edit IDE projects"
    )
    with transaction.atomic():
        current = _locked_project(project)
        previous_name = current.name
        if name is not None:
            current.name = name.strip()
        if description is not None:
            current.description = description
        _save(current, f"An IDE project named {current.name!r} already exists in this Workspace.")
        audit_record(
            workspace=current.workspace_id,
            actor=user,
            action="ide_project.update",
            fields=[n for n, v in (("name", name), ("description", description)) if v is not None],
            detail={
                "ideProjectId": current.pk,
                "name": current.name,
                **({"previousName": previous_name} if current.name != previous_name else {}),
            },
        )
    return current


def ide_project_delete(*, user: User, project: IdeProject) -> dict[str, Any]:
    """Operators and Owners delete an IDE project: its links to Workspace objects go with it;
    the Workspace objects stay. Returns its name and the links
    removed."""
    require_workspace_perm(
        user, WorkspacePermission.CREATE_DEPLOYMENTS, project.workspace, "delete IDE projects"
    )
    with transaction.atomic():
        current = _locked_project(project)
        pk, name = current.pk, current.name
        links = current.links.count()  # envmanager's Link, by its related name
        current.delete()
        audit_record(
            workspace=current.workspace_id,
            actor=user,
            action="ide_project.delete",
            detail={"ideProjectId": pk, "name": name, "linksRemoved": links},
        )
    return {"name": name, "linksRemoved": links}


def deployment_token_create(
    *, user: User, deployment: Deployment, name: str
) -> tuple[DeploymentToken, str]:
    """A read-only token for one Deployment's secrets backend; the plain token is shown once."""
    require_deployment_perm(user, DeploymentPermission.CREATE_TOKENS, deployment, "create tokens")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("A token needs a name of 1 to 100 characters.", {"name": "Required."})
    plain = DeploymentToken.new_plain()
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
