from django.contrib import admin

from deployments.models import Deployment, DeploymentToken, IdeProject
from envmanager.kernel.admin import ReadOnlyAdminMixin


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only. Renaming and deleting a Deployment have rules (an active run refuses the
    delete, its tokens are revoked, its objects and links go, all audited), and its metadata-DB
    URL and Fernet keys are a door the server opens (the allowlist, one Deployment per database,
    Owners only): they change through the Deployment's pages or the API. Per-Deployment grants
    are given by the Workspace's roles, so guardian's object-permission pages are not offered."""

    fields = ["workspace", "name", "description", "kind", "has_metadata_db"]
    readonly_fields = ["has_metadata_db"]
    list_display = ["name", "workspace", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "workspace__name"]

    @admin.display(boolean=True, description="Metadata DB set")
    def has_metadata_db(self, obj: Deployment) -> bool:
        return bool(obj.metadata_db_url)


@admin.register(IdeProject)
class IdeProjectAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "workspace", "created_at"]
    search_fields = ["name"]


@admin.register(DeploymentToken)
class DeploymentTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a token is made and revoked (audited) on the Deployment's Tokens page."""

    list_display = ["name", "deployment", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["token_hash", "hint", "created_at", "last_used_at"]
