"""What the two token pages (personal API tokens, Deployment tokens) share.

A new token is shown once. The answer to the POST that made it is a redirect, so reloading
the page cannot make a second token; until the page it leads to shows it, the token waits in
the session only sealed (encrypted with our keys, bound to the user and the page, for a few
minutes), and it is dropped from the session as it is shown.
"""

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Token
from envmanager.kernel.encryption import SealBroken, seal, unseal
from envmanager.kernel.errors import EnvManagerError

_Token = TypeVar("_Token", bound=Token)

SESSION_KEY = "envmanager-token-shown-once"
SHOW_WITHIN_SECONDS = 300


def _purpose(request: HttpRequest, page: str) -> str:
    return f"token-shown-once:{page}:{request.user.pk}"


def show_once(request: HttpRequest, plain: str, *, page: str) -> None:
    """Keep a new token for the next view of `page` (call before redirecting there)."""
    request.session[SESSION_KEY] = seal(plain.encode(), purpose=_purpose(request, page))


def shown_once(request: HttpRequest, *, page: str) -> str | None:
    """The token kept for this page, once; None if there is none (or it is too old)."""
    sealed = request.session.get(SESSION_KEY)
    if sealed is None:
        return None
    try:
        plain = unseal(sealed, purpose=_purpose(request, page), max_age=SHOW_WITHIN_SECONDS)
    except SealBroken:
        return None  # made for another page, or too old: keep it for where it belongs
    del request.session[SESSION_KEY]
    return plain.decode()


def posted_token(request: HttpRequest, tokens: QuerySet[_Token]) -> _Token | None:
    """The token of `tokens` a form names by its `token_id`; None for anything else."""
    token_id = request.POST.get("token_id", "")
    if not (token_id.isascii() and token_id.isdigit()):
        return None
    return tokens.filter(pk=token_id).first()


def revoke_posted(
    request: HttpRequest, tokens: QuerySet[_Token], revoke: Callable[[_Token], object]
) -> None:
    """Revoke the token of `tokens` the form names (`posted_token`) with the service `revoke`,
    and say what happened; anything else posted changes nothing."""
    token = posted_token(request, tokens)
    if token is None:
        return
    try:
        revoke(token)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Revoked {token.name}.")
