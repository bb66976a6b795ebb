"""What a request gets when it goes wrong: the API our JSON error body, a browser a page in our
layout with a way back. A database lost anywhere is a 503 (`database_outage`)."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from envmanager.database_outage import unavailable_response
from envmanager.kernel.api import error_body

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "You may not do that here."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    500: ("Something went wrong", "The server failed to answer. Please try again."),
}


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _answer(request: HttpRequest, status: int) -> HttpResponse:
    title, message = MESSAGES[status]
    if _is_api(request):
        return JsonResponse(error_body(message, status), status=status)
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _answer(request, 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _answer(request, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _answer(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """`handler500`: the database lost outside a view (a middleware saving the session, say) is
    a 503 as well. The page is rendered without the request: nothing that may have failed (the
    session, the user, the database) is touched again."""
    exception = sys.exc_info()[1]
    if isinstance(exception, OperationalError | InterfaceError):
        return unavailable_response(request)
    if _is_api(request):
        return JsonResponse(error_body(MESSAGES[500][1], 500), status=500)
    title, message = MESSAGES[500]
    page = render_to_string("error.html", {"title": title, "message": message})
    return HttpResponse(page, status=500)
