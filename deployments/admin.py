from django import forms
from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from deployments.models import Deployment, DeploymentToken, IdeProject


class DeploymentAdminForm(forms.ModelForm):
    """Secrets are write-only here: the stored value is never sent to the browser; leaving the
    field empty keeps it."""

    metadata_db_url = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored URL.",
    )
    fernet_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored key(s).",
    )

    class Meta:
        model = Deployment
        fields = ["workspace", "name", "description", "kind", "metadata_db_url", "fernet_key"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["metadata_db_url"] = ""
        self.initial["fernet_key"] = ""

    def clean(self):
        cleaned = super().clean()
        for name in ("metadata_db_url", "fernet_key"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(Deployment.objects.get(pk=self.instance.pk), name)
        return cleaned


@admin.register(Deployment)
class DeploymentAdmin(GuardedModelAdmin):
    form = DeploymentAdminForm
    list_display = ["name", "workspace", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "workspace__name"]


@admin.register(IdeProject)
class IdeProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "created_at"]
    search_fields = ["name"]


@admin.register(DeploymentToken)
class DeploymentTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "deployment", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["token_hash", "hint", "created_at", "last_used_at"]
