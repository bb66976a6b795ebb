"""The four environment object types: their fields, keys, secrets and overridable fields.

Every rule about what an object of one type may hold lives here; services call
`clean_values` and `clean_overrides` before anything is saved.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ValidationError
from django.db import models

from envmanager.kernel.json_limits import TOO_DEEP, nests_too_deep, parse_json

MAX_VALUE_BYTES = 1024 * 1024  # one object's values, serialised


class ObjectType(models.TextChoices):
    CONNECTION = "CONNECTION", "Connection"
    AIRFLOW_VARIABLE = "AIRFLOW_VARIABLE", "Airflow variable"
    ENVIRONMENT_VARIABLE = "ENVIRONMENT_VARIABLE", "Environment variable"
    METRICS_EXPORT = "METRICS_EXPORT", "Metrics export"


class Scope(models.TextChoices):
    WORKSPACE = "WORKSPACE", "Workspace"
    DEPLOYMENT = "DEPLOYMENT", "Deployment"


# Airflow's own rules: conn_id as `airflow.models.connection.RE_SANITIZE_CONN_ID`, variable keys
# as `airflow.utils.helpers.validate_key`, both at most 250 characters.
_KEY_RULES: dict[str, tuple[re.Pattern, int, str]] = {
    ObjectType.CONNECTION: (
        re.compile(r"^[\w#!()\-.:/\\]+$"),
        250,
        "letters, digits and the characters _ # ! ( ) - . : / \\",
    ),
    ObjectType.AIRFLOW_VARIABLE: (
        re.compile(r"^[\w.\-]+$"),
        250,
        "letters, digits, underscores, dots and dashes",
    ),
    ObjectType.ENVIRONMENT_VARIABLE: (
        re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$"),
        255,
        "letters, digits and underscores, not starting with a digit",
    ),
    ObjectType.METRICS_EXPORT: (
        re.compile(r"^[\w.\-]+$"),
        250,
        "letters, digits, underscores, dots and dashes",
    ),
}


def type_name(object_type: str) -> str:
    """The type's name inside a sentence: "connection", "Airflow variable"."""
    label = ObjectType(object_type).label
    return label if label.startswith("Airflow") else label.lower()


def type_with_article(object_type: str, *, start: bool = False) -> str:
    """The type's name with its article, for messages: "an Airflow variable", "a connection"."""
    label = type_name(object_type)
    article = "an" if label[0] in "aeiouAEIOU" else "a"
    return f"{article.capitalize() if start else article} {label}"


# Environment variables a Deployment may not set, and why: Airflow settings the platform owns
# (with the `_CMD` and `_SECRET` forms Airflow reads them from too), and variables that take
# over the process that loads the environment (which programs, libraries and Python code it
# runs). Matched whatever the case. The README's table lists them.
_PLATFORM_AIRFLOW_SETTINGS = {
    "AIRFLOW__CORE__FERNET_KEY": "the Deployment's Fernet key is set in its settings",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "the metadata database is set in the Deployment's "
    "settings",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN": "the metadata database is set in the Deployment's settings",
    "AIRFLOW__SECRETS__BACKEND": "the secrets backend is how Airflow reads its connections "
    "and variables from envmanager",
    "AIRFLOW__SECRETS__BACKEND_KWARGS": "the secrets backend is how Airflow reads its "
    "connections and variables from envmanager",
    "AIRFLOW__CORE__EXECUTOR": "the executor is the platform's to choose",
    "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY": "a secret Airflow's components share is the "
    "platform's to set",
    "AIRFLOW__API__SECRET_KEY": "a secret Airflow's components share is the platform's to set",
    "AIRFLOW__API_AUTH__JWT_SECRET": "a secret Airflow's components share is the platform's to set",
    "AIRFLOW__WEBSERVER__SECRET_KEY": "a secret Airflow's components share is the platform's "
    "to set",
}
_PROCESS_TAKEOVER = {
    "AIRFLOW_HOME": "it decides where Airflow reads its configuration",
    "AIRFLOW_CONFIG": "it decides where Airflow reads its configuration",
    "PATH": "it decides which programs the process runs",
    "LD_PRELOAD": "it loads a library into every program the process runs",
    "LD_LIBRARY_PATH": "it decides which libraries the process loads",
    "PYTHONPATH": "it decides which Python code the process imports",
    "PYTHONHOME": "it decides which Python the process runs",
    "PYTHONSTARTUP": "it runs a file of Python code at start-up",
}
RESERVED_ENVIRONMENT_VARIABLES: dict[str, str] = {
    **{
        f"{name}{form}": reason
        for name, reason in _PLATFORM_AIRFLOW_SETTINGS.items()
        for form in ("", "_CMD", "_SECRET")
    },
    **_PROCESS_TAKEOVER,
}
RESERVED_ENVIRONMENT_VARIABLE_PREFIXES = {
    "ENVMANAGER_": "envmanager's own settings (its server and its launcher read them)",
}


def reserved_environment_variable(key: str) -> str | None:
    """Why an environment variable may not have this key, or None if it may."""
    name = key.upper()
    if name in RESERVED_ENVIRONMENT_VARIABLES:
        return RESERVED_ENVIRONMENT_VARIABLES[name]
    for prefix, reason in RESERVED_ENVIRONMENT_VARIABLE_PREFIXES.items():
        if name.startswith(prefix):
            return f"{prefix}* are {reason}"
    return None


def validate_key(object_type: str, key: str) -> None:
    pattern, max_length, allowed = _KEY_RULES[object_type]
    thing = type_with_article(object_type, start=True)
    if not key:
        raise ValidationError({"key": f"{thing} needs a key."}, code="required")
    if len(key) > max_length:
        raise ValidationError(
            {"key": f"{thing} key is at most {max_length} characters."}, code="max_length"
        )
    if not pattern.fullmatch(key):
        raise ValidationError({"key": f"{thing} key may contain only {allowed}."}, code="invalid")
    reason = object_type == ObjectType.ENVIRONMENT_VARIABLE and reserved_environment_variable(key)
    if reason:
        raise ValidationError(
            {"key": f"{key} cannot be set as an environment variable: {reason}."}, code="reserved"
        )


@dataclass(frozen=True)
class TypeSpec:
    # How pages name the type: the Environment tab's slug (`?type=connections`) and heading.
    slug: str
    label: str
    fields: tuple[str, ...]
    secret_fields: tuple[str, ...]
    overridable: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    # Fields secret only when the object's `is_secret` is set.
    secret_when_flagged: tuple[str, ...] = ()
    # Fields where unset (None) and empty ('', {}) are two values, as Airflow keeps them: a
    # Dag sees `conn.schema == ''` or `conn.schema is None`. Unset is the default, as Airflow
    # stores a field left out of its REST API, CLI or import.
    nullable: tuple[str, ...] = ()
    # Types Airflow itself keeps (connections, variables): their name in Airflow-file and
    # migration URLs and commands, the file formats they export to, and whether they migrate
    # out of a metadata database.
    airflow_slug: str = ""
    export_formats: tuple[str, ...] = ()
    migrates: bool = False


class MetricsAuth(models.TextChoices):
    NONE = "", "None"
    BASIC = "BASIC", "Basic"
    AUTH_TOKEN = "AUTH_TOKEN", "Auth token"
    SIGV4 = "SIGV4", "AWS SigV4"


SPECS: dict[str, TypeSpec] = {
    ObjectType.CONNECTION: TypeSpec(
        slug="connections",
        label="Connections",
        airflow_slug="connections",
        export_formats=("json", "yaml", "env"),
        migrates=True,
        fields=("conn_type", "description", "host", "schema", "login", "password", "port", "extra"),
        secret_fields=("password", "extra"),
        overridable=("conn_type", "host", "login", "password", "port", "schema", "extra"),
        defaults={
            "conn_type": "",
            "description": None,
            "host": None,
            "schema": None,
            "login": None,
            "password": None,
            "port": None,
            "extra": None,
        },
        nullable=("description", "host", "schema", "login", "password", "port", "extra"),
    ),
    ObjectType.AIRFLOW_VARIABLE: TypeSpec(
        slug="airflow-variables",
        label="Airflow Variables",
        airflow_slug="variables",
        export_formats=("json",),
        migrates=True,
        fields=("value", "description", "is_secret"),
        secret_fields=(),
        secret_when_flagged=("value",),
        overridable=("value",),
        defaults={"value": "", "description": None, "is_secret": False},
        nullable=("description",),
    ),
    ObjectType.ENVIRONMENT_VARIABLE: TypeSpec(
        slug="environment-variables",
        label="Environment Variables",
        fields=("value", "is_secret"),
        secret_fields=(),
        secret_when_flagged=("value",),
        overridable=("value",),
        defaults={"value": "", "is_secret": False},
    ),
    ObjectType.METRICS_EXPORT: TypeSpec(
        slug="metrics-exports",
        label="Metrics Exports",
        fields=(
            "endpoint",
            "exporter_type",
            "auth_type",
            "basic_token",
            "username",
            "password",
            "sig_v4_assume_arn",
            "sig_v4_sts_region",
            "headers",
            "labels",
        ),
        secret_fields=("basic_token", "password", "headers"),
        overridable=(
            "endpoint",
            "exporter_type",
            "auth_type",
            "basic_token",
            "username",
            "password",
            "sig_v4_assume_arn",
            "sig_v4_sts_region",
            "headers",
            "labels",
        ),
        defaults={
            "endpoint": "",
            "exporter_type": "PROMETHEUS",
            "auth_type": "",
            "basic_token": "",
            "username": "",
            "password": "",
            "sig_v4_assume_arn": "",
            "sig_v4_sts_region": "",
            "headers": {},
            "labels": {},
        },
    ),
}


# Read from SPECS, one table each, for whoever needs it by another key.
PAGE_SLUGS: dict[str, str] = {spec.slug: t for t, spec in SPECS.items()}
TYPE_LABELS: dict[str, str] = {t: spec.label for t, spec in SPECS.items()}
AIRFLOW_SLUGS: dict[str, str] = {
    spec.airflow_slug: t for t, spec in SPECS.items() if spec.airflow_slug
}
EXPORT_FORMATS: dict[str, list[str]] = {
    t: list(spec.export_formats) for t, spec in SPECS.items() if spec.export_formats
}
MIGRATABLE_TYPES: tuple[str, ...] = tuple(t for t, spec in SPECS.items() if spec.migrates)


def secret_fields(object_type: str, values: dict[str, Any]) -> tuple[str, ...]:
    """The fields of an object with these values that are secret: the type's secret fields,
    and a variable's value when `is_secret` is set. The one rule; pages, forms, the API and
    exports ask it."""
    spec = SPECS[object_type]
    if values.get("is_secret"):
        return spec.secret_fields + spec.secret_when_flagged
    return spec.secret_fields


def secret_flag_lowered(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether going from `old` to `new` values would make a secret variable's value plain.
    A secret stays secret (as in the hosted product): its value, and those of its overrides,
    were never shown to anyone, and turning the flag off would show them to every Author.
    To make a value plain, delete the object and create it again with the value typed anew.
    Updates refuse it; a restore of a version from before the flag was set keeps the flag."""
    return bool(old.get("is_secret")) and not new.get("is_secret")


# Airflow 3.3's own list (`DEFAULT_SENSITIVE_FIELDS` in `airflow._shared.secrets_masker`):
# Airflow hides the value of a variable whose key contains one of these names.
AIRFLOW_SENSITIVE_NAMES = frozenset(
    {
        "access_key",
        "access_token",
        "api_key",
        "apikey",
        "auth_header",
        "authorization",
        "bearer",
        "connection_string",
        "dsn",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "proxy",
        "proxy_password",
        "proxies",
        "secret",
        "service_account",
        "service_key",
        "token",
        "keyfile_dict",
        "webhook_url",
    }
)


def variable_key_looks_secret(key: str) -> bool:
    """Whether Airflow would hide this variable's value, as its `should_hide_value_for_key`
    decides: the key, lowercased and with each run of other characters than letters, digits
    and _ made one _, contains a sensitive name. Where Airflow hides a value, a variable we
    store without being told otherwise (migrated, imported from a file) is secret."""
    normalized = re.sub(r"\W+", "_", key.strip().lower())
    return any(name in normalized for name in AIRFLOW_SENSITIVE_NAMES)


def _string(
    errors: dict, name: str, value: Any, max_length: int | None = None, *, nullable: bool = False
) -> str | None:
    if value is None:
        return None if nullable else ""
    if not isinstance(value, str):
        errors[name] = "Must be text."
        return ""
    if max_length and len(value) > max_length:
        errors[name] = f"At most {max_length} characters."
    return value


def _json_object(
    errors: dict[str, str], name: str, value: Any, *, nullable: bool = False
) -> dict[str, Any] | None:
    if value is None or value == "":
        # Empty text is no JSON object: unset where the field may be, else an empty one.
        return None if nullable else {}
    if isinstance(value, str):
        try:
            value = parse_json(value)
        except json.JSONDecodeError as exc:  # JSONTooDeep is one too
            errors[name] = f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            return {}
    if not isinstance(value, dict):
        errors[name] = 'Must be a JSON object, like {"key": "value"}.'
        return {}
    if nests_too_deep(value):
        errors[name] = f"{TOO_DEEP}."
        return {}
    return value


def _string_map(errors: dict, name: str, value: Any) -> dict[str, str]:
    mapping = _json_object(errors, name, value) or {}
    if name not in errors and not all(isinstance(v, str) for v in mapping.values()):
        errors[name] = "Every value must be text."
    return mapping


_EXPANDS_IN_DOUBLE_QUOTES = ("$", "`")


def dotenv_value(value: str) -> str:
    r"""An environment variable's value as the served dotenv writes it, read back the very same
    by a POSIX shell (`set -a; . file`: nothing expanded, no command run) and by python-dotenv
    (with `interpolate=False`; its default interpolation expands a `${…}` itself).

    Single quotes where both read them alike: no `'` (a shell cannot escape one inside), no
    `\` and no trailing `\` (python-dotenv reads `\` as `\` and `'` as `'`). Else double
    quotes, escaping only `\` and `"`, which both read alike; a shell would expand a `$` or a
    backtick in them. A value neither can hold is a ValueError saying why (never the value)."""
    if "\0" in value:
        raise ValueError("An environment variable cannot hold a NUL character")
    if "\r" in value:
        raise ValueError(
            "An environment variable's value cannot hold a carriage return: a dotenv file "
            "read as text turns it into a line break"
        )
    if "'" not in value and "\\\\" not in value and not value.endswith("\\"):
        return f"'{value}'"
    if not any(char in value for char in _EXPANDS_IN_DOUBLE_QUOTES):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    raise ValueError(
        "A value with $ or ` cannot also hold ', two backslashes in a row or a trailing "
        "backslash: no dotenv quoting keeps it unchanged for both a shell and python-dotenv"
    )


def _port(errors: dict, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        errors["port"] = "A port is a whole number."
        return None
    if isinstance(value, float | bool) or not 0 < port < 65536:
        errors["port"] = "A port is a whole number from 1 to 65535."
        return None
    return port


def _clean_field(object_type: str, name: str, value: Any, errors: dict) -> Any:
    if object_type == ObjectType.CONNECTION:
        if name == "port":
            return _port(errors, value)
        if name == "extra":
            return _json_object(errors, name, value, nullable=True)
        limits = {"conn_type": 500, "host": 500, "schema": 500, "login": 500}
        return _string(errors, name, value, limits.get(name), nullable=name != "conn_type")
    if object_type == ObjectType.METRICS_EXPORT:
        if name in ("headers", "labels"):
            return _string_map(errors, name, value)
        text = _string(errors, name, value, 2000)
        if name == "endpoint" and text and urlparse(text).scheme not in ("http", "https"):
            errors[name] = "The endpoint must be an http:// or https:// URL."
        if name == "exporter_type" and text not in ("PROMETHEUS",):
            errors[name] = "The exporter type must be PROMETHEUS (Prometheus remote write)."
        if name == "auth_type" and text not in MetricsAuth.values:
            errors[name] = "The auth type must be BASIC, AUTH_TOKEN or SIGV4."
        return text
    if object_type == ObjectType.ENVIRONMENT_VARIABLE and name == "value":
        text = _string(errors, name, value)
        try:
            dotenv_value(text or "")
        except ValueError as exc:
            errors[name] = f"{exc}."
        return text
    if name == "is_secret":
        if not isinstance(value, bool):
            errors[name] = "Must be true or false."
        return bool(value)
    return _string(errors, name, value, nullable=name in SPECS[object_type].nullable)


def clean_values(object_type: str, values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise an object's values; unknown fields are an error."""
    spec = SPECS[object_type]
    errors: dict[str, str] = {}
    unknown = sorted(set(values) - set(spec.fields))
    if unknown:
        errors[unknown[0]] = f"Unknown field for {type_with_article(object_type)}."
    cleaned = dict(spec.defaults)
    for name in spec.fields:
        if name in values:
            cleaned[name] = _clean_field(object_type, name, values[name], errors)
    if (
        object_type == ObjectType.CONNECTION
        and not cleaned["conn_type"]
        and "conn_type" not in errors
    ):
        errors["conn_type"] = "A connection needs a type (Airflow conn_type)."
    if object_type == ObjectType.METRICS_EXPORT and "endpoint" not in errors:
        if not cleaned["endpoint"]:
            errors["endpoint"] = "A metrics export needs an endpoint URL."
        if cleaned["auth_type"] == MetricsAuth.BASIC and not cleaned["username"]:
            errors.setdefault("username", "Basic auth needs a username.")
        if cleaned["auth_type"] == MetricsAuth.SIGV4 and not cleaned["sig_v4_assume_arn"]:
            errors.setdefault("sig_v4_assume_arn", "AWS SigV4 auth needs a role ARN to assume.")
    if not errors and len(json.dumps(cleaned)) > MAX_VALUE_BYTES:
        # Under "value", the API's name for the whole block of values (not one field).
        errors["value"] = "This object's values may be at most 1 MiB all together."
    if errors:
        raise ValidationError(errors)
    return cleaned


def clean_overrides(object_type: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Validate override fields: only overridable ones; `extra.KEY` overrides one key of extra."""
    spec = SPECS[object_type]
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name, value in overrides.items():
        if object_type == ObjectType.CONNECTION and name.startswith("extra.") and len(name) > 6:
            if nests_too_deep(value, levels_above=1):  # one key of extra, one level down
                errors[name] = f"{TOO_DEEP}."
            cleaned[name] = value
            continue
        if name not in spec.overridable:
            errors[name] = (
                f"{type_with_article(object_type, start=True)} cannot override {name!r}; "
                f"it may override {', '.join(spec.overridable)}."
            )
            continue
        cleaned[name] = _clean_field(object_type, name, value, errors)
    if errors:
        raise ValidationError(errors)
    return cleaned


def apply_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The values a link resolves to: whole fields first, then single keys of `extra`."""
    resolved = {**values, **{k: v for k, v in overrides.items() if "." not in k}}
    per_key = {k[6:]: v for k, v in overrides.items() if k.startswith("extra.")}
    if per_key:
        resolved["extra"] = {**(resolved.get("extra") or {}), **per_key}
    return resolved


def set_fields(object_type: str, values: dict[str, Any]) -> list[str]:
    """Names of the fields that hold a value (dotted paths for keys of extra). A nullable field
    set to empty text (or extra to `{}`) is set: Airflow shows `''`, not None."""
    spec = SPECS[object_type]
    names: list[str] = []
    for name in spec.fields:
        value = values.get(name)
        if name == "extra" and isinstance(value, dict):
            names.extend(f"extra.{key}" for key in value)
            names.append("extra")
        elif name in spec.nullable:
            if value is not None:
                names.append(name)
        elif value not in (None, "", {}, False):
            names.append(name)
    return names
