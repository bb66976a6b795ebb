from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenInputSerializer,
    ApiTokenListSerializer,
    ApiTokenSerializer,
    MemberInputSerializer,
    MemberListSerializer,
    MemberSerializer,
    WorkspaceInputSerializer,
    WorkspaceListSerializer,
    WorkspaceSerializer,
)
from accounts.http import AuthenticatedRequest
from accounts.models import ApiToken, Workspace
from accounts.selectors import workspace_for_user, workspace_member, workspace_members
from envmanager.kernel.api import error_responses


class WorkspaceListView(APIView):
    @extend_schema(
        operation_id="workspaces_list",
        responses={200: WorkspaceListSerializer, **error_responses(401)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        workspaces = Workspace.objects.visible_to(request.user)
        return Response({"workspaces": WorkspaceSerializer(workspaces, many=True).data})

    @extend_schema(
        request=WorkspaceInputSerializer,
        responses={201: WorkspaceSerializer, **error_responses(400, 401)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
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
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        return Response(WorkspaceSerializer(workspace_for_user(request.user, workspace_id)).data)

    @extend_schema(
        request=WorkspaceInputSerializer(partial=True),
        responses={200: WorkspaceSerializer, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
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
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        return Response({"members": MemberSerializer(workspace_members(workspace), many=True).data})

    @extend_schema(
        summary="Add a member or change a member's role",
        description=(
            "Owners only. `email` names an existing user: one who is not a member yet joins "
            "with `role`; a member's role becomes `role` (201 either way, with the membership "
            "as it now is). Demoting the last Owner is refused (409): make someone else Owner "
            "first. An unknown email is a 404."
        ),
        request=MemberInputSerializer,
        responses={201: MemberSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        data = MemberInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_set(
            actor=request.user, workspace=workspace, **data.validated_data
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    @extend_schema(
        summary="Remove a member",
        description=(
            "Owners only. The user loses every permission in the Workspace (their personal "
            "tokens then see it no more). A user who is not a member is a 404; removing the last "
            "Owner is refused (409)."
        ),
        responses={
            204: OpenApiResponse(description="Removed."),
            **error_responses(401, 403, 404, 409),
        },
    )
    def delete(self, request: AuthenticatedRequest, workspace_id: int, user_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        membership = workspace_member(workspace, user_id)
        services.membership_remove(actor=request.user, workspace=workspace, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenListView(APIView):
    """The caller's own personal API tokens."""

    @extend_schema(
        operation_id="me_tokens_list",
        responses={200: ApiTokenListSerializer, **error_responses(401)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        tokens = request.user.api_tokens.all()
        return Response({"tokens": ApiTokenSerializer(tokens, many=True).data})

    @extend_schema(
        summary="Create a personal API token",
        description=(
            "The answer carries the token once; only its hash is kept. Only a signed-in browser "
            "session (with its CSRF token) may create one: a request authenticated by a personal "
            "token is refused (403), so a leaked token cannot mint successors."
        ),
        request=ApiTokenInputSerializer,
        responses={201: ApiTokenCreatedSerializer, **error_responses(400, 401, 403, 409)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = ApiTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        acting_token = request.auth if isinstance(request.auth, ApiToken) else None
        token, plain = services.api_token_create(
            user=request.user, name=data.validated_data["name"], acting_token=acting_token
        )
        body = {**ApiTokenSerializer(token).data, "token": plain}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiTokenRevokeView(APIView):
    @extend_schema(
        summary="Revoke a personal API token",
        description="One of the caller's own tokens (another user's id is a 404); it stops "
        "authenticating at once. Revoking a revoked token changes nothing.",
        request=None,
        responses={200: ApiTokenSerializer, **error_responses(401, 404)},
    )
    def post(self, request: AuthenticatedRequest, token_id: int) -> Response:
        token = request.user.api_tokens.filter(pk=token_id).first()
        if token is None:
            raise Http404("No such token.")
        token = services.api_token_revoke(user=request.user, token=token)
        return Response(ApiTokenSerializer(token).data)
