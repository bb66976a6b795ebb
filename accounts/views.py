"""The API tokens page: a user creates (shown once) and revokes their own personal API tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import services
from accounts.http import AuthenticatedHttpRequest
from accounts.token_pages import revoke_posted, show_once, shown_once
from envmanager.kernel.errors import EnvManagerError

PAGE = "api-tokens"


@never_cache  # the page that shows a new token: no browser or proxy may keep it
@login_required
@require_GET
def api_tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    shown = shown_once(request, page=PAGE)
    return render(
        request,
        "accounts/api_tokens.html",
        {"tokens": request.user.api_tokens.all(), "created": {"token": shown} if shown else None},
    )


@login_required
@require_POST
def api_token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    try:
        token, plain = services.api_token_create(
            user=request.user, name=request.POST.get("name", "")
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        show_once(request, plain, page=PAGE)
        messages.success(request, f"Created {token.name}.")
    return redirect("api-tokens")


@login_required
@require_POST
def api_token_revoke(request: AuthenticatedHttpRequest) -> HttpResponse:
    revoke_posted(
        request,
        request.user.api_tokens.all(),
        lambda token: services.api_token_revoke(user=request.user, token=token),
    )
    return redirect("api-tokens")
