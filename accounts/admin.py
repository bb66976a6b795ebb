from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.forms import ThrottledAdminAuthenticationForm
from accounts.models import ApiToken, Membership, User, Workspace
from envmanager.kernel.admin import ReadOnlyAdminMixin


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Read-only: removing a member also removes their per-Deployment grants, and every role
    change is audited; the Workspace's Members section does both."""

    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = fields


@admin.register(Workspace)
class WorkspaceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a Workspace's settings and members change (audited) on its own page."""

    list_display = ["name", "local_development_secrets", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a personal token is made and revoked on the API tokens page."""

    list_display = ["name", "user", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["token_hash", "hint", "created_at", "last_used_at"]
    search_fields = ["name", "user__email"]


# Staff accounts are the most valuable to guess: the admin's login counts failures as ours does.
admin.site.login_form = ThrottledAdminAuthenticationForm
