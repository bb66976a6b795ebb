"""Checks of the role permissions (`accounts.models.ROLE_PERMISSIONS`) for services and views."""

from django.db.models import Model

from accounts.models import User, Workspace
from envmanager.kernel.errors import NotPermitted


def has_workspace_perm(user: User, codename: str, workspace: Workspace) -> bool:
    return bool(user and user.is_active and user.has_perm(f"accounts.{codename}", workspace))


# A Deployment is typed as a model here: deployments builds on accounts, never the other way round.
def has_deployment_perm(user: User, codename: str, deployment: Model) -> bool:
    return bool(user and user.is_active and user.has_perm(f"deployments.{codename}", deployment))


def require_workspace_perm(user: User, codename: str, workspace: Workspace, action: str) -> None:
    if not has_workspace_perm(user, codename, workspace):
        raise NotPermitted(f"Your role in this Workspace does not allow you to {action}.")


def require_deployment_perm(user: User, codename: str, deployment: Model, action: str) -> None:
    if not has_deployment_perm(user, codename, deployment):
        raise NotPermitted(f"You may not {action} on Deployment {str(deployment)!r}.")
