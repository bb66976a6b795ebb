from rest_framework import serializers

from accounts.models import Membership, Role, Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    localDevelopmentSecrets = serializers.BooleanField(source="local_development_secrets")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Workspace
        fields = ["id", "name", "description", "localDevelopmentSecrets", "createdAt"]


class WorkspaceListSerializer(serializers.Serializer):
    workspaces = WorkspaceSerializer(many=True)


class WorkspaceInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    localDevelopmentSecrets = serializers.BooleanField(required=False)


class MemberSerializer(serializers.ModelSerializer):
    userId = serializers.IntegerField(source="user_id")
    email = serializers.EmailField(source="user.email")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Membership
        fields = ["userId", "email", "role", "createdAt"]


class MemberListSerializer(serializers.Serializer):
    members = MemberSerializer(many=True)


class MemberInputSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.values)
