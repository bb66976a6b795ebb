from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api.serializers import (
    MemberInputSerializer,
    MemberListSerializer,
    MemberSerializer,
    WorkspaceInputSerializer,
    WorkspaceListSerializer,
    WorkspaceSerializer,
)
from accounts.models import Workspace
from accounts.selectors import workspace_for_user, workspace_members
from envmanager.api.serializers import error_responses


class WorkspaceListView(APIView):
    @extend_schema(
        operation_id="workspaces_list",
        responses={200: WorkspaceListSerializer, **error_responses(401)},
    )
    def get(self, request):
        workspaces = Workspace.objects.visible_to(request.user)
        return Response({"workspaces": WorkspaceSerializer(workspaces, many=True).data})

    @extend_schema(
        request=WorkspaceInputSerializer,
        responses={201: WorkspaceSerializer, **error_responses(400, 401)},
    )
    def post(self, request):
        data = WorkspaceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = services.workspace_create(
            user=request.user,
            name=data.validated_data["name"],
            description=data.validated_data.get("description", ""),
        )
        return Response(WorkspaceSerializer(workspace).data, status=status.HTTP_201_CREATED)


class WorkspaceDetailView(APIView):
    @extend_schema(responses={200: WorkspaceSerializer, **error_responses(401, 404)})
    def get(self, request, workspace_id: int):
        return Response(WorkspaceSerializer(workspace_for_user(request.user, workspace_id)).data)

    @extend_schema(
        request=WorkspaceInputSerializer(partial=True),
        responses={200: WorkspaceSerializer, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request, workspace_id: int):
        workspace = workspace_for_user(request.user, workspace_id)
        data = WorkspaceInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        workspace = services.workspace_update(
            user=request.user,
            workspace=workspace,
            name=data.validated_data.get("name"),
            description=data.validated_data.get("description"),
            local_development_secrets=data.validated_data.get("localDevelopmentSecrets"),
        )
        return Response(WorkspaceSerializer(workspace).data)


class MemberListView(APIView):
    @extend_schema(
        operation_id="workspaces_members_list",
        responses={200: MemberListSerializer, **error_responses(401, 404)},
    )
    def get(self, request, workspace_id: int):
        workspace = workspace_for_user(request.user, workspace_id)
        return Response({"members": MemberSerializer(workspace_members(workspace), many=True).data})

    @extend_schema(
        request=MemberInputSerializer,
        responses={201: MemberSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, workspace_id: int):
        workspace = workspace_for_user(request.user, workspace_id)
        data = MemberInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_set(
            actor=request.user, workspace=workspace, **data.validated_data
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)
