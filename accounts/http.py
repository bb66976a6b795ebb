"""The request a signed-in page sees: behind `login_required`, `request.user` is a User."""

from django.http import HttpRequest

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """For annotations only (django-stubs' recommended way): a view behind `login_required`
    takes one of these, so its `request.user` is a `User`, never an `AnonymousUser`."""

    user: User
