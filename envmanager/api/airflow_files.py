"""Airflow's own file formats through the API, as the page (`envmanager.airflow_file_views`)
offers them: preview and import a file (a multipart upload, or JSON with its name and text) and
export one, for a Workspace or for what one Deployment resolves. The services decide who may
and what happens (`envmanager.services.airflow_files`)."""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from accounts.models import Workspace
from accounts.selectors import workspace_for_user
from deployments.models import Deployment
from deployments.selectors import deployment_for_user
from envmanager.airflow_file_views import airflow_file_response
from envmanager.airflow_files import MAX_FILE_BYTES
from envmanager.api.parsers import JSONParser
from envmanager.kernel.api import TextField, error_responses
from envmanager.kernel.errors import InvalidInput
from envmanager.object_types import AIRFLOW_SLUGS, EXPORT_FORMATS
from envmanager.services.airflow_files import (
    ImportRow,
    airflow_file_export,
    airflow_file_import,
    airflow_file_preview,
)

ACTIONS = (ImportRow.CREATE, ImportRow.OVERRIDE, ImportRow.UPDATE, ImportRow.SKIP)
FILE_TYPE = OpenApiParameter(
    "file_type",
    str,
    OpenApiParameter.PATH,
    enum=list(AIRFLOW_SLUGS),
    description="Airflow connections or Airflow variables.",
)
DEPLOYMENT_HELP = (
    "A Deployment of this Workspace: the file is read against what it resolves (a key it gets "
    "from a linked Workspace object becomes an override, a new key its own object)."
)


class _ImportOptionsSerializer(serializers.Serializer):
    deploymentId = serializers.IntegerField(
        required=False, allow_null=True, help_text=DEPLOYMENT_HELP
    )
    overwrite = serializers.BooleanField(
        default=False, help_text="Replace objects that exist with other values."
    )


class AirflowFileUploadSerializer(_ImportOptionsSerializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="As `airflow connections export` or `airflow variables export` writes it; "
        "its extension (.json, .yaml, .yml, .env) is its format.",
    )


class AirflowFileContentSerializer(_ImportOptionsSerializer):
    filename = TextField(
        allow_blank=False, max_length=255, help_text="The file's name; its extension is its format."
    )
    content = TextField(help_text="The file's text.")


class ImportRowSerializer(serializers.Serializer):
    objectKey = serializers.CharField(source="key")
    action = serializers.ChoiceField(choices=ACTIONS)
    reason = serializers.CharField()


class ImportCountsSerializer(serializers.Serializer):
    CREATE = serializers.IntegerField()
    OVERRIDE = serializers.IntegerField()
    UPDATE = serializers.IntegerField()
    SKIP = serializers.IntegerField()


class ImportPlanSerializer(serializers.Serializer):
    rows = ImportRowSerializer(many=True)
    counts = ImportCountsSerializer()


def _object_type(file_type: str) -> str:
    if file_type not in AIRFLOW_SLUGS:
        raise Http404("No such kind of Airflow file.")
    return AIRFLOW_SLUGS[file_type]


def _deployment(
    request: AuthenticatedRequest, deployment_id: int | None, workspace: Workspace
) -> Deployment | None:
    if deployment_id is None:
        return None
    return deployment_for_user(request.user, deployment_id, workspace)


class _AirflowFilePlanView(APIView):
    """The file read from a multipart upload or from JSON, given to `service` (preview or
    import); the answer is its rows and their counts."""

    parser_classes = [MultiPartParser, JSONParser]
    service: Callable[..., list[ImportRow]]

    def post(self, request: AuthenticatedRequest, workspace_id: int, file_type: str) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        object_type = _object_type(file_type)
        upload = request.content_type.startswith("multipart/")
        try:
            payload = request.data
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
            raise InvalidInput(
                f"The request is larger than {limit} MiB; send a file this large as a "
                "multipart upload (`file`).",
                {"content": "Too large."},
            ) from None
        serializer = AirflowFileUploadSerializer if upload else AirflowFileContentSerializer
        data = serializer(data=payload)
        data.is_valid(raise_exception=True)
        options = data.validated_data
        if upload:
            # One byte past the limit is enough for the service to refuse a file too large.
            filename, content = options["file"].name, options["file"].read(MAX_FILE_BYTES + 1)
        else:
            filename, content = options["filename"], options["content"].encode()
        rows = self.service(
            user=request.user,
            workspace=workspace,
            deployment=_deployment(request, options.get("deploymentId"), workspace),
            object_type=object_type,
            filename=filename,
            content=content,
            overwrite=options["overwrite"],
        )
        return Response(
            {
                "rows": ImportRowSerializer(rows, many=True).data,
                "counts": {a: sum(1 for r in rows if r.action == a) for a in ACTIONS},
            }
        )


def _plan_schema(
    operation_id: str, description: str
) -> Callable[[type[_AirflowFilePlanView]], type[_AirflowFilePlanView]]:
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            description=description,
            parameters=[FILE_TYPE],
            examples=[
                OpenApiExample(
                    "A connections file as JSON",
                    request_only=True,
                    media_type="application/json",
                    value={
                        "filename": "connections.json",
                        "content": '{"reporting_db": "postgres://etl:pw@db.internal:5432/dwh"}',
                        "overwrite": False,
                    },
                )
            ],
            request={
                "multipart/form-data": AirflowFileUploadSerializer,
                "application/json": AirflowFileContentSerializer,
            },
            responses={200: ImportPlanSerializer, **error_responses(400, 401, 403, 404)},
        )
    )


@_plan_schema(
    "workspaces_airflow_files_preview",
    "What importing the file would do, row by row; changes nothing. Operators and Owners.",
)
class AirflowFilePreviewView(_AirflowFilePlanView):
    service = staticmethod(airflow_file_preview)


@_plan_schema(
    "workspaces_airflow_files_import",
    "Import the file in one transaction; the answer lists what was done. Operators and Owners.",
)
class AirflowFileImportView(_AirflowFilePlanView):
    service = staticmethod(airflow_file_import)


class AirflowFileExportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=EXPORT_FORMATS["CONNECTION"],
        default="json",
        help_text="Variables are exported as JSON only.",
    )
    serialization = serializers.ChoiceField(
        choices=["uri", "json"],
        default="uri",
        help_text="How each connection is written in a .env file.",
    )
    deploymentId = serializers.IntegerField(required=False, help_text="Export what it resolves.")


class AirflowFileExportView(APIView):
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # The file is no rendering of DRF's and `format` names the file's format, not the
        # answer's (DRF's own reading of it): an error is JSON whatever the request asks for.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="workspaces_airflow_files_export",
        description="The file as `airflow connections export` / `airflow variables export` "
        "writes it, secrets included (audited as a reveal). Operators and Owners, or Authors "
        "where the Workspace allows local development.",
        parameters=[FILE_TYPE, AirflowFileExportSerializer],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request: AuthenticatedRequest, workspace_id: int, file_type: str) -> HttpResponse:
        workspace = workspace_for_user(request.user, workspace_id)
        object_type = _object_type(file_type)
        query = AirflowFileExportSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = query.validated_data
        deployment = _deployment(request, options.get("deploymentId"), workspace)
        text = airflow_file_export(
            user=request.user,
            workspace=workspace,
            deployment=deployment,
            object_type=object_type,
            file_format=options["format"],
            serialization=options["serialization"],
        )
        return airflow_file_response(
            text,
            workspace=workspace,
            deployment=deployment,
            type_slug=file_type,
            file_format=options["format"],
        )
