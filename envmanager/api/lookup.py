"""The lookup endpoints a Deployment's Airflow calls through its secrets backend. Plain Django
views, not DRF: this is the hot path of every task and needs no more than a token check."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from accounts.api.authentication import bearer_token
from envmanager import lookups
from envmanager.api.errors import error_body


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse(error_body(message, status), status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _token(request: HttpRequest):
    return lookups.token_for(bearer_token(request))


@require_GET
def connection(request: HttpRequest, conn_id: str) -> JsonResponse:
    token = _token(request)
    if token is None:
        return _error(401, "A valid Deployment token is required.")
    found = lookups.lookup_connection(token, conn_id)
    if found is None:
        return _error(404, "No such connection for this Deployment.")
    return JsonResponse(found)


@require_GET
def variable(request: HttpRequest, key: str) -> JsonResponse:
    token = _token(request)
    if token is None:
        return _error(401, "A valid Deployment token is required.")
    value = lookups.lookup_variable(token, key)
    if value is None:
        return _error(404, "No such variable for this Deployment.")
    return JsonResponse({"value": value})


@require_GET
def environment(request: HttpRequest) -> JsonResponse:
    token = _token(request)
    if token is None:
        return _error(401, "A valid Deployment token is required.")
    etag = f'"{lookups.environment_version(token.deployment_id)}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = JsonResponse({}, status=304)
        response.content = b""
    else:
        response = JsonResponse(lookups.environment_document(token.deployment_id))
    response["ETag"] = etag
    return response
