"""The API tokens page: a user creates (shown once) and revokes their own personal API tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from accounts import services
from envmanager.errors import EnvManagerError


@never_cache  # the answer to a create holds the token: no browser or proxy may keep it
@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    created = None
    if request.method == "POST":
        try:
            if request.POST.get("action") == "revoke":
                token_id = request.POST.get("token_id", "")
                token = (
                    request.user.api_tokens.filter(pk=token_id).first()
                    if token_id.isascii() and token_id.isdigit()
                    else None
                )
                if token is not None:
                    services.api_token_revoke(user=request.user, token=token)
                    messages.success(request, f"Revoked {token.name}.")
                return redirect("api-tokens")
            token, plain = services.api_token_create(
                user=request.user, name=request.POST.get("name", "")
            )
            # Rendered in this answer only: a message would keep it in the session storage.
            created = {"token": plain, "name": token.name}
        except EnvManagerError as exc:
            messages.error(request, exc.message)
    return render(
        request,
        "accounts/api_tokens.html",
        {"tokens": request.user.api_tokens.all(), "created": created},
    )
