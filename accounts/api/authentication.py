from typing import TYPE_CHECKING, Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken, User

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema


def bearer_scheme_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer …` header value, or None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_token(request: Request) -> str | None:
    return bearer_scheme_token(request.META.get("HTTP_AUTHORIZATION", ""))


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Personal API tokens: `Authorization: Bearer emp_…`, stored hashed."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        token = bearer_token(request)
        if token is None or not token.startswith(f"{ApiToken.PREFIX}_"):
            return None
        api_token = ApiToken.objects.for_bearer(token).select_related("user").first()
        if api_token is None or not api_token.user.is_active:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        api_token.mark_used()
        return api_token.user, api_token

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes personal tokens in the OpenAPI schema (drf-spectacular cannot guess it)."""

    target_class = "accounts.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: "AutoSchema") -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (`emp_…`): `Authorization: Bearer emp_…`.",
        }
