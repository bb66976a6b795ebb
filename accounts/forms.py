from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

# Login throttling: after this many failed attempts for one email (or from one address) within
# the window, further attempts are refused until the window passes.
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW_SECONDS = 15 * 60


def _keys(request, email: str) -> list[str]:
    address = request.META.get("REMOTE_ADDR", "") if request else ""
    return [f"login-fail:email:{email.strip().lower()}", f"login-fail:ip:{address}"]


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing further attempts after repeated failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed attempts. Wait 15 minutes and try again.",
    }

    def clean(self):
        email = self.cleaned_data.get("username") or ""
        keys = _keys(self.request, email)
        if any((cache.get(key) or 0) >= MAX_FAILED_LOGINS for key in keys):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except ValidationError:
            for key in keys:
                cache.add(key, 0, FAILED_LOGIN_WINDOW_SECONDS)
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, FAILED_LOGIN_WINDOW_SECONDS)
            raise
