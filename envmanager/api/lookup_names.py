"""`GET /api/v1/lookup/names`: for a Deployment token, the keys its Deployment resolves, where
each comes from and its page in envmanager, and no value (the selector decides what leaves).
The envmanager plugin inside the Deployment's Airflow shows it; it is read once per cache
period, not per task, so it is a plain Django view beside the whole-environment document."""

import hashlib
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from accounts.api.authentication import bearer_scheme_token
from deployments.models import Deployment
from envmanager import lookups
from envmanager.api.lookup import HEADERS, Answer, _response, if_none_match, lookup_endpoint
from envmanager.kernel.api import error_body
from envmanager.object_types import ObjectType
from envmanager.selectors import ResolvedName, deployment_environment_names

# Document key per type, as the environment document names them.
TYPE_KEYS: dict[str, str] = {
    ObjectType.CONNECTION: "connections",
    ObjectType.AIRFLOW_VARIABLE: "variables",
    ObjectType.ENVIRONMENT_VARIABLE: "environmentVariables",
    ObjectType.METRICS_EXPORT: "metricsExports",
}
SHOWN_KEYS = {"conn_type": "connType", "host": "host"}
# Bumped when the document's shape changes, so no client keeps an old one by its ETag.
FORMAT = "names-1"


def _entry(name: ResolvedName) -> dict[str, Any]:
    return {
        "key": name.key,
        "source": name.source,
        "overriddenFields": list(name.overridden_fields),
        "objectId": name.object_id,
        "path": name.page_path,
        "isSecret": name.is_secret,
        **{SHOWN_KEYS[field]: value for field, value in name.shown.items()},
    }


def names_document(deployment: Deployment) -> dict[str, Any]:
    names = deployment_environment_names(deployment)
    return {
        "deployment": {
            "id": deployment.pk,
            "name": deployment.name,
            "path": reverse("deployment-environment", args=[deployment.pk]),
        },
        "workspace": {"id": deployment.workspace_id, "name": deployment.workspace.name},
        **{TYPE_KEYS[t]: [_entry(n) for n in entries] for t, entries in names.items()},
    }


@lookup_endpoint
def names(request: HttpRequest) -> JsonResponse:
    token = lookups.token_for(bearer_scheme_token(request.META.get("HTTP_AUTHORIZATION", "")))
    if token is None:
        return _response(Answer(401, error_body("A valid Deployment token is required.", 401)))
    deployment = Deployment.objects.select_related("workspace").get(pk=token.deployment_id)
    version = lookups.environment_version(deployment.pk)
    # Names of the Deployment and its Workspace are in the document too.
    tag = "|".join((FORMAT, version, deployment.name, deployment.workspace.name))
    etag = f'"{hashlib.sha256(tag.encode()).hexdigest()[:32]}"'
    if if_none_match(request.headers.get("If-None-Match", ""), etag):
        response = JsonResponse({}, status=304)
        response.content = b""
    else:
        response = JsonResponse(names_document(deployment))
    for header, value in HEADERS:
        response[header] = value
    response["ETag"] = etag
    return response
