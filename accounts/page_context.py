"""What every Workspace page's layout needs (templates/base.html): the Workspace picker, the
user's role, and what the user may do there (`can`, which also decides the navigation)."""

from typing import Any

from guardian.core import ObjectPermissionChecker

from accounts.http import AuthenticatedHttpRequest
from accounts.models import User, Workspace, WorkspacePermission
from accounts.selectors import role_of

CAN = {
    "view_objects": WorkspacePermission.VIEW_ENV_OBJECTS,
    "create_objects": WorkspacePermission.CREATE_ENV_OBJECTS,
    "update_objects": WorkspacePermission.UPDATE_ENV_OBJECTS,
    "delete_objects": WorkspacePermission.DELETE_ENV_OBJECTS,
    "create_deployments": WorkspacePermission.CREATE_DEPLOYMENTS,
    "set_metadata_db": WorkspacePermission.SET_METADATA_DB,
    "delete_deployments": WorkspacePermission.DELETE_DEPLOYMENTS,
    "migrate": WorkspacePermission.MIGRATE_FROM_AIRFLOW,
    "manage_members": WorkspacePermission.MANAGE_MEMBERS,
    "update_settings": WorkspacePermission.UPDATE_SETTINGS,
    "audit": WorkspacePermission.VIEW_AUDIT_LOG,
}


def workspace_perms(user: User, workspace: Workspace) -> dict[str, bool]:
    # One checker answers every question about this Workspace from one fetch.
    checker = ObjectPermissionChecker(user)
    granted = set(checker.get_perms(workspace)) if user.is_active else set()
    return {key: codename in granted for key, codename in CAN.items()}


# Why the navigation's "Environment" is dimmed for a role that may not open it.
ENVIRONMENT_REFUSED = (
    "Members see the Workspace and its Deployments; Authors and above see its environment."
)


def workspace_page(request: AuthenticatedHttpRequest, workspace: Workspace, **extra: Any) -> dict:
    """The context of a page inside a Workspace, with the page's own `extra`."""
    can = workspace_perms(request.user, workspace)
    return {
        "workspace": workspace,
        "workspaces": Workspace.objects.visible_to(request.user),
        "role": role_of(request.user, workspace),
        "can": can,
        # "" where the navigation links to the Environment; else the reason it is dimmed.
        "nav_environment_refused": "" if can["view_objects"] else ENVIRONMENT_REFUSED,
        **extra,
    }
