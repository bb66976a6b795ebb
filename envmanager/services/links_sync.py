"""Services that set an object's links as a whole (the API's `links` list), composed from the
link services in `environment_objects` so every rule still lives in one place."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import transaction

from accounts.models import User, Workspace, WorkspacePermission
from accounts.permissions import require_workspace_perm
from deployments.models import Deployment, IdeProject
from envmanager.kernel.errors import EnvManagerError, InvalidInput
from envmanager.models import EnvironmentObject, Link
from envmanager.object_types import Scope
from envmanager.services.environment_objects import (
    environment_object_create,
    environment_object_update,
    link_create,
    link_delete,
    link_set_overrides,
)
from envmanager.services.link_rows import lock_workspace_auto_links


@dataclass(frozen=True)
class WantedLink:
    """One link an object should have: to a Deployment or an IDE project, with the override
    fields to set and those to unset (the others keep their override)."""

    deployment: Deployment | None = None
    ide_project: IdeProject | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    unset_fields: tuple[str, ...] = ()

    @property
    def target_key(self) -> tuple[str, int]:
        if self.deployment is not None:
            return ("deployment", self.deployment.pk)
        return ("ide_project", cast(IdeProject, self.ide_project).pk)


def _target_key(link: Link) -> tuple[str, int]:
    if link.deployment_id is not None:
        return ("deployment", link.deployment_id)
    return ("ide_project", cast(int, link.ide_project_id))


def _prefixed(exc: EnvManagerError, prefix: str) -> EnvManagerError:
    """The same error, its fields named under the link they belong to (`links[2].overrides`)."""
    fields = {f"{prefix}.{name}": message for name, message in exc.field_errors.items()}
    message = exc.message
    if fields and message == "; ".join(f"{k}: {v}" for k, v in exc.field_errors.items()):
        message = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return type(exc)(message, fields or {prefix: exc.message})


def environment_object_set_links(
    *,
    user: User,
    obj: EnvironmentObject,
    links: list[WantedLink],
    unset_fields: tuple[str, ...] = (),
) -> list[Link]:
    """Make an object's links exactly `links`: create the missing ones, delete the others
    (which excludes a Deployment from an auto-link, as unlinking does), and set or unset the
    overrides of each. `unset_fields` unsets override fields on every remaining Deployment
    link. All or nothing."""
    require_workspace_perm(
        user, WorkspacePermission.UPDATE_ENV_OBJECTS, obj.workspace, "change links"
    )
    seen: set[tuple[str, int]] = set()
    for index, wanted in enumerate(links):
        if wanted.target_key in seen:
            raise InvalidInput(
                "A Deployment or IDE project is listed twice in links.",
                {f"links[{index}].scopeEntityId": "Listed twice."},
            )
        seen.add(wanted.target_key)
    with transaction.atomic():
        existing = {
            _target_key(row): row
            for row in obj.links.filter(is_home=False).select_related("environment_object")
        }
        for key, old in existing.items():
            if key not in seen:
                link_delete(user=user, link=old)
        result = []
        for index, wanted in enumerate(links):
            try:
                link = existing.get(wanted.target_key)
                if link is None:
                    link = link_create(
                        user=user,
                        obj=obj,
                        deployment=wanted.deployment,
                        ide_project=wanted.ide_project,
                        overrides=wanted.overrides,
                    )
                elif wanted.overrides or wanted.unset_fields:
                    link = link_set_overrides(
                        user=user,
                        link=link,
                        overrides=wanted.overrides,
                        unset_fields=wanted.unset_fields,
                    )
            except EnvManagerError as exc:
                raise _prefixed(exc, f"links[{index}]") from None
            result.append(link)
        if unset_fields:
            for link in result:
                if link.deployment_id is not None and set(link.overrides) & set(unset_fields):
                    link_set_overrides(user=user, link=link, unset_fields=unset_fields)
    return result


def environment_object_create_with_links(
    *,
    user: User,
    workspace: Workspace,
    object_type: str,
    key: str,
    values: dict[str, Any],
    scope: str = Scope.WORKSPACE,
    deployment: Deployment | None = None,
    auto_link_deployments: bool = False,
    links: Sequence[WantedLink] = (),
) -> EnvironmentObject:
    """Create an object and its links (with overrides) in one transaction."""
    with transaction.atomic():
        obj = environment_object_create(
            user=user,
            workspace=workspace,
            object_type=object_type,
            key=key,
            values=values,
            scope=scope,
            deployment=deployment,
            auto_link_deployments=auto_link_deployments,
            # A Workspace object's links are made below, once it exists, so they can carry
            # overrides; a Deployment-scoped object with links is refused here.
            **({} if scope == Scope.WORKSPACE else _link_targets(links)),
        )
        if links:
            _set_links_keeping_auto(user=user, obj=obj, links=links)
    return obj


def _link_targets(links: Sequence[WantedLink]) -> dict[str, list[Any]]:
    return {
        "link_deployments": [w.deployment for w in links if w.deployment],
        "link_ide_projects": [w.ide_project for w in links if w.ide_project],
    }


def _set_links_keeping_auto(
    *, user: User, obj: EnvironmentObject, links: Sequence[WantedLink]
) -> None:
    """Set the listed links without dropping auto-links the list does not name (an object just
    switched to auto-link has links the client could not know about)."""
    named = {w.target_key for w in links}
    kept = [
        WantedLink(deployment=link.deployment)
        for link in obj.links.filter(is_home=False, is_auto=True).select_related("deployment")
        if _target_key(link) not in named
    ]
    environment_object_set_links(user=user, obj=obj, links=[*links, *kept])


def environment_object_update_with_links(
    *,
    user: User,
    obj: EnvironmentObject,
    key: str | None = None,
    values: dict[str, Any] | None = None,
    auto_link_deployments: bool | None = None,
    links: list[WantedLink] | None = None,
    unset_fields: tuple[str, ...] = (),
    if_match: str | None = None,
) -> EnvironmentObject:
    """Change an object and, when `links` is given, its links, in one transaction
    (`if_match`: see `environment_object_update`).

    Switching auto-link off happens before the links are set, so links the list names stay as
    explicit links; switching it on happens after, so it adds every other Deployment that is
    not excluded."""
    turning_on = auto_link_deployments is True and not obj.auto_link_deployments
    with transaction.atomic():
        if turning_on or links is not None:
            # Auto-linking and linking below take the Workspace's auto-link lock, and the
            # first update locks the object: the Workspace first, in the order the other
            # writers (an unlink, a link, a Deployment created) take them, else those two
            # deadlock with this one (see `lock_workspace_auto_links`).
            lock_workspace_auto_links(obj.workspace_id)
        obj = environment_object_update(
            user=user,
            obj=obj,
            key=key,
            values=values,
            auto_link_deployments=None if turning_on else auto_link_deployments,
            if_match=if_match,
        )
        # An empty list for a Deployment-scoped object (which has no links) changes nothing,
        # so it needs no link permission (a per-Deployment grant may edit such objects).
        nothing_to_link = obj.scope != Scope.WORKSPACE and not links and not unset_fields
        if (links is not None or unset_fields) and not nothing_to_link:
            current = links
            if current is None:
                current = [
                    WantedLink(deployment=link.deployment, ide_project=link.ide_project)
                    for link in obj.links.filter(is_home=False).select_related(
                        "deployment", "ide_project"
                    )
                ]
            environment_object_set_links(
                user=user, obj=obj, links=current, unset_fields=unset_fields
            )
        if turning_on:
            obj = environment_object_update(user=user, obj=obj, auto_link_deployments=True)
    return obj
