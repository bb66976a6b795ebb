"""The lookup endpoints a Deployment's Airflow calls through its secrets backend.

A lookup of one connection or variable is the hot path of every task. `answer` decides what a
lookup returns; it is served two ways with the same result:

- `LookupFastPath`, the WSGI entry gunicorn runs (`envmanager.wsgi`), answers GET and HEAD
  of `/api/v1/lookup/{connections,variables}/<key>` without Django's middleware, URL
  resolution and per-request connection check, which cost more than the lookup itself;
- the plain Django views below, for everything else that reaches Django (the test client,
  `runserver`, the whole-environment document).
"""

import functools
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port, validate_host
from django.utils.http import parse_etags
from django.views.decorators.csrf import csrf_exempt

from accounts.api.authentication import bearer_scheme_token
from envmanager import database_outage, lookups
from envmanager.database_outage import log_unavailable
from envmanager.kernel.api import error_body
from envmanager.object_types import ObjectType

log = logging.getLogger("django.request")

# path segment -> (object type, what a 404 calls it, the body of a hit)
KINDS: dict[str, tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "connections": (ObjectType.CONNECTION, "connection", lookups.airflow_connection),
    "variables": (ObjectType.AIRFLOW_VARIABLE, "variable", lambda v: {"value": v["value"]}),
}
# Secrets must not stay in any cache between Airflow and us.
HEADERS = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
# HEAD answers as GET does, without the body; any other method is a 405.
METHODS = ("GET", "HEAD")
ALLOW = ", ".join(METHODS)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self.status == 401:
            return [*HEADERS, ("WWW-Authenticate", "Bearer")]
        if self.status == 503:
            return [*HEADERS, ("Retry-After", str(database_outage.RETRY_AFTER_SECONDS))]
        return HEADERS


def answer(kind: str, key: str, authorization: str | None) -> Answer:
    """What `GET /api/v1/lookup/{kind}/{key}` returns for this Authorization header."""
    object_type, what, body = KINDS[kind]
    found = lookups.lookup(bearer_scheme_token(authorization or ""), object_type, key)
    if found.token_id is None:
        return Answer(401, error_body("A valid Deployment token is required.", 401))
    if found.values is None:
        return Answer(404, error_body(f"No such {what} for this Deployment.", 404))
    return Answer(200, body(found.values))


def _response(result: Answer) -> JsonResponse:
    response = JsonResponse(result.body, status=result.status)
    for name, value in result.headers:
        response[name] = value
    if result.status == 404:
        # A miss is an everyday answer here (Airflow then tries its other sources), not a
        # fault: keep it out of django.request's "Not Found" warnings, one per lookup.
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def lookup_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A lookup view: GET; HEAD as GET (status and headers, Content-Length included) without
    the body; any other method a 405 in our error shape with Allow. No CSRF check: a
    Deployment token signs these requests, never a session cookie."""

    @csrf_exempt
    @functools.wraps(view)
    def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in METHODS:
            message = f"Lookups answer {' and '.join(METHODS)} only."
            refused = JsonResponse(error_body(message, 405), status=405)
            refused["Allow"] = ALLOW
            return refused
        response = view(request, *args, **kwargs)
        if request.method == "HEAD":
            response["Content-Length"] = str(len(response.content))
            response.content = b""
        return response

    return endpoint


def if_none_match(header: str, etag: str) -> bool:
    """Whether an If-None-Match header matches the current representation's ETag, compared
    weakly as RFC 9110 (13.1.2) says: `W/"x"` matches `"x"`, a list matches if any of its
    tags does, and `*` matches whatever exists."""
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    return any(tag.removeprefix("W/") == etag.removeprefix("W/") for tag in tags)


@lookup_endpoint
def connection(request: HttpRequest, conn_id: str) -> JsonResponse:
    return _response(answer("connections", conn_id, request.META.get("HTTP_AUTHORIZATION")))


@lookup_endpoint
def variable(request: HttpRequest, key: str) -> JsonResponse:
    return _response(answer("variables", key, request.META.get("HTTP_AUTHORIZATION")))


@lookup_endpoint
def environment(request: HttpRequest) -> JsonResponse:
    token = lookups.token_for(bearer_scheme_token(request.META.get("HTTP_AUTHORIZATION", "")))
    if token is None:
        return _response(Answer(401, error_body("A valid Deployment token is required.", 401)))
    version = lookups.environment_version(token.deployment_id)
    etag = f'"{version}"'
    if if_none_match(request.headers.get("If-None-Match", ""), etag):
        response = JsonResponse({}, status=304)
        response.content = b""
    else:
        response = JsonResponse(lookups.document_cache.get(token.deployment_id, version))
    response["ETag"] = etag
    return response


PREFIX = "/api/v1/lookup/"
STATUS_LINES = {
    200: "200 OK",
    401: "401 Unauthorized",
    404: "404 Not Found",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


class _Body(list):
    """The response body; when the server has sent it, the request is finished for Django too
    (old connections closed), as after any Django response."""

    def close(self) -> None:
        request_finished.send(sender=LookupFastPath)


class LookupFastPath:
    """WSGI middleware in front of Django that serves one-key lookups itself. Anything it does
    not recognise (another path or method, a key that is not UTF-8, a host Django would reject,
    plain HTTP where HTTPS is required) goes to Django unchanged."""

    def __init__(self, django: WSGIHandler) -> None:
        self.django = django

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        target = self._target(environ)
        if target is None:
            return self.django(environ, start_response)
        method = environ["REQUEST_METHOD"]
        request_started.send(sender=LookupFastPath, environ=environ)
        try:
            result = answer(*target, environ.get("HTTP_AUTHORIZATION"))
        except (OperationalError, InterfaceError) as exc:
            log_unavailable(method, environ.get("PATH_INFO", ""), exc)
            result = Answer(503, error_body(database_outage.MESSAGE, 503))
        except Exception:
            log.exception("Lookup failed")
            result = Answer(500, error_body("The lookup failed on the server.", 500))
        body = json.dumps(result.body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers += result.headers
        if self._secure(environ) and settings.SECURE_HSTS_SECONDS:
            headers.append(("Strict-Transport-Security", self._hsts()))
        start_response(STATUS_LINES[result.status], headers)
        return _Body([b"" if method == "HEAD" else body])

    def _target(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in METHODS or not path.startswith(PREFIX):
            return None
        kind, _, key = path[len(PREFIX) :].partition("/")
        if kind not in KINDS or not key:
            return None
        if settings.SECURE_SSL_REDIRECT and not self._secure(environ):
            return None
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if settings.USE_X_FORWARDED_HOST or not validate_host(
            split_domain_port(host)[0], settings.ALLOWED_HOSTS
        ):
            return None
        try:
            # WSGI hands the path over as latin-1 text of the URL's bytes, as Django reads it.
            return kind, key.encode("latin-1").decode()
        except UnicodeError:
            return None

    @staticmethod
    def _secure(environ: dict[str, Any]) -> bool:
        if settings.SECURE_PROXY_SSL_HEADER:
            header, value = settings.SECURE_PROXY_SSL_HEADER
            forwarded = environ.get(header)
            if forwarded is not None:
                return forwarded.split(",")[0].strip() == value
        return environ.get("wsgi.url_scheme") == "https"

    @staticmethod
    def _hsts() -> str:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        return value
