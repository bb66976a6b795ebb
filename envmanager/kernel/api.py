"""The API's common ground: every error as `{"message", "statusCode", "requestId",
"fieldErrors": [...]}` with field names as the API spells them (camelCase), the error body's
schema, and the JSON-typed base fields every app's serializers use."""

import re
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from envmanager.kernel.errors import EnvManagerError

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


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
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


def error_body(
    message: str, status_code: int, field_errors: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "message": message,
        "statusCode": status_code,
        "requestId": uuid.uuid4().hex,
        "fieldErrors": field_errors or [],
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
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


# The error body, for the OpenAPI schema.


class FieldErrorSerializer(serializers.Serializer[Any]):
    field = serializers.CharField(help_text="camelCase path, e.g. `connection.port`.")
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer[Any]):
    message = serializers.CharField()
    statusCode = serializers.IntegerField()
    requestId = serializers.CharField()
    fieldErrors = FieldErrorSerializer(many=True)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation can give, for its OpenAPI schema."""
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


# JSON-typed fields: DRF would turn 5 into "5" and "5" into 5; the API takes JSON as it is.


class TextField(serializers.CharField):
    default_error_messages = {"invalid": "Must be text (a JSON string)."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class WholeNumberField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be a whole number (a JSON number, not text)."}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class TrueFalseField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class JsonObjectField(serializers.DictField):
    default_error_messages = {"not_a_dict": 'Must be a JSON object, like {{"key": "value"}}.'}


class ClosedSerializer(serializers.Serializer[Any]):
    """Unknown fields are an error, so a misspelt field is not silently dropped."""

    ignored_fields: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - set(self.ignored_fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code=UNKNOWN_FIELD
                )
        return super().to_internal_value(data)
