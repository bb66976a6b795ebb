"""The request a signed-in page or API view sees: behind `login_required` (a page) or the
default `IsAuthenticated` permission (the REST API), `request.user` is a User."""

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """For annotations only (django-stubs' recommended way): a view behind `login_required`
    takes one of these, so its `request.user` is a `User`, never an `AnonymousUser`."""

    user: User


class AuthenticatedRequest(Request):
    """For annotations only, the REST API's counterpart: an `APIView` behind the default
    `IsAuthenticated` permission takes one of these, so its `request.user` is a `User`."""

    user: User
