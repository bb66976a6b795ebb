from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from accounts.selectors import workspace_for_user
from envmanager.kernel.api import error_responses
from envmanager.selectors import environment_object_for_user
from envmanager.services.promotion import environment_object_promote


class PromoteInputSerializer(serializers.Serializer):
    confirmKey = serializers.CharField(required=False, allow_blank=True, max_length=255)


class PromoteResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    objectKey = serializers.CharField()
    objectType = serializers.CharField()
    scope = serializers.CharField()
    overrideCreated = serializers.BooleanField()


class PromoteView(APIView):
    @extend_schema(
        request=PromoteInputSerializer,
        responses={200: PromoteResultSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, workspace_id: int, object_id: int) -> Response:
        workspace = workspace_for_user(request.user, workspace_id)
        obj = environment_object_for_user(request.user, object_id, workspace)
        data = PromoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        promoted, override_created = environment_object_promote(
            user=request.user, obj=obj, confirm_key=data.validated_data.get("confirmKey")
        )
        return Response(
            {
                "id": promoted.pk,
                "objectKey": promoted.key,
                "objectType": promoted.object_type,
                "scope": promoted.scope,
                "overrideCreated": override_created,
            }
        )
