"""Functions that read environment objects: what a Deployment resolves, what a user may see."""

from dataclasses import dataclass, field
from typing import Any

from deployments.models import Deployment
from envmanager import object_types
from envmanager.models import EnvironmentObject, Link
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
    deployment: Deployment, object_type: str | None = None
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
