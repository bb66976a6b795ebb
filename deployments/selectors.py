from dataclasses import dataclass
from typing import Any

from django.db.models import Max, Q, Sum
from django.http import Http404

from accounts.models import User, Workspace
from deployments.models import Deployment, IdeProject, LookupCount


def deployment_for_user(
    user: User, deployment_id: int | str, workspace: Workspace | None = None
) -> Deployment:
    """A Deployment of one of the user's Workspaces; anything else is a 404."""
    deployments = Deployment.objects.visible_to(user).select_related("workspace")
    if workspace is not None:
        deployments = deployments.filter(workspace=workspace)
    try:
        return deployments.get(pk=int(deployment_id))
    except (Deployment.DoesNotExist, TypeError, ValueError):
        raise Http404("No such Deployment.") from None


def ide_project_for_user(user: User, project_id: int | str, workspace: Workspace) -> IdeProject:
    """An IDE project of this Workspace, one of the user's; anything else is a 404."""
    projects = IdeProject.objects.filter(
        workspace=workspace, workspace__memberships__user=user
    ).select_related("workspace")
    try:
        return projects.get(pk=int(project_id))
    except (IdeProject.DoesNotExist, TypeError, ValueError):
        raise Http404("No such IDE project.") from None


@dataclass(frozen=True)
class KeyLookups:
    """How often one token looked up one key: found (hits) and not found (misses)."""

    token_id: int
    token_name: str
    object_type: str
    object_key: str
    hits: int
    misses: int
    last_at: Any


def deployment_lookup_counts(deployment: Deployment, limit: int = 500) -> list[KeyLookups]:
    """The lookups of a Deployment's tokens per token and key, most recent first (counts are
    written in batches, so the last few seconds may not be in yet)."""
    rows = (
        LookupCount.objects.filter(token__deployment=deployment)
        .order_by()
        .values("token_id", "token__name", "object_type", "object_key")
        .annotate(
            hits=Sum("count", filter=Q(found=True), default=0),
            misses=Sum("count", filter=Q(found=False), default=0),
            last_at=Max("last_at"),
        )
        .order_by("-last_at", "object_key")[:limit]
    )
    return [
        KeyLookups(
            token_id=row["token_id"],
            token_name=row["token__name"],
            object_type=row["object_type"],
            object_key=row["object_key"],
            hits=row["hits"],
            misses=row["misses"],
            last_at=row["last_at"],
        )
        for row in rows
    ]
