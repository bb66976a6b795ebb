"""The lookup endpoints a Deployment's Airflow calls through its secrets backend. Plain Django
views, not DRF: this is the hot path of every task and needs no more than a token check."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from accounts.api.authentication import bearer_token
from envmanager import lookups
from envmanager.api.errors import error_body
from envmanager.object_types import ObjectType


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse(error_body(message, status), status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _one(request: HttpRequest, object_type: str, key: str, what: str):
    found = lookups.lookup(bearer_token(request), object_type, key)
    if found.token_id is None:
        return None, _error(401, "A valid Deployment token is required.")
    if found.values is None:
        response = _error(404, f"No such {what} for this Deployment.")
        # A miss is an everyday answer here (Airflow then tries its other sources), not a
        # fault: keep it out of django.request's "Not Found" warnings, one per lookup.
        response._has_been_logged = True
        return None, response
    return found.values, None


@require_GET
def connection(request: HttpRequest, conn_id: str) -> JsonResponse:
    values, error = _one(request, ObjectType.CONNECTION, conn_id, "connection")
    return error or JsonResponse(lookups.airflow_connection(values))


@require_GET
def variable(request: HttpRequest, key: str) -> JsonResponse:
    values, error = _one(request, ObjectType.AIRFLOW_VARIABLE, key, "variable")
    return error or JsonResponse({"value": values["value"]})


@require_GET
def environment(request: HttpRequest) -> JsonResponse:
    token = lookups.token_for(bearer_token(request))
    if token is None:
        return _error(401, "A valid Deployment token is required.")
    version = lookups.environment_version(token.deployment_id)
    etag = f'"{version}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = JsonResponse({}, status=304)
        response.content = b""
    else:
        response = JsonResponse(lookups.document_cache.get(token.deployment_id, version))
    response["ETag"] = etag
    return response
