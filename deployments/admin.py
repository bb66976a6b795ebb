from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from deployments.models import Deployment, DeploymentToken, IdeProject


@admin.register(Deployment)
class DeploymentAdmin(GuardedModelAdmin):
    """The metadata-DB URL and Fernet keys are not editable here: they are a door the server
    opens, so they are set only through the Deployment's settings page or the API, where the
    allowlist, the one-Deployment-per-database rule and the Owner check apply."""

    fields = ["workspace", "name", "description", "kind", "has_metadata_db"]
    readonly_fields = ["has_metadata_db"]
    list_display = ["name", "workspace", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "workspace__name"]

    @admin.display(boolean=True, description="Metadata DB set")
    def has_metadata_db(self, obj: Deployment) -> bool:
        return bool(obj.metadata_db_url)


@admin.register(IdeProject)
class IdeProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "created_at"]
    search_fields = ["name"]


@admin.register(DeploymentToken)
class DeploymentTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "deployment", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["token_hash", "hint", "created_at", "last_used_at"]
