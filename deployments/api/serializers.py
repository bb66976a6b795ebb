from rest_framework import serializers

from accounts.api.serializers import TokenSerializer
from deployments.models import Deployment, DeploymentToken


class DeploymentSerializer(serializers.ModelSerializer):
    workspaceId = serializers.IntegerField(source="workspace_id")
    hasMetadataDbUrl = serializers.SerializerMethodField()
    hasFernetKey = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = Deployment
        fields = [
            "id",
            "workspaceId",
            "name",
            "description",
            "kind",
            "hasMetadataDbUrl",
            "hasFernetKey",
            "createdAt",
            "updatedAt",
        ]

    def get_hasMetadataDbUrl(self, obj: Deployment) -> bool:
        return bool(obj.metadata_db_url)

    def get_hasFernetKey(self, obj: Deployment) -> bool:
        return bool(obj.fernet_key)


class DeploymentListSerializer(serializers.Serializer):
    deployments = DeploymentSerializer(many=True)


class DeploymentInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    kind = serializers.ChoiceField(choices=Deployment.Kind.values, required=False)
    metadataDbUrl = serializers.CharField(
        required=False, allow_blank=True, write_only=True, max_length=2000
    )
    fernetKey = serializers.CharField(
        required=False, allow_blank=True, write_only=True, max_length=2000
    )


class DeploymentTokenSerializer(TokenSerializer):
    deploymentId = serializers.IntegerField(source="deployment_id")

    class Meta:
        model = DeploymentToken
        fields = ["id", "deploymentId", "name", "hint", "createdAt", "lastUsedAt", "revokedAt"]


class DeploymentTokenCreatedSerializer(DeploymentTokenSerializer):
    token = serializers.CharField(help_text="The token itself: shown this once, kept hashed.")

    class Meta(DeploymentTokenSerializer.Meta):
        fields = [*DeploymentTokenSerializer.Meta.fields, "token"]


class DeploymentTokenListSerializer(serializers.Serializer):
    tokens = DeploymentTokenSerializer(many=True)


class DeploymentTokenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class KeyLookupsSerializer(serializers.Serializer):
    tokenId = serializers.IntegerField(source="token_id")
    tokenName = serializers.CharField(source="token_name")
    objectType = serializers.CharField(source="object_type")
    objectKey = serializers.CharField(source="object_key")
    hits = serializers.IntegerField(help_text="Lookups that found the key.")
    misses = serializers.IntegerField(help_text="Lookups of a key the Deployment does not resolve.")
    lastAt = serializers.DateTimeField(source="last_at")


class KeyLookupsListSerializer(serializers.Serializer):
    lookupCounts = KeyLookupsSerializer(many=True)


class MetadataDbTestSerializer(serializers.Serializer):
    connections = serializers.IntegerField(help_text="Rows in Airflow's connection table.")
    variables = serializers.IntegerField(help_text="Rows in Airflow's variable table.")
    decryptedValues = serializers.IntegerField(
        source="decrypted_values",
        help_text="Encrypted values (passwords, extras, variable values) the Fernet key "
        "decrypted: every one of them.",
    )
