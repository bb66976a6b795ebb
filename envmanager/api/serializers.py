"""Shapes of the environment-object API, and the one table (`BLOCKS`) that maps its camelCase
names to the snake_case fields of `envmanager.object_types.SPECS`.

Input serializers only check JSON types (a port is a number, `extra` an object); what a value
may be is `object_types`' rule, applied by the services. Output serializers describe the body
for the OpenAPI schema and build it (`EnvironmentObjectSerializer.to_representation`),
leaving secrets out.
"""

from collections.abc import Iterable, Mapping
from typing import Any, cast

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from accounts.models import User
from envmanager import object_types
from envmanager.kernel.api import (
    UNKNOWN_FIELD,
    ClosedSerializer,
    JsonObjectField,
    TextField,
    TrueFalseField,
    WholeNumberField,
)
from envmanager.models import EnvironmentObject, Link
from envmanager.object_types import MetricsAuth, ObjectType, Scope

# objectType → (name of its block in the body, {camelCase field: snake_case field in SPECS}).
BLOCKS: dict[str, tuple[str, dict[str, str]]] = {
    ObjectType.CONNECTION: (
        "connection",
        {
            "type": "conn_type",
            "description": "description",
            "host": "host",
            "schema": "schema",
            "login": "login",
            "password": "password",
            "port": "port",
            "extra": "extra",
        },
    ),
    ObjectType.AIRFLOW_VARIABLE: (
        "airflowVariable",
        {"value": "value", "description": "description", "isSecret": "is_secret"},
    ),
    ObjectType.ENVIRONMENT_VARIABLE: (
        "environmentVariable",
        {"value": "value", "isSecret": "is_secret"},
    ),
    ObjectType.METRICS_EXPORT: (
        "metricsExport",
        {
            "endpoint": "endpoint",
            "exporterType": "exporter_type",
            "authType": "auth_type",
            "basicToken": "basic_token",
            "username": "username",
            "password": "password",
            "sigV4AssumeArn": "sig_v4_assume_arn",
            "sigV4StsRegion": "sig_v4_sts_region",
            "headers": "headers",
            "labels": "labels",
        },
    ),
}
for _type, (_block, _names) in BLOCKS.items():
    # A field added to SPECS must get an API name here, or it would silently never show.
    assert set(_names.values()) == set(object_types.SPECS[_type].fields), _type
TYPE_OF_BLOCK = {block: object_type for object_type, (block, _) in BLOCKS.items()}
# Names the services use for top-level things, as the API names them.
TOP_LEVEL_NAMES = {
    "key": "objectKey",
    "object_type": "objectType",
    "auto_link_deployments": "autoLinkDeployments",
    "deployment": "scopeEntityId",
}
SHOW_SECRETS_HELP = (
    "Include secret values. Only where the Workspace setting for local development with "
    "secrets is on (Authors and above); every such request is audited."
)
MASK_NOTE = "Secret fields are write-only: they never appear in responses; see `setFields`."


def block_name(object_type: str) -> str:
    return BLOCKS[object_type][0]


def to_snake(object_type: str, name: str) -> str | None:
    """The SPECS field (or `extra.KEY`) an API field name stands for, or None if unknown."""
    if object_type == ObjectType.CONNECTION and name.startswith("extra.") and len(name) > 6:
        return name
    return BLOCKS[object_type][1].get(name)


def to_camel(object_type: str, name: str) -> str:
    if name.startswith("extra."):
        return name
    camel = {snake: camel for camel, snake in BLOCKS[object_type][1].items()}
    return camel.get(name, name)


def api_field_path(object_type: str | None, path: str) -> str:
    """A service's field name (`port`, `key`, `links[0].overrides.conn_type`) as the API names
    it (`connection.port`, `objectKey`, `links[0].overrides.type`)."""
    prefix, sep, rest = path.partition("].")
    if path.startswith("links[") and sep:
        return f"{prefix}].{api_field_path(object_type, rest)}"
    if path in TOP_LEVEL_NAMES:
        return TOP_LEVEL_NAMES[path]
    if object_type not in BLOCKS:
        return path
    if path.startswith("overrides."):
        return f"overrides.{to_camel(object_type, path[len('overrides.') :])}"
    head = path.split(".", 1)[0]
    fields = BLOCKS[object_type][1].values()
    if head in fields:
        return f"{block_name(object_type)}.{to_camel(object_type, path)}"
    if head == "value":  # the size limit of a whole object's values
        return block_name(object_type)
    return path


# The type blocks: one serializer each, used for input and (write-only fields left out) output.


UNSET_OR_EMPTY = (
    "null (or left out) is unset, as Airflow's NULL; empty text is a value of its own "
    "(Airflow keeps the two apart: a Dag sees None or '')."
)


class ConnectionBlockSerializer(ClosedSerializer):
    """An Airflow connection. `password` and `extra` are secret. Every field but `type` may be
    null (unset) or empty, and the two stay apart, as in Airflow."""

    type = TextField(help_text="The Airflow conn_type, e.g. `postgres`.")
    description = TextField(required=False, allow_null=True, help_text=UNSET_OR_EMPTY)
    host = TextField(required=False, allow_null=True, help_text=UNSET_OR_EMPTY)
    schema = TextField(required=False, allow_null=True, help_text=UNSET_OR_EMPTY)
    login = TextField(required=False, allow_null=True, help_text=UNSET_OR_EMPTY)
    password = TextField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text=f"Secret; write-only. {UNSET_OR_EMPTY}",
    )
    port = WholeNumberField(required=False, allow_null=True)
    extra = JsonObjectField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="A JSON object. Secret; write-only. null is no extra (Airflow's NULL); {} is "
        "an empty one (Airflow shows `conn.extra == '{}'`).",
    )


class AirflowVariableBlockSerializer(ClosedSerializer):
    """An Airflow variable; its value is secret when `isSecret` is true."""

    value = TextField(required=False, help_text="Left out of responses when `isSecret` is true.")
    description = TextField(required=False, allow_null=True, help_text=UNSET_OR_EMPTY)
    isSecret = TrueFalseField(required=False)


class EnvironmentVariableBlockSerializer(ClosedSerializer):
    """An environment variable; its value is secret when `isSecret` is true."""

    value = TextField(required=False, help_text="Left out of responses when `isSecret` is true.")
    isSecret = TrueFalseField(required=False)


class MetricsExportBlockSerializer(ClosedSerializer):
    """A Prometheus remote-write export. `basicToken`, `password` and `headers` are secret."""

    endpoint = TextField(help_text="The Prometheus remote-write URL (http:// or https://).")
    exporterType = TextField(required=False, help_text="`PROMETHEUS` (the default).")
    authType = serializers.ChoiceField(choices=MetricsAuth.choices, required=False)
    basicToken = TextField(required=False, write_only=True, help_text="Secret; write-only.")
    username = TextField(required=False)
    password = TextField(required=False, write_only=True, help_text="Secret; write-only.")
    sigV4AssumeArn = TextField(required=False)
    sigV4StsRegion = TextField(required=False)
    headers = JsonObjectField(
        child=TextField(), required=False, write_only=True, help_text="Secret; write-only."
    )
    labels = JsonObjectField(child=TextField(), required=False)


BLOCK_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    ObjectType.CONNECTION: ConnectionBlockSerializer,
    ObjectType.AIRFLOW_VARIABLE: AirflowVariableBlockSerializer,
    ObjectType.ENVIRONMENT_VARIABLE: EnvironmentVariableBlockSerializer,
    ObjectType.METRICS_EXPORT: MetricsExportBlockSerializer,
}


def block_values(object_type: str, block: Mapping[str, Any]) -> dict[str, Any]:
    """A validated block (camelCase) as the values a service takes (snake_case)."""
    names = BLOCKS[object_type][1]
    return {names[name]: value for name, value in block.items()}


def parse_overrides(object_type: str, overrides: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Override fields by their API names (`host`, `extra.region`), type-checked as the block's
    fields are, as the snake_case fields the services take."""
    fields = BLOCK_SERIALIZERS[object_type]().fields
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, value in overrides.items():
        snake = to_snake(object_type, name)
        if snake is None:
            unknown = ErrorDetail(f"Unknown field for a {object_type}.", code=UNKNOWN_FIELD)
            errors[f"{path}.{name}"] = [unknown]
        elif snake.startswith("extra."):
            cleaned[snake] = value
        else:
            try:
                cleaned[snake] = fields[name].run_validation(value)
            except serializers.ValidationError as exc:
                errors[f"{path}.{name}"] = list(cast(list[Any], exc.detail))
    if errors:
        raise serializers.ValidationError(errors)
    return cleaned


def parse_field_names(object_type: str, names: Iterable[str], path: str) -> tuple[str, ...]:
    """Field names to unset (API names) as snake_case names."""
    snake = []
    for index, name in enumerate(names):
        field = to_snake(object_type, name)
        if field is None:
            raise serializers.ValidationError({f"{path}[{index}]": ["Unknown field."]})
        snake.append(field)
    return tuple(snake)


# Input bodies.


class LinkInputSerializer(ClosedSerializer):
    """A link the object should have."""

    scope = serializers.ChoiceField(choices=["DEPLOYMENT", "IDE_PROJECT"])
    scopeEntityId = WholeNumberField(help_text="The id of the Deployment or IDE project.")
    overrides = JsonObjectField(
        required=False,
        help_text=(
            "Override fields to set on a Deployment link, by block field name (`host`, `port`, "
            "`password`…), or `extra.KEY` for one key of a connection's extra. Fields not named "
            "keep their override."
        ),
    )
    unsetFields = serializers.ListField(
        child=TextField(), required=False, help_text="Override fields to unset on this link."
    )
    ignored_fields = ("overrideFields", "isAuto")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A PATCH body is partial, which would make these optional too; a link needs both.
        missing = {n: ["This field is required."] for n in ("scope", "scopeEntityId")}
        missing = {n: m for n, m in missing.items() if n not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ScopeRefSerializer(ClosedSerializer):
    """A Deployment, as a scope."""

    scope = serializers.ChoiceField(choices=["DEPLOYMENT"])
    scopeEntityId = WholeNumberField(help_text="The id of the Deployment.")


# Fields of a response body a client may send back unchanged (they are ignored).
READ_ONLY_FIELDS = (
    "id",
    "workspaceId",
    "excludeLinks",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
    "setFields",
)


class _BlocksMixin(serializers.Serializer):
    connection = ConnectionBlockSerializer(required=False)
    airflowVariable = AirflowVariableBlockSerializer(required=False)
    environmentVariable = EnvironmentVariableBlockSerializer(required=False)
    metricsExport = MetricsExportBlockSerializer(required=False)


class EnvironmentObjectCreateSerializer(_BlocksMixin, ClosedSerializer):
    """A new environment object: the block of its type, and optionally its links."""

    objectKey = TextField(allow_blank=False)
    objectType = serializers.ChoiceField(choices=ObjectType.choices)
    scope = serializers.ChoiceField(choices=Scope.choices, default=Scope.WORKSPACE)
    scopeEntityId = WholeNumberField(
        required=False,
        allow_null=True,
        help_text="For DEPLOYMENT scope the Deployment's id; for WORKSPACE scope the "
        "Workspace's id (optional).",
    )
    autoLinkDeployments = TrueFalseField(required=False, default=False)
    links = LinkInputSerializer(many=True, required=False)
    ignored_fields = READ_ONLY_FIELDS

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        block = block_name(attrs["objectType"])
        if block not in attrs:
            raise serializers.ValidationError(
                {block: [f"A {attrs['objectType']} needs its fields in `{block}`."]}
            )
        others = [b for b in TYPE_OF_BLOCK if b != block and b in attrs]
        if others:
            raise serializers.ValidationError(
                {others[0]: [f"A {attrs['objectType']} takes only `{block}`."]}
            )
        return attrs


class EnvironmentObjectUpdateSerializer(_BlocksMixin, ClosedSerializer):
    """Every field optional; a block holds only the fields to change."""

    objectKey = TextField(required=False, allow_blank=False)
    objectType = serializers.ChoiceField(
        choices=ObjectType.choices, required=False, help_text="Cannot change; may be sent back."
    )
    scope = serializers.ChoiceField(
        choices=Scope.choices, required=False, help_text="Cannot change; may be sent back."
    )
    scopeEntityId = WholeNumberField(
        required=False, allow_null=True, help_text="Cannot change; may be sent back."
    )
    autoLinkDeployments = TrueFalseField(required=False)
    links = LinkInputSerializer(
        many=True,
        required=False,
        help_text=(
            "When sent, the links the object should have: missing ones are created, links not "
            "listed are deleted (a Deployment unlinked from an auto-linked object is excluded "
            "from the auto-link), and each listed link's `overrides` are set and its "
            "`unsetFields` unset."
        ),
    )
    unsetFields = serializers.ListField(
        child=TextField(),
        required=False,
        help_text="Override fields to unset on every Deployment link of the object.",
    )
    ignored_fields = READ_ONLY_FIELDS


class ExcludeLinkingSerializer(ScopeRefSerializer):
    """The Deployment to keep out of the object's auto-link."""


class ListQuerySerializer(serializers.Serializer):
    objectType = serializers.ChoiceField(choices=ObjectType.choices, required=False)
    objectKey = serializers.CharField(required=False, help_text="Exactly this key.")
    scope = serializers.ChoiceField(choices=Scope.choices, required=False)
    deploymentId = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Objects of this Deployment's own scope; with `resolveLinked`, everything the "
        "Deployment resolves.",
    )
    search = serializers.CharField(required=False, help_text="Keys containing this text.")
    resolveLinked = serializers.BooleanField(
        required=False,
        default=False,
        help_text="With `deploymentId`: the Deployment's linked Workspace objects with their "
        "overrides applied, plus its own objects.",
    )
    showSecrets = serializers.BooleanField(
        required=False, default=False, help_text=SHOW_SECRETS_HELP
    )
    sorts = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="`FIELD:asc` or `FIELD:desc` (repeat, or separate with commas); FIELD is one "
        "of objectKey, objectType, scope, createdAt, updatedAt.",
    )
    limit = serializers.IntegerField(required=False, default=20, min_value=0, max_value=1000)
    offset = serializers.IntegerField(required=False, default=0, min_value=0)


class ShowSecretsQuerySerializer(serializers.Serializer):
    showSecrets = serializers.BooleanField(
        required=False, default=False, help_text=SHOW_SECRETS_HELP
    )


# Output bodies.


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class LinkSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["DEPLOYMENT", "IDE_PROJECT"])
    scopeEntityId = serializers.IntegerField()
    isAuto = serializers.BooleanField(help_text="Made by the object's autoLinkDeployments.")
    overrides = serializers.DictField(
        help_text="The overridden fields that are not secret, with their values (block field "
        "names; `extra.KEY` for one key of a connection's extra). " + MASK_NOTE
    )
    overrideFields = serializers.ListField(
        child=serializers.CharField(),
        help_text="Every overridden field, secret ones included, so a client can tell that a "
        "secret is overridden without seeing it.",
    )


def _block_field(object_type: str) -> serializers.Serializer:
    return BLOCK_SERIALIZERS[object_type](
        required=False, help_text=f"Present when objectType is {object_type}."
    )


class EnvironmentObjectSerializer(serializers.Serializer):
    """One environment object with its links and their overrides. Exactly one type block is
    present. Secret fields are write-only: they never appear in responses; see `setFields`."""

    # Context: `show_secrets`, `values_by_id` (the values to show instead of the stored ones,
    # e.g. a Deployment's resolved values).

    id = serializers.IntegerField()
    workspaceId = serializers.IntegerField()
    objectKey = serializers.CharField()
    objectType = serializers.ChoiceField(choices=ObjectType.choices)
    scope = serializers.ChoiceField(choices=Scope.choices)
    scopeEntityId = serializers.IntegerField(
        help_text="The Workspace's id for WORKSPACE scope, the Deployment's for DEPLOYMENT."
    )
    autoLinkDeployments = serializers.BooleanField()
    excludeLinks = ScopeRefSerializer(many=True)
    links = LinkSerializer(many=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    createdBy = UserRefSerializer(allow_null=True)
    updatedBy = UserRefSerializer(allow_null=True)
    setFields = serializers.ListField(
        child=serializers.CharField(),
        help_text="The block fields that hold a value (`extra.KEY` for each key of a "
        "connection's extra), secret ones included. " + MASK_NOTE,
    )
    connection = _block_field(ObjectType.CONNECTION)
    airflowVariable = _block_field(ObjectType.AIRFLOW_VARIABLE)
    environmentVariable = _block_field(ObjectType.ENVIRONMENT_VARIABLE)
    metricsExport = _block_field(ObjectType.METRICS_EXPORT)

    def to_representation(self, instance: EnvironmentObject) -> dict[str, Any]:
        """The object as the API shows it: the values of `values_by_id` (a Deployment's
        resolved values) instead of the stored ones where given; secret fields left out
        unless `show_secrets`."""
        obj = instance
        show_secrets = self.context.get("show_secrets", False)
        values = self.context.get("values_by_id", {}).get(obj.pk, obj.values)
        secrets = object_types.secret_fields(obj.object_type, values)
        block, names = BLOCKS[obj.object_type]
        defaults = object_types.SPECS[obj.object_type].defaults
        return {
            "id": obj.pk,
            "workspaceId": obj.workspace_id,
            "objectKey": obj.key,
            "objectType": obj.object_type,
            "scope": obj.scope,
            "scopeEntityId": obj.deployment_id
            if obj.scope == Scope.DEPLOYMENT
            else obj.workspace_id,
            "autoLinkDeployments": obj.auto_link_deployments,
            "excludeLinks": [
                {"scope": "DEPLOYMENT", "scopeEntityId": pk} for pk in _excluded_ids(obj)
            ],
            "links": [_link_body(obj, link, secrets, show_secrets) for link in _links_of(obj)],
            "createdAt": _datetime.to_representation(obj.created_at),
            "updatedAt": _datetime.to_representation(obj.updated_at),
            "createdBy": _user_ref(obj.created_by),
            "updatedBy": _user_ref(obj.updated_by),
            "setFields": [
                to_camel(obj.object_type, name)
                for name in object_types.set_fields(obj.object_type, values)
            ],
            block: {
                camel: values.get(snake, defaults.get(snake))
                for camel, snake in names.items()
                if show_secrets or snake not in secrets
            },
        }


class PageSerializer(serializers.Serializer):
    """The paging fields of a list answer, beside its items."""

    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    totalCount = serializers.IntegerField()


class EnvironmentObjectListSerializer(PageSerializer):
    environmentObjects = EnvironmentObjectSerializer(many=True)


class IdeProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workspaceId = serializers.IntegerField(source="workspace_id")
    name = serializers.CharField()
    description = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")


class IdeProjectListSerializer(serializers.Serializer):
    ideProjects = IdeProjectSerializer(many=True)


class IdeProjectInputSerializer(ClosedSerializer):
    """A new IDE project."""

    name = TextField(allow_blank=False, max_length=100)
    description = TextField(required=False, max_length=2000)


# Parts of a body.

_datetime = serializers.DateTimeField()


def _user_ref(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user.pk, "email": user.email}


def _is_secret(name: str, secrets: tuple[str, ...]) -> bool:
    return name.split(".", 1)[0] in secrets


def _link_body(obj: EnvironmentObject, link: Link, secrets: tuple[str, ...], show: bool) -> dict:
    overrides = link.overrides or {}
    return {
        "scope": "DEPLOYMENT" if link.deployment_id else "IDE_PROJECT",
        "scopeEntityId": link.deployment_id or link.ide_project_id,
        "isAuto": link.is_auto,
        "overrides": {
            to_camel(obj.object_type, name): value
            for name, value in sorted(overrides.items())
            if show or not _is_secret(name, secrets)
        },
        "overrideFields": [to_camel(obj.object_type, name) for name in sorted(overrides)],
    }


def _links_of(obj: EnvironmentObject) -> list[Link]:
    # `api_links` is prefetched by the views' queryset; a Deployment-scoped object's own
    # (`is_home`) link is an implementation detail and never shown.
    links = getattr(obj, "api_links", None)
    if links is None:
        links = list(obj.links.filter(is_home=False).order_by("id"))
    return links


def _excluded_ids(obj: EnvironmentObject) -> list[int]:
    excluded = getattr(obj, "api_excluded", None)
    if excluded is None:
        excluded = list(obj.auto_link_excluded.only("id"))
    return sorted(d.pk for d in excluded)
