"""Functions that read environment objects: what a Deployment resolves, what a user may see."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, User, Workspace, WorkspacePermission
from accounts.permissions import has_workspace_perm
from deployments.airflow_metadata import open_deployment_metadata_db
from deployments.models import Deployment
from envmanager import object_types
from envmanager.kernel.errors import NotPermitted
from envmanager.models import (
    RESTORE_DELETED_DAYS,
    EnvironmentObject,
    Link,
    MigrationRun,
    ObjectVersion,
)
from envmanager.object_types import ObjectType, Scope


@dataclass(frozen=True)
class ResolvedObject:
    """One key as a Deployment sees it: the Workspace values with the link's overrides applied,
    or a Deployment-scoped object's own values."""

    object_type: str
    key: str
    values: dict[str, Any]
    environment_object: EnvironmentObject = field(repr=False)
    link: Link = field(repr=False)
    overridden_fields: tuple[str, ...] = ()

    @property
    def is_linked(self) -> bool:
        return self.environment_object.scope == Scope.WORKSPACE


def _resolve_link(link: Link) -> ResolvedObject:
    obj = link.environment_object
    overrides = link.overrides or {}
    return ResolvedObject(
        object_type=obj.object_type,
        key=obj.key,
        values=object_types.apply_overrides(obj.values, overrides),
        environment_object=obj,
        link=link,
        overridden_fields=tuple(sorted(overrides)),
    )


def deployment_resolved_environment(
    deployment: Deployment | int, object_type: str | None = None
) -> dict[str, dict[str, ResolvedObject]]:
    """Everything a Deployment resolves, by type then key, in one query. The database makes
    each (type, key) unique per Deployment, so each key has exactly one value."""
    links = Link.objects.filter(deployment=deployment).select_related("environment_object")
    if object_type:
        links = links.filter(object_type=object_type)
    resolved: dict[str, dict[str, ResolvedObject]] = {t: {} for t in ObjectType.values}
    for link in links.order_by("object_type", "object_key"):
        item = _resolve_link(link)
        resolved[item.object_type][item.key] = item
    return resolved


def deployment_resolve_one(
    deployment: Deployment | int, object_type: str, key: str
) -> ResolvedObject | None:
    """One key of a Deployment's resolved environment (one indexed query), or None."""
    link = (
        Link.objects.filter(deployment=deployment, object_type=object_type, object_key=key)
        .select_related("environment_object")
        .first()
    )
    return _resolve_link(link) if link else None


def migration_source_counts(deployment: Deployment) -> dict[str, int]:
    """How many connections and variables the metadata DB holds (for the "Migrate from
    Airflow" buttons). Raises MetadataDbError when it cannot be read."""
    with open_deployment_metadata_db(deployment) as db:
        return {
            ObjectType.CONNECTION: db.count_connections(),
            ObjectType.AIRFLOW_VARIABLE: db.count_variables(),
        }


def migration_run_for_user(user: User, run_id: Any) -> MigrationRun:
    """A run of a Workspace where the user may migrate (Owner); anything else is a 404."""
    run = MigrationRun.objects.select_related("deployment", "workspace").filter(pk=run_id).first()
    if run is None or not has_workspace_perm(
        user, WorkspacePermission.MIGRATE_FROM_AIRFLOW, run.workspace
    ):
        raise Http404("No such migration run.")
    return run


def migration_run_progress(run: MigrationRun) -> dict[str, int]:
    """How many objects of a run are in each state, plus the total."""
    counts = dict(run.items.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return {"total": sum(counts.values()), **counts}


AUDIT_FILTERS = ("action", "object_key", "object_type", "deployment_id", "actor_label")
AUDIT_FILTER_LOOKUPS = {
    "action": "action__startswith",
    "object_key": "object_key__icontains",
    "actor_label": "actor_label__icontains",
}


def audit_events(
    user: User, workspace: Workspace, filters: Mapping[str, Any]
) -> QuerySet[AuditEvent]:
    """A Workspace's audit log, newest first, filtered by action (`link` finds every link.*
    action), object type and Deployment (exact), actor and object key (parts of them), and a
    `since` / `until` date-time. Owners only (the one check, for the page and the API)."""
    if not has_workspace_perm(user, WorkspacePermission.VIEW_AUDIT_LOG, workspace):
        raise NotPermitted("Only Workspace Owners can see the audit log.")
    events = AuditEvent.objects.filter(workspace=workspace)
    for name in AUDIT_FILTERS:
        value = filters.get(name)
        if value:
            events = events.filter(**{AUDIT_FILTER_LOOKUPS.get(name, name): value})
    if filters.get("since"):
        events = events.filter(created_at__gte=filters["since"])
    if filters.get("until"):
        events = events.filter(created_at__lt=filters["until"])
    return events.order_by("-created_at", "-id")


def object_versions(obj_id: int, workspace: Workspace) -> QuerySet[ObjectVersion]:
    """The saved versions of one object of this Workspace, also of one deleted since (its
    history stays until it is purged). An id the Workspace neither holds nor held (missing, or
    another tenant's) is a 404, as the object's own page and GET answer."""
    versions = ObjectVersion.objects.filter(
        workspace=workspace, environment_object_id=obj_id
    ).select_related("created_by")
    if not versions.exists() and not workspace.env_objects.filter(pk=obj_id).exists():
        raise Http404("No such environment object.")
    return versions


def deleted_object_versions(workspace: Workspace) -> QuerySet[ObjectVersion]:
    """Versions saved at deletion of objects that are still gone and restorable (30 days).
    An object promotion merged into a Workspace object's override was not deleted (its
    version says PROMOTE), so it is not listed."""
    since = timezone.now() - timedelta(days=RESTORE_DELETED_DAYS)
    existing = EnvironmentObject.objects.filter(workspace=workspace).values("pk")
    return (
        ObjectVersion.objects.filter(
            workspace=workspace,
            reason=ObjectVersion.Reason.DELETE,
            created_at__gte=since,
            restored_at__isnull=True,
        )
        .exclude(environment_object_id__in=existing)
        .select_related("created_by")
    )


def environment_object_for_user(
    user: User, object_id: Any, workspace: Workspace | None = None
) -> EnvironmentObject:
    """An object the user may see (Author and up, in its Workspace); anything else is a 404."""
    objects = EnvironmentObject.objects.visible_to(user).select_related("deployment", "workspace")
    if workspace is not None:
        objects = objects.filter(workspace=workspace)
    try:
        found: EnvironmentObject = objects.get(pk=int(object_id))
        return found
    except (EnvironmentObject.DoesNotExist, TypeError, ValueError):
        raise Http404("No such environment object.") from None


class NameSource:
    """Where a key a Deployment resolves comes from, as the names lookup says it."""

    WORKSPACE = "WORKSPACE"  # a linked Workspace object, as the Workspace holds it
    OVERRIDE = "OVERRIDE"  # a linked Workspace object with a Deployment-level override
    DEPLOYMENT = "DEPLOYMENT"  # one of the Deployment's own objects


# What the names lookup may show of a connection besides its key: never a secret field.
NAME_FIELDS: dict[str, tuple[str, ...]] = {ObjectType.CONNECTION: ("conn_type", "host")}


@dataclass(frozen=True)
class ResolvedName:
    """One key a Deployment resolves, without its value: where it comes from (and which fields
    an override changes), the object's page, and the fields of NAME_FIELDS that are not
    secret for this object."""

    object_type: str
    key: str
    source: str
    overridden_fields: tuple[str, ...]
    object_id: int
    page_path: str
    is_secret: bool
    shown: dict[str, Any]


def _resolved_name(item: ResolvedObject) -> ResolvedName:
    obj = item.environment_object
    if item.is_linked:
        source = NameSource.OVERRIDE if item.overridden_fields else NameSource.WORKSPACE
        page = reverse("environment-object", args=[obj.workspace_id, obj.pk])
    else:
        source = NameSource.DEPLOYMENT
        page = reverse("deployment-object", args=[obj.deployment_id, obj.pk])
    secret = object_types.secret_fields(item.object_type, item.values)
    return ResolvedName(
        object_type=item.object_type,
        key=item.key,
        source=source,
        overridden_fields=item.overridden_fields,
        object_id=obj.pk,
        page_path=page,
        is_secret=bool(item.values.get("is_secret")),
        shown={
            name: item.values.get(name)
            for name in NAME_FIELDS.get(item.object_type, ())
            if name not in secret
        },
    )


def deployment_environment_names(deployment: Deployment | int) -> dict[str, list[ResolvedName]]:
    """The keys a Deployment resolves, by type, sorted by key, with where each comes from and
    none of its values: what a page inside the Deployment's Airflow may show to anyone who may
    see Airflow's connections. The one place that decides what of an object leaves envmanager
    on that path (NAME_FIELDS, minus the object's secret fields)."""
    resolved = deployment_resolved_environment(deployment)
    return {t: [_resolved_name(item) for item in items.values()] for t, items in resolved.items()}


@dataclass(frozen=True)
class DeploymentDeletion:
    """What deleting a Deployment takes with it, counted (the confirmation says it), and the
    migration run that refuses the deletion while it is active."""

    objects: int
    links: int
    overrides: int
    tokens: int
    migration_runs: int
    active_run: MigrationRun | None

    def counts(self) -> dict[str, int]:
        """As the audit row and the API name them."""
        return {
            "objectsDeleted": self.objects,
            "linksRemoved": self.links,
            "overridesRemoved": self.overrides,
            "migrationRunsDeleted": self.migration_runs,
        }


def deployment_deletion(deployment: Deployment) -> DeploymentDeletion:
    links = Link.objects.filter(deployment=deployment, is_home=False)
    runs = MigrationRun.objects.filter(deployment=deployment)
    return DeploymentDeletion(
        objects=EnvironmentObject.objects.filter(
            deployment=deployment, scope=Scope.DEPLOYMENT
        ).count(),
        links=links.count(),
        # Overrides are encrypted: which links hold one shows only once decrypted.
        overrides=sum(1 for link in links.only("overrides") if link.overrides),
        tokens=deployment.tokens.filter(revoked_at__isnull=True).count(),
        migration_runs=runs.count(),
        active_run=runs.filter(status__in=MigrationRun.ACTIVE).order_by("id").first(),
    )
