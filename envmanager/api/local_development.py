"""Local development API: a Deployment's whole environment with its secrets, for
`envmanager-env pull` and a personal API token, where the Workspace allows it (audited)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from deployments.selectors import deployment_for_user
from envmanager.kernel.api import error_responses
from envmanager.services.local_development import local_development_pull


class LocalEnvironmentSerializer(serializers.Serializer):
    deploymentId = serializers.IntegerField()
    workspaceId = serializers.IntegerField()
    environmentVariables = serializers.DictField(child=serializers.CharField())
    dotenv = serializers.CharField(help_text="The environment variables as a dotenv file.")
    connectionsFile = serializers.CharField(
        help_text="The connections as `airflow connections import FILE.json` reads them."
    )
    variablesFile = serializers.CharField(
        help_text="The Airflow variables as `airflow variables import FILE.json` reads them."
    )


class LocalEnvironmentView(APIView):
    @extend_schema(
        operation_id="deployments_local_development_pull",
        summary="A Deployment's environment for local development, secrets included",
        description="Everything the Deployment resolves (overrides applied), secret values "
        "included, for a developer's own Airflow (`envmanager-env pull`). Only where the "
        "Workspace allows local development with secrets, to Authors and above, as "
        "`showSecrets`; each object is recorded in the audit log as revealed.",
        responses={200: LocalEnvironmentSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        pulled = local_development_pull(user=request.user, deployment=deployment)
        body = {
            "deploymentId": deployment.pk,
            "workspaceId": deployment.workspace_id,
            "environmentVariables": pulled.environment_variables,
            "dotenv": pulled.dotenv,
            "connectionsFile": pulled.connections_file,
            "variablesFile": pulled.variables_file,
        }
        return Response(body, headers={"Cache-Control": "no-store"})
