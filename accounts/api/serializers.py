from rest_framework import serializers

from accounts.models import ApiToken, Membership, Role, Workspace


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


class TokenSerializer(serializers.ModelSerializer):
    """What every token (personal or Deployment) shows: never the token itself nor its hash."""

    hint = serializers.CharField(help_text="The token's first characters, to tell it apart.")
    createdAt = serializers.DateTimeField(source="created_at")
    lastUsedAt = serializers.DateTimeField(source="last_used_at", allow_null=True)
    revokedAt = serializers.DateTimeField(source="revoked_at", allow_null=True)


class ApiTokenSerializer(TokenSerializer):
    """A personal API token as its user sees it."""

    class Meta:
        model = ApiToken
        fields = ["id", "name", "hint", "createdAt", "lastUsedAt", "revokedAt"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The token itself: shown this once, kept hashed.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenListSerializer(serializers.Serializer):
    tokens = ApiTokenSerializer(many=True)


class ApiTokenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
