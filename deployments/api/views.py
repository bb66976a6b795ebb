from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from accounts.models import WorkspacePermission
from accounts.permissions import require_workspace_perm
from accounts.selectors import workspace_for_user
from deployments import services
from deployments.api.serializers import (
    DeploymentInputSerializer,
    DeploymentListSerializer,
    DeploymentSerializer,
    DeploymentTokenCreatedSerializer,
    DeploymentTokenInputSerializer,
    DeploymentTokenListSerializer,
    DeploymentTokenSerializer,
    KeyLookupsListSerializer,
    KeyLookupsSerializer,
    MetadataDbTestSerializer,
)
from deployments.models import DeploymentToken
from deployments.selectors import deployment_for_user, deployment_lookup_counts
from envmanager.kernel.api import error_responses


def _deployment_fields(data: dict) -> dict:
    names = {"metadataDbUrl": "metadata_db_url", "fernetKey": "fernet_key"}
    return {names.get(k, k): v for k, v in data.items()}


class DeploymentListView(APIView):
    @extend_schema(
        operation_id="workspaces_deployments_list",
        responses={200: DeploymentListSerializer, **error_responses(401, 404)},
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        deployments = workspace.deployments.all()
        return Response({"deployments": DeploymentSerializer(deployments, many=True).data})

    @extend_schema(
        request=DeploymentInputSerializer,
        responses={201: DeploymentSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, workspace_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        data = DeploymentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = services.deployment_create(
            user=request.user, workspace=workspace, **_deployment_fields(data.validated_data)
        )
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)


class DeploymentDetailView(APIView):
    @extend_schema(responses={200: DeploymentSerializer, **error_responses(401, 404)})
    def get(self, request: AuthenticatedRequest, workspace_id: int, deployment_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        return Response(
            DeploymentSerializer(deployment_for_user(request.user, deployment_id, workspace)).data
        )

    @extend_schema(
        request=DeploymentInputSerializer(partial=True),
        responses={200: DeploymentSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def patch(
        self, request: AuthenticatedRequest, workspace_id: int, deployment_id: int
    ) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        deployment = deployment_for_user(request.user, deployment_id, workspace)
        data = DeploymentInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        deployment = services.deployment_update(
            user=request.user, deployment=deployment, **_deployment_fields(data.validated_data)
        )
        return Response(DeploymentSerializer(deployment).data)

    @extend_schema(
        operation_id="workspaces_deployments_destroy",
        summary="Delete a Deployment",
        description="Owners only. Deletes its own (Deployment-scoped) objects, its links to "
        "Workspace objects with their overrides (the Workspace objects stay), its Deployment "
        "tokens (its secrets backend gets 401 at once) and its migration runs with their undo "
        "data. Refused with 409, nothing changed, while one of its migration runs is active.",
        responses={204: None, **error_responses(401, 403, 404, 409)},
    )
    def delete(
        self, request: AuthenticatedRequest, workspace_id: int, deployment_id: int
    ) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        deployment = deployment_for_user(request.user, deployment_id, workspace)
        services.deployment_delete(user=request.user, deployment=deployment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeploymentTokenListView(APIView):
    @extend_schema(
        operation_id="deployments_tokens_list",
        responses={200: DeploymentTokenListSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        return Response(
            {"tokens": DeploymentTokenSerializer(deployment.tokens.all(), many=True).data}
        )

    @extend_schema(
        request=DeploymentTokenInputSerializer,
        responses={201: DeploymentTokenCreatedSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        data = DeploymentTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, plain = services.deployment_token_create(
            user=request.user, deployment=deployment, name=data.validated_data["name"]
        )
        body = {**DeploymentTokenSerializer(token).data, "token": plain}
        return Response(body, status=status.HTTP_201_CREATED)


class DeploymentTokenRevokeView(APIView):
    @extend_schema(
        request=None, responses={200: DeploymentTokenSerializer, **error_responses(401, 403, 404)}
    )
    def post(self, request: AuthenticatedRequest, deployment_id: int, token_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        token = DeploymentToken.objects.filter(deployment=deployment, pk=token_id).first()
        if token is None:
            raise Http404("No such token.")
        token = services.deployment_token_revoke(user=request.user, token=token)
        return Response(DeploymentTokenSerializer(token).data)


class DeploymentLookupCountsView(APIView):
    @extend_schema(
        operation_id="deployments_lookup_counts_list",
        summary="What the Deployment's tokens looked up, per token and key",
        description="Authors and above. Counts are written in batches, about every 10 seconds.",
        responses={200: KeyLookupsListSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        require_workspace_perm(
            request.user,
            WorkspacePermission.VIEW_ENV_OBJECTS,
            deployment.workspace,
            "see what this Deployment looks up",
        )
        rows = deployment_lookup_counts(deployment)
        return Response({"lookupCounts": KeyLookupsSerializer(rows, many=True).data})


class DeploymentMetadataDbTestView(APIView):
    @extend_schema(
        operation_id="deployments_metadata_db_test",
        summary="Test the Deployment's metadata database",
        description="Owners only. Reachable, on the allowlist, Airflow's tables found, the "
        "Fernet key decrypts every encrypted value; counts of connections and variables. A "
        "failure answers 400 with the reason (one message for anything the server may not or "
        "cannot open).",
        request=None,
        responses={200: MetadataDbTestSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        report = services.deployment_metadata_db_test(user=request.user, deployment=deployment)
        return Response(MetadataDbTestSerializer(report).data)
