"""Forms of the Environment pages. They turn posted fields into the `values` / `overrides`
dicts the services take; the services hold the rules. Secret fields are never filled in from
storage: left empty on edit, they keep the stored secret."""

import json
from typing import Any

from django import forms

from envmanager.connection_uri import parse_connection_uri
from envmanager.object_types import SPECS, MetricsAuth, ObjectType, secret_fields

# The fields each connection type uses, with Airflow's own labels for them. "generic" and any
# type not listed show every field.
CONNECTION_TYPES: dict[str, dict[str, str]] = {
    "generic": {},
    "postgres": {
        "host": "Host",
        "schema": "Database",
        "login": "Login",
        "password": "Password",
        "port": "Port",
        "extra": "Extra",
    },
    "mysql": {
        "host": "Host",
        "schema": "Schema",
        "login": "Login",
        "password": "Password",
        "port": "Port",
        "extra": "Extra",
    },
    "http": {
        "host": "Host",
        "schema": "Schema (http or https)",
        "login": "Login",
        "password": "Password",
        "port": "Port",
        "extra": "Extra (headers etc.)",
    },
    "aws": {
        "login": "AWS Access Key ID",
        "password": "AWS Secret Access Key",
        "extra": "Extra (region_name, role_arn, …)",
    },
    "snowflake": {
        "login": "Login",
        "password": "Password",
        "schema": "Schema",
        "extra": "Extra (account, warehouse, database, role, …)",
    },
    "google_cloud_platform": {"extra": "Extra (keyfile_dict or key_path, project, scope)"},
    "sftp": {
        "host": "Host",
        "login": "Username",
        "password": "Password",
        "port": "Port",
        "extra": "Extra (key_file, private_key, …)",
    },
    "slack": {"password": "Slack API token", "extra": "Extra"},
}
CONNECTION_FIELDS = ("host", "schema", "login", "password", "port", "extra")


class KeyField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=255, strip=True, **kwargs)


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) if value else ""


class EnvironmentObjectForm(forms.Form):
    """One form for the four types; which fields show depends on `object_type`."""

    key = KeyField(label="Key")
    # Connection
    conn_type = forms.CharField(label="Connection type", required=False, max_length=500)
    uri = forms.CharField(
        label="…or paste an Airflow connection URI",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text="Fills the fields below from type://login:password@host:port/schema?extra",
    )
    host = forms.CharField(required=False, max_length=500)
    schema = forms.CharField(required=False, max_length=500)
    login = forms.CharField(required=False, max_length=500)
    password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    port = forms.IntegerField(required=False, min_value=1, max_value=65535)
    extra = forms.CharField(
        label="Extra (JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    # Variables
    value = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})
    )
    is_secret = forms.BooleanField(label="Secret (masked everywhere)", required=False)
    # Metrics exports
    endpoint = forms.URLField(
        label="Remote write endpoint", required=False, max_length=2000, assume_scheme="https"
    )
    auth_type = forms.ChoiceField(
        label="Authentication", choices=MetricsAuth.choices, required=False
    )
    username = forms.CharField(required=False, max_length=500)
    basic_token = forms.CharField(
        label="Auth token", required=False, widget=forms.PasswordInput(render_value=False)
    )
    sig_v4_assume_arn = forms.CharField(label="AWS SigV4 role ARN", required=False)
    sig_v4_sts_region = forms.CharField(label="AWS STS region", required=False)
    headers = forms.CharField(
        label="Extra headers (JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
    )
    labels = forms.CharField(
        label="Labels (JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
    )
    auto_link_deployments = forms.BooleanField(
        label="Link to every Deployment, present and future", required=False
    )

    FIELDS_BY_TYPE = {
        ObjectType.CONNECTION: (
            "conn_type",
            "uri",
            "host",
            "schema",
            "login",
            "password",
            "port",
            "extra",
            "description",
        ),
        ObjectType.AIRFLOW_VARIABLE: ("value", "description", "is_secret"),
        ObjectType.ENVIRONMENT_VARIABLE: ("value", "is_secret"),
        ObjectType.METRICS_EXPORT: (
            "endpoint",
            "auth_type",
            "username",
            "password",
            "basic_token",
            "sig_v4_assume_arn",
            "sig_v4_sts_region",
            "headers",
            "labels",
        ),
    }
    JSON_FIELDS = ("extra", "headers", "labels")

    def __init__(
        self,
        *args,
        object_type: str,
        stored: dict | None = None,
        workspace_scope: bool = True,
        **kwargs,
    ):
        self.object_type = object_type
        self.stored = stored  # the stored values when editing
        initial = kwargs.pop("initial", {}) or {}
        if stored is not None:
            hidden = set(secret_fields(object_type, stored))
            for name, value in stored.items():
                if name in hidden:
                    continue
                initial[name] = _json_text(value) if name in self.JSON_FIELDS else value
        super().__init__(*args, initial=initial, **kwargs)
        keep = {"key", *self.FIELDS_BY_TYPE[object_type]}
        if workspace_scope:
            keep.add("auto_link_deployments")
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if stored is not None:
            for name in secret_fields(object_type, stored):
                if name in self.fields and stored.get(name):
                    self.fields[name].widget.attrs["placeholder"] = "•••••••• (unchanged)"
                    self.fields[name].help_text = "Stored and hidden. Type a new one to change it."

    def clean(self):
        cleaned = super().clean()
        for name in self.JSON_FIELDS:
            if name in self.fields and cleaned.get(name):
                try:
                    parsed = json.loads(cleaned[name])
                except ValueError as exc:
                    self.add_error(
                        name, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
                    )
                    continue
                if not isinstance(parsed, dict):
                    self.add_error(name, 'Must be a JSON object, like {"key": "value"}.')
                    continue
                cleaned[name] = parsed
        if cleaned.get("uri"):
            try:
                from_uri = parse_connection_uri(cleaned["uri"])
            except ValueError as exc:
                self.add_error("uri", str(exc))
            else:
                cleaned.update({k: v for k, v in from_uri.items() if k != "description"})
        return cleaned

    def values(self) -> dict[str, Any]:
        """The values to save: on edit, only what changed; an empty secret keeps the stored."""
        data = self.cleaned_data
        spec_fields = SPECS[self.object_type].fields
        values: dict[str, Any] = {}
        hidden = set(secret_fields(self.object_type, self.stored or {}))
        for name in spec_fields:
            if name not in self.fields:
                continue
            value = data.get(name)
            if name in self.JSON_FIELDS and not value:
                value = {}
            left_empty = value in ("", None, {}) and not data.get("uri")
            if self.stored is not None and name in hidden and left_empty:
                continue  # keep the stored secret
            values[name] = "" if value is None and name != "port" else value
        return values


class OverrideForm(forms.Form):
    """The fields that differ on one Deployment link. Empty fields are not overridden; ticking
    "unset" falls back to the Workspace value."""

    def __init__(self, *args, object_type: str, current: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.object_type = object_type
        self.current = current or {}
        secret = set(SPECS[object_type].secret_fields) | set(SPECS[object_type].secret_when_flagged)
        for name in SPECS[object_type].overridable:
            widget = (
                forms.Textarea(attrs={"rows": 2})
                if name in ("extra", "headers", "labels", "value")
                else None
            )
            if name in secret:
                widget = forms.PasswordInput(render_value=False)
            field = forms.CharField(
                label=name.replace("_", " ").capitalize(),
                required=False,
                strip=name != "value",
                widget=widget,
            )
            if name in self.current:
                field.help_text = (
                    "Overridden."
                    if name in secret
                    else (f"Overridden: {_json_text(self.current[name]) or self.current[name]}")
                )
            self.fields[name] = field
            self.fields[f"unset_{name}"] = forms.BooleanField(
                label=f"Use the Workspace value for {name.replace('_', ' ')}", required=False
            )

    def overrides(self) -> tuple[dict[str, Any], list[str]]:
        data = self.cleaned_data
        overrides: dict[str, Any] = {}
        unset = []
        for name in SPECS[self.object_type].overridable:
            if data.get(f"unset_{name}"):
                unset.append(name)
                continue
            raw = data.get(name)
            if raw in ("", None):
                continue
            if name in ("extra", "headers", "labels"):
                try:
                    raw = json.loads(raw)
                except ValueError:
                    self.add_error(name, "Not valid JSON.")
                    continue
            overrides[name] = raw
        return overrides, unset
