"""A database that goes away mid-request (a restart, a failover, a killed session) is answered
with a 503 the caller can act on, never a 500: the API and lookups in our error shape, a
browser with a plain page; both say to try again, with Retry-After.

An API write runs in one transaction with the reading of its answer, so a write answered with
an error left nothing behind: never a 503 for a change that was stored. (Work queued with
`transaction.on_commit`, such as a migration's next step, starts when that transaction commits.)

Nothing else is needed to recover: PostgreSQL rolls back the transaction of a session it ends,
so a write either committed or left nothing behind, and Django closes the broken connection
when the request finishes (CONN_HEALTH_CHECKS catches one that died while idle), so the next
request opens a new one.
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template.loader import render_to_string

from envmanager.kernel.api import error_body

logger = logging.getLogger(__name__)

MESSAGE = "The database is unavailable; try again in a moment."
RETRY_AFTER_SECONDS = 1
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def log_unavailable(method: str, path: str, exception: Exception) -> None:
    # One line, no traceback: the cause is outside the app and the driver's first line names
    # it (the lines after it may quote the statement, and with it a value).
    cause = str(exception).partition("\n")[0]
    logger.warning("Database unavailable during %s %s: %s", method, path, cause)


class DatabaseUnavailableMiddleware:
    """Runs an API write in one transaction, and turns an OperationalError or InterfaceError
    raised by a view (or while rendering its template) into a 503. Other database errors are
    bugs and stay 500s."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method in SAFE_METHODS or not request.path.startswith("/api/"):
            return self.get_response(request)
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
        except (OperationalError, InterfaceError) as exc:  # lost while committing
            log_unavailable(request.method or "", request.path, exc)
            return unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log_unavailable(request.method or "", request.path, exception)
        return unavailable_response(request)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body(MESSAGE, 503), status=503)
    else:
        response = HttpResponse(render_to_string("database_unavailable.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response._has_been_logged = True  # type: ignore[attr-defined]  # logged once, by the caller
    return response
