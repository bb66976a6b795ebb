"""The environment-object API (and IDE projects): parse, call a service or selector, render.

Role rules live in the services; these views only make sure a caller sees environment
objects of a Workspace at all (Author and above) and that ids belong to that Workspace (any
other id is a 404).
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from accounts.models import User, Workspace, WorkspacePermission
from accounts.permissions import require_workspace_perm
from accounts.selectors import workspace_for_user
from deployments.models import Deployment, IdeProject
from deployments.selectors import deployment_for_user, ide_project_for_user
from deployments.services import ide_project_create, ide_project_delete, ide_project_update
from envmanager.api import serializers as s
from envmanager.kernel.api import error_responses
from envmanager.kernel.errors import EnvManagerError, InvalidInput, NotFound
from envmanager.models import EnvironmentObject, Link
from envmanager.object_types import Scope
from envmanager.selectors import ResolvedObject, deployment_resolved_environment
from envmanager.services import auto_link_exclude, environment_object_delete, object_etag
from envmanager.services.links_sync import (
    WantedLink,
    environment_object_create_with_links,
    environment_object_update_with_links,
)
from envmanager.services.local_development import (
    require_secrets_shown_allowed,
    secrets_reveal,
)

SORT_FIELDS = {
    "objectKey": "key",
    "objectType": "object_type",
    "scope": "scope",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
SORTABLE = ", ".join(SORT_FIELDS)


@contextmanager
def _named_for_api(object_type: str | None) -> Iterator[None]:
    """Services name fields as the models do (`port`, `key`); the API client sent camelCase
    paths (`connection.port`, `objectKey`), so errors name those."""
    try:
        yield
    except EnvManagerError as exc:
        fields = {s.api_field_path(object_type, k): v for k, v in exc.field_errors.items()}
        built = "; ".join(f"{k}: {v}" for k, v in exc.field_errors.items())
        message = exc.message
        if fields and message == built:
            message = "; ".join(f"{k}: {v}" for k, v in fields.items())
        raise type(exc)(message, fields) from None


def _env_objects_workspace(user: User, workspace_id: int) -> Workspace:
    """The Workspace (404 for non-members), if the caller may see its environment objects."""
    workspace = workspace_for_user(user, workspace_id)
    require_workspace_perm(
        user,
        WorkspacePermission.VIEW_ENV_OBJECTS,
        workspace,
        "see environment objects (Authors and above may)",
    )
    return workspace


def _with_relations(objects: QuerySet) -> QuerySet:
    """Everything a body needs, in a fixed number of queries whatever the page size."""
    return objects.select_related("created_by", "updated_by").prefetch_related(
        Prefetch("links", queryset=Link.objects.filter(is_home=False), to_attr="api_links"),
        Prefetch(
            "auto_link_excluded",
            queryset=Deployment.objects.only("id"),
            to_attr="api_excluded",
        ),
    )


def _environment_objects(user: User, workspace: Workspace) -> QuerySet:
    return EnvironmentObject.objects.visible_to(user).filter(workspace=workspace)


def _object_for(user: User, workspace: Workspace, object_id: int) -> EnvironmentObject:
    obj = _with_relations(_environment_objects(user, workspace)).filter(pk=object_id).first()
    if obj is None:
        raise NotFound("No such environment object in this Workspace.")
    return obj


def _bodies(
    request: AuthenticatedRequest,
    workspace: Workspace,
    objects: list[EnvironmentObject],
    *,
    show_secrets: bool,
    values_by_id: dict[int, dict[str, Any]] | None = None,
    deployment: Deployment | None = None,
) -> list[dict[str, Any]]:
    if show_secrets:
        secrets_reveal(
            user=request.user, workspace=workspace, objects=objects, deployment=deployment
        )
    context = {"show_secrets": show_secrets, "values_by_id": values_by_id or {}}
    return cast(
        list[dict[str, Any]],
        s.EnvironmentObjectSerializer(objects, many=True, context=context).data,
    )


def _secret_headers(show_secrets: bool) -> dict[str, str]:
    return {"Cache-Control": "no-store"} if show_secrets else {}


def _with_list_indexes(detail: Any) -> Any:
    """DRF reports errors of list items as `{"links": {0: …}}`; name them `links[0]`, as the
    client would write the path."""
    if not isinstance(detail, dict):
        return detail
    named = {}
    for key, value in detail.items():
        value = _with_list_indexes(value)
        if isinstance(value, dict) and value and all(isinstance(k, int) for k in value):
            named.update({f"{key}[{index}]": item for index, item in value.items()})
        else:
            named[key] = value
    return named


def _parse(
    serializer_class: type[serializers.Serializer], data: Mapping[str, Any], **kwargs: Any
) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    if not serializer.is_valid():
        raise serializers.ValidationError(_with_list_indexes(serializer.errors))
    return serializer.validated_data


def _wanted_links(
    workspace: Workspace, object_type: str, links: list[dict[str, Any]] | None
) -> list[WantedLink] | None:
    """The `links` of a body as the services take them; an unknown target is a 400."""
    if links is None:
        return None
    wanted = []
    for index, link in enumerate(links):
        model = Deployment if link["scope"] == "DEPLOYMENT" else IdeProject
        target = model.objects.filter(workspace=workspace, pk=link["scopeEntityId"]).first()
        if target is None:
            label = "Deployment" if model is Deployment else "IDE project"
            raise serializers.ValidationError(
                {f"links[{index}].scopeEntityId": [f"No such {label} in this Workspace."]}
            )
        wanted.append(
            WantedLink(
                deployment=target if isinstance(target, Deployment) else None,
                ide_project=target if isinstance(target, IdeProject) else None,
                overrides=s.parse_overrides(
                    object_type, link.get("overrides", {}), f"links[{index}].overrides"
                ),
                unset_fields=s.parse_field_names(
                    object_type, link.get("unsetFields", []), f"links[{index}].unsetFields"
                ),
            )
        )
    return wanted


def _sort_order(sorts: list[str]) -> list[tuple[str, bool]]:
    """`objectKey:asc,createdAt:desc` as (model field, descending) pairs."""
    order = []
    for item in (part.strip() for value in sorts for part in value.split(",")):
        if not item:
            continue
        name, _, direction = item.partition(":")
        direction = direction.lower() or "asc"
        if name not in SORT_FIELDS or direction not in ("asc", "desc"):
            raise InvalidInput(
                f"Cannot sort by {item!r}.",
                {"sorts": f"Use FIELD:asc or FIELD:desc; FIELD is one of {SORTABLE}."},
            )
        order.append((SORT_FIELDS[name], direction == "desc"))
    return order or [("object_type", False), ("key", False)]


def _sorted_resolved(
    items: list[ResolvedObject], order: list[tuple[str, bool]]
) -> list[ResolvedObject]:
    # Stable sorts, last key first, give the same order the database would.
    items = sorted(items, key=lambda r: r.environment_object.pk)
    for field, descending in reversed(order):
        items.sort(key=lambda r: getattr(r.environment_object, field), reverse=descending)
    return items


class EnvironmentObjectListView(APIView):
    @extend_schema(
        operation_id="environment_objects_list",
        summary="List environment objects",
        description=(
            "Authors and above. With `deploymentId`, the Deployment's own (DEPLOYMENT-scoped) "
            "objects; add `resolveLinked=true` for everything that Deployment resolves: its "
            "linked Workspace objects with their overrides applied, plus its own objects. "
            + s.MASK_NOTE
        ),
        parameters=[s.ListQuerySerializer],
        responses={200: s.EnvironmentObjectListSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = _env_objects_workspace(request.user, workspace_id)
        query = _parse(s.ListQuerySerializer, request.query_params)
        order = _sort_order(query.get("sorts", []))
        show_secrets = query["showSecrets"]
        if show_secrets:
            require_secrets_shown_allowed(user=request.user, workspace=workspace)
        deployment = None
        if "deploymentId" in query:
            deployment = deployment_for_user(request.user, query["deploymentId"], workspace)
        limit, offset = query["limit"], query["offset"]
        values_by_id = None
        if query["resolveLinked"]:
            if deployment is None:
                raise InvalidInput(
                    "resolveLinked needs a deploymentId.",
                    {"resolveLinked": "Give the Deployment whose environment to resolve."},
                )
            items = self._resolved(deployment, query)
            total = len(items)
            page = _sorted_resolved(items, order)[offset : offset + limit]
            objects = [r.environment_object for r in page]
            prefetch_related_objects(
                objects,
                "created_by",
                "updated_by",
                Prefetch("links", queryset=Link.objects.filter(is_home=False), to_attr="api_links"),
                Prefetch(
                    "auto_link_excluded",
                    queryset=Deployment.objects.only("id"),
                    to_attr="api_excluded",
                ),
            )
            values_by_id = {r.environment_object.pk: r.values for r in page}
        else:
            objects_qs = self._filtered(_environment_objects(request.user, workspace), query)
            if deployment is not None:
                objects_qs = objects_qs.filter(scope=Scope.DEPLOYMENT, deployment=deployment)
            total = objects_qs.count()
            ordering = [f"-{f}" if desc else f for f, desc in order] + ["id"]
            objects = list(_with_relations(objects_qs.order_by(*ordering))[offset : offset + limit])
        bodies = _bodies(
            request,
            workspace,
            objects,
            show_secrets=show_secrets,
            values_by_id=values_by_id,
            deployment=deployment,
        )
        return Response(
            {"environmentObjects": bodies, "limit": limit, "offset": offset, "totalCount": total},
            headers=_secret_headers(show_secrets),
        )

    @staticmethod
    def _filtered(objects: QuerySet, query: dict[str, Any]) -> QuerySet:
        if "objectType" in query:
            objects = objects.filter(object_type=query["objectType"])
        if "objectKey" in query:
            objects = objects.filter(key=query["objectKey"])
        if "scope" in query:
            objects = objects.filter(scope=query["scope"])
        if query.get("search"):
            objects = objects.filter(key__icontains=query["search"])
        return objects

    @staticmethod
    def _resolved(deployment: Deployment, query: dict[str, Any]) -> list[ResolvedObject]:
        resolved = deployment_resolved_environment(deployment, query.get("objectType"))
        items = [item for by_key in resolved.values() for item in by_key.values()]
        if "objectKey" in query:
            items = [r for r in items if r.key == query["objectKey"]]
        if "scope" in query:
            items = [r for r in items if r.environment_object.scope == query["scope"]]
        if query.get("search"):
            needle = query["search"].lower()
            items = [r for r in items if needle in r.key.lower()]
        return items

    @extend_schema(
        operation_id="environment_objects_create",
        summary="Create an environment object",
        description=(
            "Operators and Owners (or, for a DEPLOYMENT-scoped object, whoever may update that "
            "Deployment). Send the block of the object's type. " + s.MASK_NOTE
        ),
        request=s.EnvironmentObjectCreateSerializer,
        responses={201: s.EnvironmentObjectSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = _env_objects_workspace(request.user, workspace_id)
        data = _parse(s.EnvironmentObjectCreateSerializer, request.data)
        object_type = data["objectType"]
        deployment = None
        entity_id = data.get("scopeEntityId")
        if data["scope"] == Scope.DEPLOYMENT:
            deployment = Deployment.objects.filter(workspace=workspace, pk=entity_id or 0).first()
        elif entity_id not in (None, workspace.pk):
            raise InvalidInput(
                "A Workspace object's scopeEntityId is its Workspace's id.",
                {"scopeEntityId": "Leave it out, or give this Workspace's id."},
            )
        links = _wanted_links(workspace, object_type, data.get("links")) or []
        with _named_for_api(object_type):
            obj = environment_object_create_with_links(
                user=request.user,
                workspace=workspace,
                object_type=object_type,
                key=data["objectKey"],
                values=s.block_values(object_type, data[s.block_name(object_type)]),
                scope=data["scope"],
                deployment=deployment,
                auto_link_deployments=data["autoLinkDeployments"],
                links=links,
            )
        obj = _object_for(request.user, workspace, obj.pk)
        body = _bodies(request, workspace, [obj], show_secrets=False)[0]
        return Response(body, status=status.HTTP_201_CREATED)


class EnvironmentObjectDetailView(APIView):
    @extend_schema(
        operation_id="environment_objects_retrieve",
        summary="Get one environment object with its links and their overrides",
        description="Authors and above. " + s.MASK_NOTE,
        parameters=[s.ShowSecretsQuerySerializer],
        responses={200: s.EnvironmentObjectSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int, object_id: int) -> Response:
        workspace = _env_objects_workspace(request.user, workspace_id)
        show_secrets = _parse(s.ShowSecretsQuerySerializer, request.query_params)["showSecrets"]
        if show_secrets:
            require_secrets_shown_allowed(user=request.user, workspace=workspace)
        obj = _object_for(request.user, workspace, object_id)
        body = _bodies(request, workspace, [obj], show_secrets=show_secrets)[0]
        return Response(body, headers={**_secret_headers(show_secrets), "ETag": object_etag(obj)})

    @extend_schema(
        operation_id="environment_objects_partial_update",
        summary="Change an environment object, its links and overrides",
        description=(
            "Operators and Owners. Only the fields sent change; a type block holds only the "
            "fields to change, so stored secrets stay unless a new value is sent. "
            "`objectType`, `scope` and `scopeEntityId` cannot change. Optional `If-Match` "
            "with the ETag a GET gave: if the object changed since, 412 and nothing changes."
        ),
        request=s.EnvironmentObjectUpdateSerializer,
        parameters=[
            OpenApiParameter(
                "If-Match",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="The object's ETag as last read; another answers 412.",
            )
        ],
        responses={
            200: s.EnvironmentObjectSerializer,
            **error_responses(400, 401, 403, 404, 409, 412),
        },
    )
    def patch(self, request: AuthenticatedRequest, workspace_id: int, object_id: int) -> Response:
        workspace = _env_objects_workspace(request.user, workspace_id)
        obj = _object_for(request.user, workspace, object_id)
        data = _parse(s.EnvironmentObjectUpdateSerializer, request.data, partial=True)
        current = s.EnvironmentObjectSerializer(obj).data
        for name in ("objectType", "scope", "scopeEntityId"):
            if name in data and data[name] != current[name]:
                raise InvalidInput(
                    f"{name} cannot be changed.", {name: f"This object's {name} is fixed."}
                )
        block = s.block_name(obj.object_type)
        for other in s.TYPE_OF_BLOCK:
            if other != block and other in data:
                raise InvalidInput(
                    f"This is a {obj.object_type}; send its fields in `{block}`.",
                    {other: f"Not a field of a {obj.object_type}."},
                )
        links = _wanted_links(workspace, obj.object_type, data.get("links"))
        unset = s.parse_field_names(obj.object_type, data.get("unsetFields", []), "unsetFields")
        with _named_for_api(obj.object_type):
            environment_object_update_with_links(
                user=request.user,
                obj=obj,
                key=data.get("objectKey"),
                values=s.block_values(obj.object_type, data.get(block, {})),
                auto_link_deployments=data.get("autoLinkDeployments"),
                links=links,
                unset_fields=unset,
                if_match=request.headers.get("If-Match"),
            )
        obj = _object_for(request.user, workspace, obj.pk)
        body = _bodies(request, workspace, [obj], show_secrets=False)[0]
        return Response(body, headers={"ETag": object_etag(obj)})

    @extend_schema(
        operation_id="environment_objects_destroy",
        summary="Delete an environment object",
        description="Operators and Owners. Every Deployment stops resolving it at once.",
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request: AuthenticatedRequest, workspace_id: int, object_id: int) -> Response:
        workspace = _env_objects_workspace(request.user, workspace_id)
        obj = _object_for(request.user, workspace, object_id)
        environment_object_delete(user=request.user, obj=obj)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExcludeLinkingView(APIView):
    @extend_schema(
        operation_id="environment_objects_exclude_linking",
        summary="Keep one Deployment out of an auto-linked object",
        description="Operators and Owners. Unlinks the Deployment and keeps it unlinked.",
        request=s.ExcludeLinkingSerializer,
        responses={200: s.EnvironmentObjectSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: AuthenticatedRequest, workspace_id: int, object_id: int) -> Response:
        workspace = _env_objects_workspace(request.user, workspace_id)
        obj = _object_for(request.user, workspace, object_id)
        data = _parse(s.ExcludeLinkingSerializer, request.data)
        deployment = Deployment.objects.filter(
            workspace=workspace, pk=data["scopeEntityId"]
        ).first()
        if deployment is None:
            raise InvalidInput(
                "No such Deployment in this Workspace.", {"scopeEntityId": "Unknown Deployment."}
            )
        with _named_for_api(obj.object_type):
            auto_link_exclude(user=request.user, obj=obj, deployment=deployment)
        obj = _object_for(request.user, workspace, obj.pk)
        return Response(_bodies(request, workspace, [obj], show_secrets=False)[0])


class IdeProjectListView(APIView):
    @extend_schema(
        operation_id="ide_projects_list",
        summary="List the Workspace's IDE projects",
        responses={200: s.IdeProjectListSerializer, **error_responses(401, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        projects = workspace.ide_projects.all()
        return Response({"ideProjects": s.IdeProjectSerializer(projects, many=True).data})

    @extend_schema(
        operation_id="ide_projects_create",
        summary="Create an IDE project",
        description="Operators and Owners.",
        request=s.IdeProjectInputSerializer,
        responses={201: s.IdeProjectSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        data = _parse(s.IdeProjectInputSerializer, request.data)
        project = ide_project_create(
            user=request.user,
            workspace=workspace,
            name=data["name"],
            description=data.get("description", ""),
        )
        return Response(s.IdeProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class IdeProjectDetailView(APIView):
    @extend_schema(
        operation_id="ide_projects_retrieve",
        summary="One IDE project",
        responses={200: s.IdeProjectSerializer, **error_responses(401, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int, project_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        project = ide_project_for_user(request.user, project_id, workspace)
        return Response(s.IdeProjectSerializer(project).data)

    @extend_schema(
        operation_id="ide_projects_partial_update",
        summary="Rename an IDE project or change its description",
        description="Operators and Owners. Its links stay.",
        request=s.IdeProjectInputSerializer(partial=True),
        responses={200: s.IdeProjectSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def patch(self, request: AuthenticatedRequest, workspace_id: int, project_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        project = ide_project_for_user(request.user, project_id, workspace)
        data = _parse(s.IdeProjectInputSerializer, request.data, partial=True)
        project = ide_project_update(
            user=request.user,
            project=project,
            name=data.get("name"),
            description=data.get("description"),
        )
        return Response(s.IdeProjectSerializer(project).data)

    @extend_schema(
        operation_id="ide_projects_destroy",
        summary="Delete an IDE project",
        description="Operators and Owners. Its links go with it; the Workspace objects stay.",
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request: AuthenticatedRequest, workspace_id: int, project_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        project = ide_project_for_user(request.user, project_id, workspace)
        ide_project_delete(user=request.user, project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)
