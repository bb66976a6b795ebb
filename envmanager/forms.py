"""Forms of the Environment pages. They turn posted fields into the `values` / `overrides`
dicts the services take; the services hold the rules. Secret fields are never filled in from
storage: left empty on edit, they keep the stored secret."""

import json
from typing import Any

from django import forms

from deployments.models import Deployment
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


JSON_FIELDS = ("extra", "headers", "labels")


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) if value else ""


def _display(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


OVERRIDE_LABELS = {
    "conn_type": "Connection type",
    "extra": "Extra, whole (JSON object)",
    "headers": "Headers (JSON object)",
    "labels": "Labels (JSON object)",
    "basic_token": "Auth token",
    "sig_v4_assume_arn": "AWS SigV4 role ARN",
    "sig_v4_sts_region": "AWS STS region",
}


def _parse_json_object(form: forms.Form, name: str, text: str) -> dict | None:
    """The JSON object typed into a field, or None with the reason added next to the field."""
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        form.add_error(name, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
        return None
    if not isinstance(parsed, dict):
        form.add_error(name, 'Must be a JSON object, like {"key": "value"}.')
        return None
    return parsed


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
                initial[name] = _json_text(value) if name in JSON_FIELDS else value
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
        for name in JSON_FIELDS:
            if name in self.fields and cleaned.get(name):
                parsed = _parse_json_object(self, name, cleaned[name])
                if parsed is not None:
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
            if name in JSON_FIELDS and not value:
                value = {}
            left_empty = value in ("", None, {}) and not data.get("uri")
            if self.stored is not None and name in hidden and left_empty:
                continue  # keep the stored secret
            values[name] = "" if value is None and name != "port" else value
        return values


class OverrideForm(forms.Form):
    """The fields that differ on one Deployment link. Empty fields keep their current override
    (or the Workspace value); ticking "use the Workspace value" clears an override. A connection
    may also override single keys of its extra (`extra.KEY` overrides)."""

    def __init__(self, *args, object_type: str, current: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.object_type = object_type
        self.current = current or {}
        secret = set(SPECS[object_type].secret_fields) | set(SPECS[object_type].secret_when_flagged)
        for name in SPECS[object_type].overridable:
            # An override form is never filled in, so a textarea sends no stored secret either.
            widget = None
            if name in JSON_FIELDS or name == "value":
                widget = forms.Textarea(attrs={"rows": 2, "spellcheck": "false"})
            elif name in secret:
                widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
            field = forms.CharField(
                label=OVERRIDE_LABELS.get(name, name.replace("_", " ").capitalize()),
                required=False,
                strip=name != "value",
                widget=widget,
            )
            if name in self.current:
                # A secret override is never sent back to the browser, only that it is set.
                field.help_text = (
                    "Overridden (hidden)."
                    if name in secret
                    else f"Overridden here: {_display(self.current[name])}"
                )
            self.fields[name] = field
            if name in self.current:
                self.fields[f"unset_{name}"] = forms.BooleanField(
                    label=f"Use the Workspace value for {name.replace('_', ' ')}", required=False
                )
        if object_type == ObjectType.CONNECTION:
            self.fields["extra_keys"] = forms.CharField(
                label="Override single keys of extra (JSON object)",
                required=False,
                widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
                help_text='Only these keys differ here, e.g. {"sslmode": "disable"}.',
            )
            for name in sorted(k for k in self.current if k.startswith("extra.")):
                self.fields[f"unset_{name}"] = forms.BooleanField(
                    label=f"Use the Workspace value for extra key {name[6:]}", required=False
                )

    def rows(self) -> list[tuple[forms.BoundField, forms.BoundField | None]]:
        """Each field with its "use the Workspace value" box, to show them side by side."""
        return [
            (self[name], self[f"unset_{name}"] if f"unset_{name}" in self.fields else None)
            for name in self.fields
            if not name.startswith("unset_")
        ] + [(self[name], None) for name in self.fields if name.startswith("unset_extra.")]

    def clean(self):
        cleaned = super().clean()
        for name in (*JSON_FIELDS, "extra_keys"):
            if name in self.fields and cleaned.get(name):
                parsed = _parse_json_object(self, name, cleaned[name])
                if parsed is not None:
                    cleaned[name] = parsed
        return cleaned

    def overrides(self) -> tuple[dict[str, Any], list[str]]:
        """(fields to set, fields to unset) for `link_set_overrides`."""
        data = self.cleaned_data
        overrides: dict[str, Any] = {}
        unset = [
            name[len("unset_") :]
            for name in self.fields
            if name.startswith("unset_") and data.get(name)
        ]
        for name in SPECS[self.object_type].overridable:
            if name in unset or data.get(name) in ("", None):
                continue
            overrides[name] = data[name]
        for key, value in (data.get("extra_keys") or {}).items():
            if f"extra.{key}" not in unset:
                overrides[f"extra.{key}"] = value
        return overrides, unset


class DeploymentForm(forms.Form):
    """A Deployment's settings. The metadata DB URL and the Fernet keys are write-only: never
    filled in, and left empty on edit they keep the stored value."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=1000)
    kind = forms.ChoiceField(choices=Deployment.Kind.choices, initial=Deployment.Kind.STANDARD)
    metadata_db_url = forms.CharField(
        label="Airflow metadata DB URL",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="postgresql://user:password@host:5432/airflow or sqlite:////path/airflow.db",
    )
    fernet_key = forms.CharField(
        label="Fernet key(s), newest first",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Airflow's [core] fernet_key; comma-separated when rotating.",
    )

    def __init__(self, *args, deployment: Deployment | None = None, **kwargs):
        if deployment is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": deployment.name,
                    "description": deployment.description,
                    "kind": deployment.kind,
                },
            )
        super().__init__(*args, **kwargs)
        if deployment is not None:
            for name in ("metadata_db_url", "fernet_key"):
                if getattr(deployment, name):
                    self.fields[name].widget.attrs["placeholder"] = "•••••••• (unchanged)"
                    self.fields[name].help_text = "Stored and hidden. Type a new one to change it."

    def changes(self) -> dict[str, Any]:
        """The service's keyword arguments; an empty secret is None (keep the stored one)."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "kind": data["kind"],
            "metadata_db_url": data["metadata_db_url"] or None,
            "fernet_key": data["fernet_key"] or None,
        }


class IdeProjectForm(forms.Form):
    name = forms.CharField(label="IDE project name", max_length=100)
