from django.contrib import admin

from envmanager.kernel.admin import ReadOnlyAdminMixin
from envmanager.models import EnvironmentObject, Link


class LinkInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Link
    extra = 0
    fields = ("deployment", "ide_project", "is_home", "is_auto", "override_fields")
    readonly_fields = fields

    @admin.display(description="Overridden fields")
    def override_fields(self, link: Link) -> str:
        return ", ".join(sorted(link.overrides)) or "—"


@admin.register(EnvironmentObject)
class EnvironmentObjectAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only, values masked: an object is changed and deleted (kept 30 days, versioned,
    audited) through the app, where the rules live."""

    list_display = ["key", "object_type", "scope", "workspace", "deployment", "updated_at"]
    list_filter = ["object_type", "scope"]
    search_fields = ["key"]
    readonly_fields = ["masked_values", "created_at", "updated_at", "created_by", "updated_by"]
    fields = [
        "workspace",
        "scope",
        "deployment",
        "object_type",
        "key",
        "auto_link_deployments",
        "masked_values",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    ]
    inlines = [LinkInline]

    @admin.display(description="Values")
    def masked_values(self, obj: EnvironmentObject) -> str:
        secret = set(obj.secret_fields())
        return ", ".join(
            f"{name}={'********' if name in secret and value else value!r}"
            for name, value in obj.values.items()
        )
