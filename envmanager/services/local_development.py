"""Local development: where a Workspace allows it, Authors and above may fetch environment
objects with their secret values (for a local Airflow, as the reference vendor's CLI does),
and every such fetch is in the audit log."""

from collections.abc import Sequence

from django.db import transaction

from accounts.audit import audit_event
from accounts.models import AuditEvent, User, Workspace, WorkspacePermission
from accounts.permissions import require_workspace_perm
from deployments.models import Deployment
from envmanager.kernel.errors import NotPermitted
from envmanager.models import EnvironmentObject


def require_secrets_shown_allowed(*, user: User, workspace: Workspace) -> None:
    """Secret values are shown only where the Workspace allows local development, and only to
    those who may see its environment objects at all (Authors and above)."""
    if not workspace.local_development_secrets:
        raise NotPermitted(
            "This Workspace does not allow showing secrets: an Owner can turn on local "
            "development with secrets in the Workspace settings."
        )
    require_workspace_perm(
        user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace, "see secret values"
    )


def secrets_reveal(
    *,
    user: User,
    workspace: Workspace,
    objects: Sequence[EnvironmentObject],
    deployment: Deployment | None = None,
    via: str = "api",
) -> None:
    """Record that `user` is about to be shown the secret values of `objects`: one audit row
    per object (so an Owner can ask who saw one key), written before any value leaves. If
    the rows cannot be written, the caller gets an exception and shows nothing."""
    require_secrets_shown_allowed(user=user, workspace=workspace)
    with transaction.atomic():
        AuditEvent.objects.bulk_create(
            audit_event(
                workspace=workspace,
                actor=user,
                action="secrets.reveal",
                obj=obj,
                deployment_id=deployment.pk if deployment is not None else None,
                detail={"via": via},
            )
            for obj in objects
        )
