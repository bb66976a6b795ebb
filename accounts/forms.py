from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest

# Login throttling, within a window of 15 minutes: after 5 failed attempts for one email, that
# email is refused until the window passes (whoever tries it); one address gets 50 failures, so
# that many people behind one proxy or NAT are not locked out by one of them. Counts live in the
# shared cache (Redis in production; files in the data folder for the embedded default, so
# every worker process counts together). The app's login and the admin's count together.
MAX_FAILED_LOGINS = 5
MAX_FAILED_LOGINS_PER_ADDRESS = 50
FAILED_LOGIN_WINDOW_SECONDS = 15 * 60
THROTTLED_MESSAGE = "Too many failed attempts. Wait 15 minutes and try again."


def _limits(request: HttpRequest | None, email: str) -> dict[str, int]:
    address = request.META.get("REMOTE_ADDR", "") if request else ""
    return {
        f"login-fail:email:{email.strip().lower()}": MAX_FAILED_LOGINS,
        f"login-fail:ip:{address}": MAX_FAILED_LOGINS_PER_ADDRESS,
    }


class LoginThrottle(AuthenticationForm):
    """On a login form (mixed in before Django's own): refuse further attempts after repeated
    failures."""

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username") or ""
        limits = _limits(self.request, email)
        if any((cache.get(key) or 0) >= limit for key, limit in limits.items()):
            raise ValidationError(THROTTLED_MESSAGE, code="throttled")
        try:
            return super().clean()
        except ValidationError:
            for key in limits:
                cache.add(key, 0, FAILED_LOGIN_WINDOW_SECONDS)
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, FAILED_LOGIN_WINDOW_SECONDS)
            raise


class ThrottledAuthenticationForm(LoginThrottle, AuthenticationForm):
    """Django's login form (`/login/`), throttled."""


class ThrottledAdminAuthenticationForm(LoginThrottle, AdminAuthenticationForm):
    """The admin's login form (`/admin/login/`), throttled by the same counts."""
