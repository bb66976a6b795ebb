"""The admin shows; the app changes. Deleting a Deployment, removing a member, revoking a token or
deleting an object each has rules (an active run refuses, tokens are revoked, grants go with the
member, versions and audit are written) that live in the services, so the admin offers none of
those changes: its pages are read-only for the models these rules guard."""

from django.db.models import Model
from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """No add, change or delete through the admin; the app's pages and API do them."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
