from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm

from accounts.audit import audit_record
from accounts.models import (
    ROLE_PERMISSIONS,
    ApiToken,
    Membership,
    Role,
    User,
    Workspace,
    WorkspacePermission,
    hash_token,
)
from accounts.permissions import require_workspace_perm
from envmanager.kernel.errors import Conflict, InvalidInput, NotFound, NotPermitted


def _grant_role_permissions(workspace: Workspace) -> None:
    for role in Role.values:
        group, _ = Group.objects.get_or_create(name=workspace.role_group_name(role))
        for codename in ROLE_PERMISSIONS[role]["workspace"]:
            assign_perm(f"accounts.{codename}", group, workspace)


def grant_deployment_role_permissions(deployment: Model, workspace: Workspace) -> None:
    """Give each role group of the Workspace its permissions on a new Deployment (a Model here:
    deployments sits above accounts)."""
    for role in Role.values:
        group = workspace.role_group(role)
        for codename in ROLE_PERMISSIONS[role]["deployment"]:
            assign_perm(f"deployments.{codename}", group, deployment)


def workspace_create(*, user: User, name: str, description: str = "") -> Workspace:
    """Any signed-in user may create a Workspace and becomes its Owner."""
    workspace = Workspace(name=name.strip(), description=description)
    try:
        workspace.full_clean()
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from None
    with transaction.atomic():
        workspace.save()
        _grant_role_permissions(workspace)
        _set_role(workspace=workspace, user=user, role=Role.OWNER)
    return workspace


def workspace_update(
    *,
    user: User,
    workspace: Workspace,
    name: str | None = None,
    description: str | None = None,
    local_development_secrets: bool | None = None,
) -> Workspace:
    require_workspace_perm(
        user, WorkspacePermission.UPDATE_SETTINGS, workspace, "change its settings"
    )
    with transaction.atomic():
        if name is not None:
            workspace.name = name.strip()
        if description is not None:
            workspace.description = description
        if local_development_secrets is not None:
            workspace.local_development_secrets = local_development_secrets
        try:
            workspace.full_clean()
        except ValidationError as exc:
            raise InvalidInput.from_validation_error(exc) from None
        workspace.save()
        audit_record(
            workspace=workspace,
            actor=user,
            action="workspace.update",
            fields=[
                n
                for n, v in (
                    ("name", name),
                    ("description", description),
                    ("local_development_secrets", local_development_secrets),
                )
                if v is not None
            ],
        )
    return workspace


def _set_role(*, workspace: Workspace, user: User, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    groups = [workspace.role_group(r) for r in Role.values]
    user.groups.remove(*groups)
    user.groups.add(workspace.role_group(role))
    return membership


def membership_set(*, actor: User, workspace: Workspace, email: str, role: str) -> Membership:
    """An Owner adds a member with one role, or changes a member's role.

    The last Owner of a Workspace cannot be demoted, so a Workspace always has an Owner.
    """
    require_workspace_perm(actor, WorkspacePermission.MANAGE_MEMBERS, workspace, "manage members")
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}.", {"role": f"One of {', '.join(Role.values)}."})
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise NotFound(f"No user has the email address {email!r}.", {"email": "No such user."})
        current = (
            Membership.objects.select_for_update().filter(workspace=workspace, user=user).first()
        )
        if current and current.role == Role.OWNER and role != Role.OWNER:
            _require_another_owner(workspace, user)
        audit_record(
            workspace=workspace,
            actor=actor,
            action="membership.set",
            detail={"userId": user.pk, "email": user.email, "role": role},
        )
        return _set_role(workspace=workspace, user=user, role=role)


def _user_grants_in(workspace: Workspace, user: User) -> QuerySet[UserObjectPermission]:
    """The user's own object permissions (not their role group's) on the Workspace and on each
    of its Deployments: the per-Deployment grants. By content type, not model: deployments sits
    above accounts."""
    deployment_type = ContentType.objects.get_by_natural_key("deployments", "deployment")
    # The reverse accessor of deployments.Deployment: no import of the app above.
    deployment_pks = [str(pk) for pk in workspace.deployments.values_list("pk", flat=True)]
    return UserObjectPermission.objects.filter(user=user).filter(
        Q(content_type=deployment_type, object_pk__in=deployment_pks)
        | Q(content_type=ContentType.objects.get_for_model(Workspace), object_pk=str(workspace.pk))
    )


def membership_remove(*, actor: User, workspace: Workspace, user: User) -> None:
    """An Owner removes a member (the last Owner stays). Their role group and their own grants
    on the Workspace and its Deployments (per-Deployment grants) go with the membership, so
    adding them again later gives back a role, never an old grant."""
    require_workspace_perm(actor, WorkspacePermission.MANAGE_MEMBERS, workspace, "manage members")
    with transaction.atomic():
        membership = Membership.objects.filter(workspace=workspace, user=user).first()
        if membership is None:
            raise NotFound("That user is not a member of this Workspace.")
        if membership.role == Role.OWNER:
            _require_another_owner(workspace, user)
        membership.delete()
        grants = _user_grants_in(workspace, user)
        removed_grants = grants.count()
        grants.delete()
        audit_record(
            workspace=workspace,
            actor=actor,
            action="membership.remove",
            detail={"userId": user.pk, "email": user.email, "grantsRemoved": removed_grants},
        )
        user.groups.remove(*[workspace.role_group(r) for r in Role.values])


def _require_another_owner(workspace: Workspace, user: User) -> None:
    owners = Membership.objects.filter(workspace=workspace, role=Role.OWNER).exclude(user=user)
    if not owners.exists():
        raise Conflict("A Workspace needs at least one Owner; make someone else Owner first.")


def _audit_in_users_workspaces(*, user: User, action: str, token: ApiToken) -> None:
    """A personal token acts in every Workspace of its user, so each of them records it."""
    workspace_ids = Membership.objects.filter(user=user).values_list("workspace_id", flat=True)
    for workspace_id in workspace_ids:
        audit_record(
            workspace=workspace_id,
            actor=user,
            action=action,
            detail={"tokenId": token.pk, "name": token.name, "hint": token.hint},
        )


def api_token_create(
    *, user: User, name: str, acting_token: ApiToken | None = None
) -> tuple[ApiToken, str]:
    """A personal API token; the plain token is returned once and only its hash is kept.

    A request made with a personal token (`acting_token`) may not create one: a leaked token
    must not mint successors that outlive its revocation. Recorded in each of the user's
    Workspaces."""
    if acting_token is not None:
        raise NotPermitted(
            "A personal API token cannot create API tokens; create one in the browser "
            "(API tokens page) or with `manage.py create_api_token`."
        )
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("A token needs a name of 1 to 100 characters.", {"name": "Required."})
    plain = ApiToken.new_plain()
    with transaction.atomic():
        try:
            token = ApiToken.objects.create(
                user=user, name=name, token_hash=hash_token(plain), hint=plain[:8]
            )
        except IntegrityError:  # a hash collision of 256-bit random tokens: practically never
            raise Conflict("Could not create a token; try again.") from None
        _audit_in_users_workspaces(user=user, action="api_token.create", token=token)
    return token, plain


def api_token_revoke(*, user: User, token: ApiToken) -> ApiToken:
    """A user revokes their own token (with a session or any of their tokens, that one too);
    revoking twice changes nothing and records nothing."""
    if token.user_id != user.pk:
        raise NotFound("No such token.")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            _audit_in_users_workspaces(user=user, action="api_token.revoke", token=token)
    return token
