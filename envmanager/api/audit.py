from datetime import datetime, timedelta
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from accounts.models import AuditEvent, Workspace, WorkspacePermission
from accounts.permissions import require_workspace_perm
from accounts.selectors import workspace_for_user
from envmanager.api.serializers import PageSerializer
from envmanager.audit_views import audit_csv_response, audit_filters
from envmanager.kernel.api import error_responses
from envmanager.kernel.errors import InvalidInput
from envmanager.models import RESTORE_DELETED_DAYS, ObjectVersion
from envmanager.selectors import audit_events, deleted_object_versions, object_versions
from envmanager.services.versions import (
    FieldChange,
    LinkChange,
    environment_object_restore_version,
    version_diff,
)

FILTER_PARAMS = {
    "action": "action",
    "objectKey": "object_key",
    "objectType": "object_type",
    "deploymentId": "deployment_id",
    "actor": "actor_label",
    "since": "since",
    "until": "until",
}


class AuditEventSerializer(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField(source="actor_label")
    actorId = serializers.IntegerField(source="actor_id", allow_null=True)
    objectType = serializers.CharField(source="object_type")
    objectKey = serializers.CharField(source="object_key")
    environmentObjectId = serializers.IntegerField(source="environment_object_id", allow_null=True)
    deploymentId = serializers.IntegerField(source="deployment_id", allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "createdAt",
            "actor",
            "actorId",
            "action",
            "objectType",
            "objectKey",
            "environmentObjectId",
            "deploymentId",
            "fields",
            "detail",
        ]


class ObjectVersionSerializer(serializers.ModelSerializer):
    environmentObjectId = serializers.IntegerField(source="environment_object_id")
    objectType = serializers.CharField(source="object_type")
    objectKey = serializers.CharField(source="key")
    changedFields = serializers.ListField(source="changed_fields", child=serializers.CharField())
    createdAt = serializers.DateTimeField(source="created_at")
    createdBy = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    restoredAt = serializers.DateTimeField(source="restored_at", allow_null=True)
    detail = serializers.DictField(
        help_text="For a link or override change: deploymentId and deploymentName (or "
        "ideProjectId and ideProjectName), overrideFields and unsetFields (names only); "
        "autoLink when a new Deployment's auto-link made it, migrationRunId when a migration "
        "run or its undo did."
    )

    class Meta:
        model = ObjectVersion
        fields = [
            "id",
            "environmentObjectId",
            "objectType",
            "objectKey",
            "reason",
            "changedFields",
            "detail",
            "createdAt",
            "createdBy",
            "restoredAt",
        ]


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    secret = serializers.BooleanField()
    changed = serializers.BooleanField()
    version = serializers.CharField(
        allow_null=True,
        required=False,
        help_text="The value in the version as text (null: unset); never sent for a secret.",
    )
    current = serializers.CharField(
        allow_null=True,
        required=False,
        help_text="The value now as text (null: unset); never sent for a secret.",
    )

    def to_representation(self, instance: FieldChange) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.secret:
            del data["version"], data["current"]
        return data


class LinkChangeSerializer(serializers.Serializer):
    scope = serializers.SerializerMethodField()
    scopeEntityId = serializers.IntegerField(source="target_id")
    name = serializers.CharField(source="target_name")
    change = serializers.ChoiceField(
        choices=["LINKED_SINCE", "UNLINKED_SINCE", "OVERRIDES_CHANGED"]
    )
    overrides = FieldChangeSerializer(many=True)

    def get_scope(self, change: LinkChange) -> str:
        return "DEPLOYMENT" if change.target_kind == "Deployment" else "IDE_PROJECT"


class VersionDiffSerializer(serializers.Serializer):
    versionId = serializers.IntegerField(source="version.pk")
    objectExists = serializers.BooleanField(source="object_exists")
    fieldChanges = FieldChangeSerializer(source="fields", many=True)
    linkChanges = LinkChangeSerializer(source="links", many=True)
    secretFlagKept = serializers.BooleanField(
        source="secret_flag_kept",
        help_text="Restoring keeps the object secret (a secret stays secret).",
    )


class DeletedObjectSerializer(ObjectVersionSerializer):
    """The version saved when an object was deleted: restore it with
    `POST …/environment-objects/{environmentObjectId}/versions/{id}/restore`."""

    scope = serializers.CharField()
    deploymentId = serializers.IntegerField(source="deployment_id", allow_null=True)
    restorableUntil = serializers.SerializerMethodField(method_name="get_restorable_until")

    class Meta(ObjectVersionSerializer.Meta):
        fields = [*ObjectVersionSerializer.Meta.fields, "scope", "deploymentId", "restorableUntil"]

    def get_restorable_until(self, version: ObjectVersion) -> datetime:
        return version.created_at + timedelta(days=RESTORE_DELETED_DAYS)


class DeletedObjectListSerializer(serializers.Serializer):
    deletedObjects = DeletedObjectSerializer(many=True)


class AuditEventListSerializer(PageSerializer):
    auditEvents = AuditEventSerializer(many=True)


class ObjectVersionListSerializer(serializers.Serializer):
    versions = ObjectVersionSerializer(many=True)


class RestoredObjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    objectKey = serializers.CharField()
    objectType = serializers.CharField()


def _events(
    request: AuthenticatedRequest, workspace_id: int
) -> tuple[Workspace, QuerySet[AuditEvent]]:
    workspace = workspace_for_user(request.user, workspace_id)
    params = {FILTER_PARAMS[k]: v for k, v in request.query_params.items() if k in FILTER_PARAMS}
    try:
        # QueryDict.items() gives each parameter's last value: text.
        filters = audit_filters(cast(dict[str, str], params))
        return workspace, audit_events(request.user, workspace, filters)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from None


def _page_bounds(request: AuthenticatedRequest) -> tuple[int, int]:
    try:
        limit = int(request.query_params.get("limit", 100))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        raise InvalidInput("limit and offset are whole numbers.") from None
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidInput("limit is 1 to 1000 and offset at least 0.", {"limit": "1 to 1000."})
    return limit, offset


AUDIT_PARAMS = [OpenApiParameter(name, str) for name in FILTER_PARAMS] + [
    OpenApiParameter("limit", int),
    OpenApiParameter("offset", int),
]


class AuditLogView(APIView):
    @extend_schema(
        operation_id="workspaces_audit_log_list",
        parameters=AUDIT_PARAMS,
        responses={200: AuditEventListSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        _, events = _events(request, workspace_id)
        limit, offset = _page_bounds(request)
        return Response(
            {
                "auditEvents": AuditEventSerializer(
                    events[offset : offset + limit], many=True
                ).data,
                "limit": limit,
                "offset": offset,
                "totalCount": events.count(),
            }
        )


class AuditLogExportView(APIView):
    @extend_schema(
        parameters=AUDIT_PARAMS,
        responses={(200, "text/csv"): str, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> StreamingHttpResponse:
        workspace, events = _events(request, workspace_id)
        return audit_csv_response(events, workspace)


class ObjectVersionsView(APIView):
    @extend_schema(
        operation_id="workspaces_environment_objects_versions_list",
        responses={200: ObjectVersionListSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int, object_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        require_workspace_perm(
            request.user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace, "see environment objects"
        )
        versions = object_versions(object_id, workspace)
        return Response({"versions": ObjectVersionSerializer(versions, many=True).data})


class DeletedObjectsView(APIView):
    @extend_schema(
        operation_id="workspaces_deleted_environment_objects_list",
        summary="Deleted environment objects that can still be restored",
        description=f"Authors and above; Operators and Owners may restore (for "
        f"{RESTORE_DELETED_DAYS} days after the deletion).",
        responses={200: DeletedObjectListSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        require_workspace_perm(
            request.user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace, "see environment objects"
        )
        versions = deleted_object_versions(workspace)
        return Response({"deletedObjects": DeletedObjectSerializer(versions, many=True).data})


class ObjectVersionDiffView(APIView):
    @extend_schema(
        operation_id="workspaces_environment_objects_versions_diff",
        summary="A version compared with the object as it is now",
        description="Authors and above. Per field its value in the version and now; a secret "
        "field only as changed or unchanged. Restoring an existing object changes its key and "
        "values, not its links.",
        responses={200: VersionDiffSerializer, **error_responses(401, 403, 404)},
    )
    def get(
        self, request: AuthenticatedRequest, workspace_id: int, object_id: int, version_id: int
    ) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        require_workspace_perm(
            request.user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace, "see environment objects"
        )
        version = ObjectVersion.objects.filter(
            workspace=workspace, environment_object_id=object_id, pk=version_id
        ).first()
        if version is None:
            raise Http404("No such version.")
        return Response(VersionDiffSerializer(version_diff(version=version)).data)


class ObjectVersionRestoreView(APIView):
    @extend_schema(
        request=None,
        responses={200: RestoredObjectSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(
        self, request: AuthenticatedRequest, workspace_id: int, object_id: int, version_id: int
    ) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        version = ObjectVersion.objects.filter(
            workspace=workspace, environment_object_id=object_id, pk=version_id
        ).first()
        if version is None:
            raise Http404("No such version.")
        obj = environment_object_restore_version(user=request.user, version=version)
        return Response({"id": obj.pk, "objectKey": obj.key, "objectType": obj.object_type})
