"""The Link rows themselves, below every service that makes them: one created in its own
savepoint (the database refuses a key its target already resolves), the Deployments an
auto-linked object links to (and the auto-links themselves), and the Workspace lock
auto-links take. `environment_objects`
(create, link, auto-link) and `versions` (restoring a deleted object) both build on these."""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.models import Workspace
from deployments.models import Deployment, IdeProject
from envmanager.models import EnvironmentObject, Link


def link_row_create(
    obj: EnvironmentObject,
    *,
    deployment: Deployment | None = None,
    ide_project: IdeProject | None = None,
    is_home: bool = False,
    is_auto: bool = False,
    overrides: dict[str, Any] | None = None,
) -> Link | None:
    """Create one link in a savepoint; None when its target already resolves the key (the
    unique constraint), with nothing else of the transaction undone. The caller says why."""
    try:
        with transaction.atomic():
            return Link.objects.create(
                environment_object=obj,
                deployment=deployment,
                ide_project=ide_project,
                object_type=obj.object_type,
                object_key=obj.key,
                is_home=is_home,
                is_auto=is_auto,
                overrides=overrides or {},
            )
    except IntegrityError:
        return None


def lock_workspace_auto_links(workspace_id: int) -> None:
    """Auto-links are a Workspace-wide rule: an auto-linked object links to every Deployment of
    its Workspace, including one created at the same moment. Creating a Deployment, and
    creating, renaming, restoring or auto-linking an object, lock the Workspace row before they
    read the other side, so one of them always sees what the other committed."""
    list(Workspace.objects.select_for_update().filter(pk=workspace_id).values_list("pk"))


def auto_link_targets(obj: EnvironmentObject) -> QuerySet[Deployment]:
    """The Deployments an auto-linked object should link to and does not yet: every Deployment
    of its Workspace but the excluded ones."""
    excluded = obj.auto_link_excluded.values_list("pk", flat=True)
    return (
        Deployment.objects.filter(workspace=obj.workspace_id)
        .exclude(pk__in=excluded)
        .exclude(links__environment_object=obj)
    )


def auto_links_create(obj: EnvironmentObject) -> list[Deployment]:
    """Link an auto-linked object to every Deployment it should link to and does not yet
    (`auto_link_targets`); returns those that resolve its key from another object already,
    left unlinked. Creating or auto-linking refuses such a one; a restore skips it."""
    return [
        target
        for target in auto_link_targets(obj)
        if link_row_create(obj, deployment=target, is_auto=True) is None
    ]
