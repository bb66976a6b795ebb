"""Every API error as `{"message", "statusCode", "requestId", "fieldErrors": [...]}`, its
field names as the API spells them (camelCase)."""

import re
import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from envmanager.errors import EnvManagerError

_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
# Fields whose keys are the user's own (a connection's extra, a metrics export's headers and
# labels): a path below one of them is kept as it is.
# Below these the keys are the user's (an extra's keys; `choices` of an undo: object keys).
FREE_FORM_FIELDS = frozenset({"extra", "headers", "labels", "choices"})
# The code of an error about a field the client sent that we do not know: its name is the
# client's, kept as sent (`is_secret` for `isSecret`, say, and the client sees its mistake).
UNKNOWN_FIELD = "unknown"


def api_field_name(path: str) -> str:
    """A field path as the API names it: each snake_case part in camelCase (`metadata_db_url`
    → `metadataDbUrl`, `links[0].unset_fields` → `links[0].unsetFields`), up to a free-form
    field, below which the keys are the user's."""
    parts = path.split(".")
    named = []
    for index, part in enumerate(parts):
        name, bracket, rest = part.partition("[")
        if _SNAKE_CASE.fullmatch(name):
            first, *others = name.split("_")
            name = first + "".join(word.capitalize() for word in others)
        named.append(name + bracket + rest)
        if name in FREE_FORM_FIELDS:
            named.extend(parts[index + 1 :])
            break
    return ".".join(named)


def _field_named_for_api(error: dict[str, str]) -> dict[str, str]:
    if error["code"] == UNKNOWN_FIELD:
        return error
    return {**error, "field": api_field_name(error["field"])}


def _flatten(detail, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if isinstance(key, int):  # DRF reports errors of list items as {index: …}
                out.extend(_flatten(value, f"{prefix}[{key}]"))
                continue
            name = key if key != "non_field_errors" else ""
            out.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(d, dict | list) for d in detail):
            return [
                {"field": prefix, "code": getattr(d, "code", "invalid"), "message": str(d)}
                for d in detail
            ]
        out = []
        for index, item in enumerate(detail):
            out.extend(_flatten(item, f"{prefix}[{index}]"))
        return out
    return [{"field": prefix, "code": getattr(detail, "code", "invalid"), "message": str(detail)}]


def error_body(message: str, status_code: int, field_errors: list | None = None) -> dict:
    return {
        "message": message,
        "statusCode": status_code,
        "requestId": uuid.uuid4().hex,
        "fieldErrors": field_errors or [],
    }


def exception_handler(exc, context):
    if isinstance(exc, EnvManagerError):
        fields = [
            {"field": api_field_name(name), "code": exc.code, "message": message}
            for name, message in exc.field_errors.items()
        ]
        message = exc.message
        if fields and message == "; ".join(f"{k}: {v}" for k, v in exc.field_errors.items()):
            # A message made of the field errors (InvalidInput.from_validation_error) names
            # the fields as they are named here.
            message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return Response(error_body(message, exc.status_code, fields), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = [_field_named_for_api(f) for f in _flatten(exc.detail)]
        message = "; ".join(
            f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields
        )
        response.data = error_body(message or "Invalid input.", response.status_code, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(str(detail), response.status_code)
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = "Bearer"
    return response
