from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from accounts.models import WorkspacePermission
from accounts.permissions import require_workspace_perm
from deployments.selectors import deployment_for_user
from envmanager.api.parsers import JSONParser
from envmanager.kernel.api import error_responses
from envmanager.models import MigrationItem, MigrationRun
from envmanager.selectors import migration_run_for_user, migration_run_progress
from envmanager.services import migration
from envmanager.services.migration import MigrationCandidate

STATE_NAMES = {
    "SELECTED": "selected",
    "VERIFIED": "verified",
    "DELETED": "deleted",
    "KEPT_CHANGED": "keptChanged",
    "KEPT_UNRESOLVED": "keptUnresolved",
    "CONFLICT": "conflict",
    "FAILED": "failed",
    "UNDONE": "undone",
    "LEFT_MIGRATED": "leftMigrated",
}


class MigrationItemSerializer(serializers.ModelSerializer):
    objectKey = serializers.CharField(source="object_key")
    environmentObjectId = serializers.IntegerField(source="environment_object_id", allow_null=True)
    verifiedAt = serializers.DateTimeField(source="verified_at", allow_null=True)
    deletedAt = serializers.DateTimeField(source="deleted_at", allow_null=True)

    class Meta:
        model = MigrationItem
        fields = [
            "objectKey",
            "state",
            "action",
            "reason",
            "environmentObjectId",
            "verifiedAt",
            "deletedAt",
        ]


class MigrationRunSerializer(serializers.ModelSerializer):
    deploymentId = serializers.IntegerField(source="deployment_id")
    workspaceId = serializers.IntegerField(source="workspace_id")
    objectType = serializers.CharField(source="object_type")
    createdAt = serializers.DateTimeField(source="created_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    deleteAfter = serializers.DateTimeField(source="delete_after", allow_null=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = MigrationRun
        fields = [
            "id",
            "workspaceId",
            "deploymentId",
            "objectType",
            "mode",
            "status",
            "error",
            "createdAt",
            "deleteAfter",
            "finishedAt",
            "progress",
        ]

    def get_progress(self, run: MigrationRun) -> dict:
        counts = migration_run_progress(run)
        return {
            "total": counts.pop("total"),
            **{STATE_NAMES[s]: counts.get(s, 0) for s in STATE_NAMES},
        }


class MigrationRunDetailSerializer(MigrationRunSerializer):
    items = MigrationItemSerializer(many=True)

    class Meta(MigrationRunSerializer.Meta):
        fields = [*MigrationRunSerializer.Meta.fields, "items"]


class MigrationRunListSerializer(serializers.Serializer):
    migrations = MigrationRunSerializer(many=True)


class MigrationStartSerializer(serializers.Serializer):
    objectType = serializers.ChoiceField(choices=["CONNECTION", "AIRFLOW_VARIABLE"])
    mode = serializers.ChoiceField(
        choices=MigrationRun.Mode.values,
        default=MigrationRun.Mode.MOVE,
        help_text="MOVE (migrate into envmanager) or REMOVE_SHADOWED (remove CONFLICT rows "
        "identical to what the Deployment resolves from Airflow; nothing is copied).",
    )
    objectKeys = serializers.ListField(
        child=serializers.CharField(max_length=255), allow_empty=False, max_length=100_000
    )


class UndoPlanItemSerializer(serializers.Serializer):
    objectKey = serializers.CharField(source="key")
    action = serializers.CharField()
    laterWork = serializers.ListField(child=serializers.CharField(), source="later_work")


class UndoPlanSerializer(serializers.Serializer):
    items = UndoPlanItemSerializer(many=True)


class MigrationUndoSerializer(serializers.Serializer):
    choices = serializers.DictField(
        child=serializers.ChoiceField(choices=[migration.UNDO, migration.KEEP]),
        required=False,
        help_text='For each object changed since the run (see GET): "undo" or "keep".',
    )


class CandidateSerializer(serializers.Serializer):
    objectKey = serializers.CharField(source="object_key")
    status = serializers.ChoiceField(
        choices=MigrationCandidate.STATUSES,
        help_text="NEW: a new Workspace object linked to this Deployment will be created. "
        "EXISTS_IN_WORKSPACE: a Workspace object with this key exists but is not linked to "
        "this Deployment; a Deployment-level override on it will be created. CONFLICT: the "
        "Deployment already resolves this key (from its own object or a linked Workspace "
        "object), so the row is shadowed and is not migrated; a run leaves it in Airflow.",
    )
    reason = serializers.CharField(help_text="What migrating it does, or why it cannot be.")
    summary = serializers.CharField()
    description = serializers.CharField()
    removable = serializers.BooleanField(
        help_text="A CONFLICT row identical to what the Deployment resolves: it can be removed "
        "from Airflow (POST …/migrations with mode REMOVE_SHADOWED) and nothing changes."
    )
    difference = serializers.CharField(
        help_text="For a CONFLICT row that differs: which fields (names only)."
    )


class CandidateListSerializer(serializers.Serializer):
    objectType = serializers.CharField(help_text="CONNECTION or AIRFLOW_VARIABLE.")
    candidates = CandidateSerializer(many=True)
    totalCount = serializers.IntegerField()


class MigrationCandidatesView(APIView):
    @extend_schema(
        operation_id="deployments_migration_candidates_list",
        parameters=[OpenApiParameter("objectType", enum=["CONNECTION", "AIRFLOW_VARIABLE"])],
        responses={200: CandidateListSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        object_type = request.query_params.get("objectType", "CONNECTION")
        candidates = migration.migration_candidates(
            user=request.user, deployment=deployment, object_type=object_type
        )
        return Response(
            {
                "objectType": object_type,
                "candidates": CandidateSerializer(candidates, many=True).data,
                "totalCount": len(candidates),
            }
        )


class DeploymentMigrationsView(APIView):
    @extend_schema(
        operation_id="deployments_migrations_list",
        responses={200: MigrationRunListSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        require_workspace_perm(
            request.user,
            WorkspacePermission.MIGRATE_FROM_AIRFLOW,
            deployment.workspace,
            "see migrations",
        )
        runs = deployment.migration_runs.all()[:100]
        return Response({"migrations": MigrationRunSerializer(runs, many=True).data})

    @extend_schema(
        request=MigrationStartSerializer,
        responses={202: MigrationRunSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, deployment_id: int) -> Response:
        deployment = deployment_for_user(request.user, deployment_id)
        data = MigrationStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = migration.migration_start(
            user=request.user,
            deployment=deployment,
            object_type=data.validated_data["objectType"],
            object_keys=data.validated_data["objectKeys"],
            mode=data.validated_data["mode"],
        )
        run.refresh_from_db()
        return Response(MigrationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class MigrationRunView(APIView):
    @extend_schema(responses={200: MigrationRunDetailSerializer, **error_responses(401, 404)})
    def get(self, request: AuthenticatedRequest, run_id: int) -> Response:
        run = migration_run_for_user(request.user, run_id)
        migration.migration_run_resume_due(run=run)
        return Response(MigrationRunDetailSerializer(run).data)


class MigrationRunUndoView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="migrations_undo_plan",
        responses={200: UndoPlanSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: AuthenticatedRequest, run_id: int) -> Response:
        """What an undo would take back, and which objects were changed since the run."""
        run = migration_run_for_user(request.user, run_id)
        require_workspace_perm(
            request.user, WorkspacePermission.MIGRATE_FROM_AIRFLOW, run.workspace, "undo it"
        )
        return Response(UndoPlanSerializer({"items": migration.migration_undo_plan(run=run)}).data)

    @extend_schema(
        request=MigrationUndoSerializer,
        responses={202: MigrationRunSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, run_id: int) -> Response:
        data = MigrationUndoSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = migration.migration_undo(
            user=request.user,
            run=migration_run_for_user(request.user, run_id),
            choices=data.validated_data.get("choices"),
        )
        run.refresh_from_db()
        return Response(MigrationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class MigrationRunRetryView(APIView):
    @extend_schema(
        request=None,
        responses={202: MigrationRunSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, run_id: int) -> Response:
        run = migration.migration_retry(
            user=request.user, run=migration_run_for_user(request.user, run_id)
        )
        run.refresh_from_db()
        return Response(MigrationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
