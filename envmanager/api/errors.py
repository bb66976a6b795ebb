"""Every API error as `{"message", "statusCode", "requestId", "fieldErrors": [...]}`."""

import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from envmanager.errors import EnvManagerError


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
            {"field": name, "code": exc.code, "message": message}
            for name, message in exc.field_errors.items()
        ]
        return Response(error_body(exc.message, exc.status_code, fields), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
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
