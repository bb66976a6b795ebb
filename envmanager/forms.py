"""Forms of the Environment pages. They turn posted fields into the `values` / `overrides`
dicts the services take; the services hold the rules. Secret fields are never filled in from
storage (left empty on edit, they keep the stored secret), and what was typed into one is never
sent back to the browser either, not even after a validation error."""

import json
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import pretty_name

from deployments.models import Deployment
from envmanager.connection_types import (
    STANDARD_FIELDS,
    ConnectionType,
    ExtraField,
    connection_type,
    connection_types,
)
from envmanager.connection_uri import parse_connection_uri
from envmanager.kernel.json_limits import parse_json
from envmanager.object_types import (
    SPECS,
    MetricsAuth,
    ObjectType,
    clean_overrides,
    clean_values,
    secret_fields,
    validate_key,
)


# The fields each connection type uses, with Airflow's own labels for them (from the catalog
# of Airflow's connection types). A type not listed (a custom hook) shows every field.
def _connection_choices() -> dict[str, dict[str, str]]:
    choices: dict[str, dict[str, str]] = {}
    for name, spec in connection_types().items():
        shown = [f for f in (*STANDARD_FIELDS, "extra") if not spec.hidden(f)]
        choices[name] = {f: spec.label(f) for f in shown}
    return choices


CONNECTION_TYPES = _connection_choices()
CONNECTION_FIELDS = ("host", "schema", "login", "password", "port", "extra")


class KeyField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=255, strip=True, **kwargs)


class MultilineField(forms.CharField):
    """Text typed into a textarea. Browsers send its line breaks as CRLF; we keep what the user
    typed, one LF per line. (The API takes values exactly as sent.)"""

    def to_python(self, value: Any) -> str | None:
        value = super().to_python(value)
        return value.replace("\r\n", "\n") if isinstance(value, str) else value


class _NeverRendered:
    """A widget for a secret: what was typed is never sent back to the browser, so after a
    validation error the field comes back empty (as `PasswordInput(render_value=False)`)."""

    def get_context(self, name: str, value: Any, attrs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context(name, None, attrs)  # type: ignore[misc]
        return context


class SecretInput(_NeverRendered, forms.TextInput):
    """One line, readable while typed (a connection URI), never rendered back."""


class SecretTextarea(_NeverRendered, forms.Textarea):
    """Several lines (a connection's extra, a secret value), never rendered back."""


def _secret_password_input() -> forms.PasswordInput:
    # "new-password": a browser must not fill in the user's own envmanager login here.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def _login_input() -> forms.TextInput:
    return forms.TextInput(attrs={"autocomplete": "off"})


def _secret_textarea(rows: int) -> SecretTextarea:
    return SecretTextarea(attrs={"rows": rows, "spellcheck": "false", "autocomplete": "off"})


# A connection type's extra fields post as `extra__NAME` and are stored as `extra["NAME"]`.
EXTRA_FIELD_PREFIX = "extra__"
UNKNOWN_TYPE_NOTE = (
    "Not a type Airflow's providers list (a custom hook?): it is saved as typed, with every "
    "field shown."
)
STORED_KEY_PLACEHOLDER = "•••••••• (set; kept unless typed)"
BOOLEAN_CHOICES = [("", "— not set —"), ("true", "true"), ("false", "false")]


def extra_form_field(spec: ExtraField, *, placeholder: str | None = None) -> forms.Field:
    """The form field for one of a connection type's extra fields, of its kind; a sensitive one
    is a password box whose value is never sent back (app.js draws the same, see its
    `extraInput`)."""
    attrs: dict[str, Any] = {"data-extra-name": spec.name, "autocomplete": "off"}
    shown = spec.placeholder if placeholder is None else placeholder
    if shown:
        attrs["placeholder"] = shown
    common: dict[str, Any] = {"label": spec.label, "required": False, "help_text": spec.description}
    field: forms.Field
    if spec.sensitive:
        attrs["autocomplete"] = "new-password"
        widget = forms.PasswordInput(render_value=False, attrs=attrs)
        field = forms.CharField(widget=widget, **common)
    elif spec.choices:
        field = forms.ChoiceField(
            choices=[("", "— not set —"), *[(c, c) for c in spec.choices]],
            widget=forms.Select(attrs=attrs),
            **common,
        )
    elif spec.kind == "boolean":
        field = forms.TypedChoiceField(
            choices=BOOLEAN_CHOICES,
            coerce=lambda v: v == "true",
            empty_value=None,
            widget=forms.Select(attrs=attrs),
            **common,
        )
    elif spec.kind == "integer":
        # A text box: a number box would post nothing for a typo, and the typo would be lost.
        attrs["inputmode"] = "numeric"
        field = forms.IntegerField(widget=forms.TextInput(attrs=attrs), **common)
    elif spec.kind == "number":
        attrs["inputmode"] = "decimal"
        field = forms.FloatField(widget=forms.TextInput(attrs=attrs), **common)
    else:
        field = forms.CharField(widget=forms.TextInput(attrs=attrs), **common)
    setattr(field, "extra_spec", spec)  # noqa: B010 (read back by _is_sensitive)
    return field


def _typed_extra_values(form: forms.BaseForm) -> dict[str, Any]:
    """The extra fields typed into a form, by their key of extra (left empty: not sent)."""
    typed: dict[str, Any] = {}
    for name in form.fields:
        if name.startswith(EXTRA_FIELD_PREFIX) and name in form.cleaned_data:
            value = form.cleaned_data[name]
            if value not in (None, ""):
                typed[name.removeprefix(EXTRA_FIELD_PREFIX)] = value
    return typed


def _json_object_attrs(widget: forms.Widget) -> None:
    # app.js checks such a box holds a JSON object before the form is sent.
    widget.attrs["data-json-object"] = "true"


def connection_type_options() -> list[tuple[str, str]]:
    """(conn_type, Airflow's name for it) for the type picker."""
    return [(name, spec.hook_name) for name, spec in connection_types().items()]


@cache
def connection_catalog_json() -> dict[str, Any]:
    """Every type's fields for app.js (labels, hidden fields, placeholders, extra fields)."""
    return {name: spec.as_json() for name, spec in connection_types().items()}


JSON_FIELDS = ("extra", "headers", "labels")
# The fields of each metrics auth type, with their labels (app.js shows only the chosen ones).
METRICS_AUTH_FIELDS: dict[str, dict[str, str]] = {
    MetricsAuth.NONE: {},
    MetricsAuth.BASIC: {"username": "Username", "password": "Password"},
    MetricsAuth.AUTH_TOKEN: {"basic_token": "Auth token"},
    MetricsAuth.SIGV4: {
        "sig_v4_assume_arn": "AWS SigV4 role ARN",
        "sig_v4_sts_region": "AWS STS region",
    },
}
URI_HELP = (
    "type://login:password@host:port/schema?extra. When a URI is given it wins: the type, "
    "host, schema, login, password, port and extra are all taken from it (a part it leaves out "
    "is emptied) and what is typed in those fields is ignored. The description is kept."
)


def _json_text(value: Any, *, keep_empty: bool = False) -> str:
    """A JSON object for its textarea; `keep_empty` writes `{}` (a nullable field's empty
    object, which differs from unset) instead of leaving the box empty."""
    if value is None or (not value and not keep_empty):
        return ""
    return json.dumps(value, indent=2, sort_keys=True)


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
        parsed = parse_json(text)
    except json.JSONDecodeError as exc:  # JSONTooDeep is one too
        form.add_error(name, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
        return None
    if not isinstance(parsed, dict):
        form.add_error(name, 'Must be a JSON object, like {"key": "value"}.')
        return None
    return parsed


def _mark_stored(field: forms.Field, help_text: str = "") -> None:
    """A stored secret's field: empty, with a placeholder saying it is kept unless replaced."""
    field.widget.attrs["placeholder"] = "•••••••• (unchanged)"
    field.help_text = help_text or "Stored and hidden. Type a new one to change it."


if TYPE_CHECKING:  # what the mixin is mixed into
    _FormBase = forms.BaseForm
else:
    _FormBase = object


class _ForgetsTypedSecrets(_FormBase):
    """Forms whose secret fields come back empty after an error (`secret_names`) say which
    ones to type again."""

    def secret_names(self) -> list[str]:
        raise NotImplementedError

    def cleared_secrets(self) -> list[str]:
        """After an error: the secret fields that were typed and come back empty."""
        if not self.is_bound or not self.errors:
            return []
        return [
            str(self[n].label) for n in self.secret_names() if self.data.get(self.add_prefix(n))
        ]


def _stored_keys_help(value: dict) -> str:
    """The shape of a stored secret JSON object: its keys, never their values."""
    keys = sorted(value)
    shown = ", ".join(f"{key} (set)" for key in keys[:20])
    if len(keys) > 20:
        shown += f", and {len(keys) - 20} more"
    return f"Stored and hidden: {shown}."


class EnvironmentObjectForm(_ForgetsTypedSecrets, forms.Form):
    """One form for the four types; which fields show depends on `object_type`."""

    key = KeyField(label="Key")
    # Connection
    conn_type = forms.CharField(label="Connection type", required=False, max_length=500)
    uri = forms.CharField(
        label="…or paste an Airflow connection URI",
        required=False,
        widget=SecretInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=URI_HELP,
    )
    host = forms.CharField(required=False, max_length=500)
    schema = forms.CharField(required=False, max_length=500)
    login = forms.CharField(required=False, max_length=500, widget=_login_input())
    password = forms.CharField(required=False, widget=_secret_password_input())
    port = forms.IntegerField(required=False, min_value=1, max_value=65535)
    extra = MultilineField(label="Extra (JSON object)", required=False, widget=_secret_textarea(4))
    description = MultilineField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    # Variables
    value = MultilineField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})
    )
    is_secret = forms.BooleanField(label="Secret (masked everywhere)", required=False)
    # Metrics exports
    endpoint = forms.URLField(
        label="Remote write endpoint", required=False, max_length=2000, assume_scheme="https"
    )
    exporter_type = forms.ChoiceField(
        label="Exporter",
        choices=[("PROMETHEUS", "Prometheus remote write")],
        required=False,
        initial="PROMETHEUS",
    )
    auth_type = forms.ChoiceField(
        label="Authentication", choices=MetricsAuth.choices, required=False
    )
    username = forms.CharField(required=False, max_length=500, widget=_login_input())
    basic_token = forms.CharField(
        label="Auth token", required=False, widget=_secret_password_input()
    )
    sig_v4_assume_arn = forms.CharField(label="AWS SigV4 role ARN", required=False)
    sig_v4_sts_region = forms.CharField(label="AWS STS region", required=False)
    headers = MultilineField(
        label="Extra headers (JSON object)", required=False, widget=_secret_textarea(2)
    )
    labels = MultilineField(
        label="Labels (JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
    )
    auto_link_deployments = forms.BooleanField(
        label="Link to every Deployment, present and future", required=False
    )

    # In the order they show.
    FIELDS_BY_TYPE: dict[str, tuple[str, ...]] = {
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
            "exporter_type",
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
        *args: Any,
        object_type: str,
        stored: dict | None = None,
        workspace_scope: bool = True,
        **kwargs: Any,
    ) -> None:
        self.object_type = object_type
        self.stored = stored  # the stored values when editing
        initial = kwargs.pop("initial", {}) or {}
        if stored is not None:
            hidden = set(secret_fields(object_type, stored))
            for name, value in stored.items():
                if name in hidden:
                    continue
                if name in JSON_FIELDS:
                    value = _json_text(value, keep_empty=name in SPECS[object_type].nullable)
                initial[name] = value
        super().__init__(*args, initial=initial, **kwargs)  # type: ignore[misc]
        # A stored secret may be cleared on edit (left empty, it is kept).
        clearable = [
            name
            for name in SPECS[object_type].secret_fields
            if stored and stored.get(name) and name in self.FIELDS_BY_TYPE[object_type]
        ]
        order = ["key"]
        for name in self.FIELDS_BY_TYPE[object_type]:
            order.append(name)
            if name in clearable:
                label = self._noun(name)
                self.fields[f"clear_{name}"] = forms.BooleanField(
                    label=f"Clear the stored {label}", required=False
                )
                order.append(f"clear_{name}")
        if workspace_scope:
            order.append("auto_link_deployments")
        self.fields = {name: self.fields[name] for name in order}
        if stored and stored.get("is_secret") and "is_secret" in self.fields:
            # A secret stays secret (`object_types.secret_flag_lowered`): the box stays ticked.
            self.fields["is_secret"].disabled = True
            self.fields["is_secret"].help_text = (
                "A secret stays secret: to make the value plain, delete this object and create "
                "it again."
            )
        if stored is not None:
            # What the page showed when it was opened (never a secret): a save sends only the
            # fields the user changed, and the service refuses one changed since then.
            opened = {name: value for name, value in stored.items() if name not in hidden}
            opened.update({k: initial[k] for k in ("key", "auto_link_deployments") if k in initial})
            self.fields["opened"] = forms.CharField(
                widget=forms.HiddenInput, required=False, initial=json.dumps(opened)
            )
        if self._value_is_secret():
            self.fields["value"].widget = _secret_textarea(3)
        for name in clearable:
            _mark_stored(
                self.fields[name],
                f"{_stored_keys_help((stored or {})[name])} What you type here replaces the whole "
                f"stored {self._noun(name)}; left empty, it is kept."
                if name in JSON_FIELDS
                else "",
            )
        stored_secrets = secret_fields(object_type, stored or {})
        if "value" in self.fields and "value" in stored_secrets and (stored or {}).get("value"):
            _mark_stored(self.fields["value"])
        for name in SPECS[object_type].nullable:
            if stored and stored.get(name) == "" and name in self.fields:
                # Empty text, which Airflow shows as '' (unset would be None): kept so when
                # the box is left empty.
                field = self.fields[name]
                note = "Stored as empty text (Airflow shows ''), not unset; left empty, it stays."
                field.help_text = f"{field.help_text} {note}".strip()
        for name in JSON_FIELDS:
            if name in self.fields:
                _json_object_attrs(self.fields[name].widget)
        self.conn_spec: ConnectionType | None = None
        if object_type == ObjectType.CONNECTION:
            self._set_up_connection_type()

    def chosen_conn_type(self) -> str:
        """The connection type the form is for: as posted, else as stored."""
        if self.is_bound:
            return str(self.data.get(self.add_prefix("conn_type")) or "").strip()
        return str(self.initial.get("conn_type") or "").strip()

    @property
    def unknown_conn_type(self) -> bool:
        """A type typed in that Airflow's providers do not list (allowed: a custom hook)."""
        return bool(self.chosen_conn_type()) and self.conn_spec is None

    def _set_up_connection_type(self) -> None:
        """Airflow's labels and placeholders for the chosen type, and its extra fields (after
        the port, before the whole extra), each stored as a key of extra."""
        spec = self.conn_spec = connection_type(self.chosen_conn_type())
        if spec is None:
            return
        for name in STANDARD_FIELDS:
            field = self.fields[name]
            field.label = spec.label(name)
            if spec.placeholder(name) and "placeholder" not in field.widget.attrs:
                field.widget.attrs["placeholder"] = spec.placeholder(name)
        if spec.placeholder("extra") and "placeholder" not in self.fields["extra"].widget.attrs:
            self.fields["extra"].widget.attrs["placeholder"] = spec.placeholder("extra")
        stored_extra = (self.stored or {}).get("extra") or {}
        fields: dict[str, forms.Field] = {}
        for name, field in self.fields.items():
            if name == "extra":
                for extra in spec.extra_fields:
                    # A stored extra is secret as a whole: its keys' values never show.
                    kept = STORED_KEY_PLACEHOLDER if extra.name in stored_extra else None
                    fields[f"{EXTRA_FIELD_PREFIX}{extra.name}"] = extra_form_field(
                        extra, placeholder=kept
                    )
            fields[name] = field
        self.fields = fields

    unknown_type_note = UNKNOWN_TYPE_NOTE

    @staticmethod
    def conn_type_options() -> list[tuple[str, str]]:
        return connection_type_options()

    @staticmethod
    def connection_catalog() -> dict[str, Any]:
        return connection_catalog_json()

    def extra_field_names(self) -> list[str]:
        return [name for name in self.fields if name.startswith(EXTRA_FIELD_PREFIX)]

    def layout(self) -> list[tuple[forms.BoundField, forms.BoundField | None]]:
        """Each field with its "Clear the stored …" box, to show the box under its field."""
        return [
            (self[name], self[f"clear_{name}"] if f"clear_{name}" in self.fields else None)
            for name in self.fields
            if not name.startswith(("clear_", EXTRA_FIELD_PREFIX)) and name != "opened"
        ]

    def extra_fields_layout(self) -> list[forms.BoundField]:
        """The chosen type's extra fields (shown together, before the whole extra)."""
        return [self[name] for name in self.extra_field_names()]

    @property
    def opened_input(self) -> forms.BoundField | None:
        """The hidden input with what the page showed when opened (edit forms only)."""
        return self["opened"] if "opened" in self.fields else None

    def opened(self) -> dict[str, Any] | None:
        """What the page showed when it was opened, or None (a create form, or a page without
        it: then every field is sent and nothing is checked)."""
        if "opened" not in self.fields:
            return None
        try:
            opened = parse_json(self.cleaned_data.get("opened") or "null")
        except ValueError:
            return None
        return opened if isinstance(opened, dict) else None

    def changes(self) -> tuple[str | None, dict[str, Any], bool | None, dict[str, Any]]:
        """An edit as (new key or None, values, auto-link or None, seen): only what the user
        changed since the page was opened, and what the page showed of each (`seen`), so a
        change made meanwhile to another field stays and one to the same field is refused."""
        key = self.cleaned_data["key"]
        values = self.values()
        auto_link = self.cleaned_data.get("auto_link_deployments")
        opened = self.opened()
        if opened is None:
            return key, values, auto_link, {}
        seen: dict[str, Any] = {}
        for name in list(values):
            if name in opened and values[name] == opened[name]:
                del values[name]  # not changed on this page
            elif name in opened:
                seen[name] = opened[name]
        if "key" in opened:
            if key == opened["key"]:
                key = None
            else:
                seen["key"] = opened["key"]
        if "auto_link_deployments" in opened and auto_link == opened["auto_link_deployments"]:
            auto_link = None
        return key, values, auto_link, seen

    def _noun(self, name: str) -> str:
        # From the field, not a BoundField: one made now would keep the help text it has now.
        label = self.fields[name].label or pretty_name(name)
        return label.removesuffix(" (JSON object)").lower()

    def _value_is_secret(self) -> bool:
        """A variable's value is secret if it is stored so or the posted form ticks Secret."""
        if "value" not in self.fields:
            return False
        if self.stored and self.stored.get("is_secret"):
            return True
        if not self.is_bound:
            return False
        widget = self.fields["is_secret"].widget
        return bool(widget.value_from_datadict(self.data, self.files, self.add_prefix("is_secret")))

    def secret_names(self) -> list[str]:
        """The fields of this form that hold a secret (the URI holds a password)."""
        flagged = {"is_secret": self._value_is_secret()}
        names = [*secret_fields(self.object_type, flagged), "uri"]
        return [
            name
            for name in self.fields
            if name in names or (name.startswith(EXTRA_FIELD_PREFIX) and _is_sensitive(self, name))
        ]

    def chooser(self) -> dict | None:
        """What app.js needs to show only the fields of the chosen connection type or metrics
        auth type: the choosing field, the fields it decides, and per choice their labels."""
        if self.object_type == ObjectType.CONNECTION:
            return {
                "chooser": "conn_type",
                "fields": list(CONNECTION_FIELDS),
                "choices": CONNECTION_TYPES,
                "emptyShowsAll": True,  # unknown types use every field
                "catalog": "connection-catalog",  # its extra fields and placeholders
                "fieldPrefix": self.add_prefix(""),
                "unknownNote": UNKNOWN_TYPE_NOTE,
            }
        if self.object_type == ObjectType.METRICS_EXPORT:
            fields = [name for spec in METRICS_AUTH_FIELDS.values() for name in spec]
            return {
                "chooser": "auth_type",
                "fields": fields,
                "choices": METRICS_AUTH_FIELDS,
                "emptyShowsAll": False,
            }
        return None

    def clean(self) -> dict[str, Any]:
        cleaned = cast(dict[str, Any], super().clean())
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
        for name in self.fields:
            field = name.removeprefix("clear_")
            if name.startswith("clear_") and cleaned.get(name) and cleaned.get(field):
                self.add_error(
                    name, f"Either type a new {self[field].label.lower()} or clear it, not both."
                )
        raw_extra = cleaned.get("extra")
        if isinstance(raw_extra, dict):
            for key, value in _typed_extra_values(self).items():
                if key in raw_extra and raw_extra[key] != value:
                    self.add_error(
                        f"{EXTRA_FIELD_PREFIX}{key}",
                        f"Extra JSON sets {key} to another value too; keep one of them.",
                    )
        self._add_value_errors(cleaned)
        return cleaned

    def _add_value_errors(self, cleaned: dict[str, Any]) -> None:
        """The service's own checks of the values, run here too, so that every field's error
        shows at once, not one more after each fix. The service checks again when saving."""
        errors: dict[str, list[str]] = {}
        if "key" in cleaned and "key" not in self.errors:
            try:
                validate_key(self.object_type, cleaned["key"])
            except ValidationError as exc:
                errors.update(exc.message_dict)
        try:
            clean_values(self.object_type, self.values())
        except ValidationError as exc:
            errors.update(exc.message_dict)
        for name, messages in errors.items():
            if name in self.fields and name not in self.errors and messages:
                self.add_error(name, messages[0])

    def values(self) -> dict[str, Any]:
        """The values to save: on edit, only what changed; an empty secret keeps the stored."""
        data = self.cleaned_data
        spec_fields = SPECS[self.object_type].fields
        values: dict[str, Any] = {}
        hidden = set(secret_fields(self.object_type, self.stored or {}))
        nullable = SPECS[self.object_type].nullable
        for name in spec_fields:
            if name not in self.fields:
                continue
            value = data.get(name)
            if name in JSON_FIELDS and not value:
                value = None if name in nullable else {}
            if data.get(f"clear_{name}"):
                values[name] = None if name in nullable else {} if name in JSON_FIELDS else ""
                continue
            left_empty = value in ("", None, {}) and not data.get("uri")
            if self.stored is not None and name in hidden and left_empty:
                continue  # keep the stored secret
            if name == "exporter_type" and not value:
                continue  # the only exporter there is, by default
            if name in nullable:
                if value == "" and not data.get("uri"):
                    # A box left empty: unset, as Airflow stores a field left out, unless it
                    # holds empty text already (kept: an HTML box cannot tell the two apart).
                    value = "" if self.stored and self.stored.get(name) == "" else None
                values[name] = value
                continue
            values[name] = "" if value is None and name != "port" else value
        typed_extra = _typed_extra_values(self)
        if typed_extra:
            # On top of the extra JSON typed, or of the stored extra when that is kept.
            if "extra" in values:
                base = dict(values["extra"] or {})
            else:
                base = dict((self.stored or {}).get("extra") or {})
            values["extra"] = {**base, **typed_extra}
        return values


def _is_sensitive(form: forms.BaseForm, name: str) -> bool:
    spec = getattr(form.fields[name], "extra_spec", None)
    return bool(spec and spec.sensitive)


class OverrideForm(_ForgetsTypedSecrets, forms.Form):
    """The fields that differ on one Deployment link. Empty fields keep their current override
    (or the Workspace value); ticking "use the Workspace value" clears an override. A connection
    may also override single keys of its extra (`extra.KEY` overrides)."""

    def __init__(
        self,
        *args: Any,
        object_type: str,
        current: dict | None = None,
        is_secret: bool = True,
        workspace_values: dict | None = None,
        **kwargs: Any,
    ) -> None:
        """`is_secret`: whether the object's value is secret (a variable's Secret box);
        `workspace_values`: the Workspace object's values, shown as each field's placeholder
        (a secret one only as set or not set)."""
        super().__init__(*args, **kwargs)
        self.object_type = object_type
        self.current = current or {}
        self.workspace_values = workspace_values
        spec = SPECS[object_type]
        secret = set(secret_fields(object_type, {"is_secret": is_secret}))
        self.secret = secret | {"extra_keys"}
        for name in spec.overridable:
            # An override form is never filled in; a secret typed into it is never sent back.
            widget: forms.Widget | None
            field_class: type[forms.CharField]
            if name in JSON_FIELDS or name == "value":
                widget = (
                    _secret_textarea(2)
                    if name in secret
                    else forms.Textarea(attrs={"rows": 2, "spellcheck": "false"})
                )
                field_class = MultilineField
            else:
                if name in secret:
                    widget = _secret_password_input()
                elif name in ("login", "username"):
                    widget = _login_input()
                else:
                    widget = None
                field_class = forms.CharField
            field = field_class(
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
            self.fields["extra_keys"] = MultilineField(
                label="Override single keys of extra (JSON object)",
                required=False,
                widget=_secret_textarea(2),
                help_text='Only these keys differ here, e.g. {"sslmode": "disable"}.',
            )
            self._set_up_connection_type(secret)
        for name in (*JSON_FIELDS, "extra_keys"):
            if name in self.fields:
                _json_object_attrs(self.fields[name].widget)
            for name in sorted(k for k in self.current if k.startswith("extra.")):
                self.fields[f"unset_{name}"] = forms.BooleanField(
                    label=f"Use the Workspace value for extra key {name[6:]}", required=False
                )

    def _set_up_connection_type(self, secret: set[str]) -> None:
        """The same labels and field kinds as the connection's own form, for its type (as
        overridden here, else the Workspace's), each field showing the Workspace value as
        its placeholder, and the type's extra fields as single-key overrides of extra."""
        values = self.workspace_values
        conn_type = self.current.get("conn_type") or (values or {}).get("conn_type")
        spec = connection_type(conn_type)
        if spec is not None:
            for name in STANDARD_FIELDS:
                self.fields[name].label = spec.label(name)
        self.fields["port"].widget.attrs["inputmode"] = "numeric"
        if values is None:
            return
        for name in SPECS[self.object_type].overridable:
            self.fields[name].widget.attrs["placeholder"] = _workspace_placeholder(
                values.get(name), secret=name in secret
            )
        if spec is None:
            return
        stored_extra = values.get("extra") or {}
        fields: dict[str, forms.Field] = {}
        for name, field in self.fields.items():
            if name == "extra_keys":
                for extra in spec.extra_fields:
                    # Extra is secret as a whole: only whether each key is set shows.
                    fields[f"{EXTRA_FIELD_PREFIX}{extra.name}"] = extra_form_field(
                        extra,
                        placeholder=_workspace_placeholder(
                            stored_extra.get(extra.name), secret=True
                        ),
                    )
                    if f"extra.{extra.name}" in self.current:
                        fields[
                            f"{EXTRA_FIELD_PREFIX}{extra.name}"
                        ].help_text = "Overridden (hidden)."
                    if extra.sensitive:  # typed again after an error; the rest come back
                        self.secret.add(f"{EXTRA_FIELD_PREFIX}{extra.name}")
            fields[name] = field
        self.fields = fields

    def secret_names(self) -> list[str]:
        return [name for name in self.fields if name in self.secret]

    def rows(self) -> list[tuple[forms.BoundField, forms.BoundField | None]]:
        """Each field with its "use the Workspace value" box, to show them side by side."""
        return [
            (self[name], self[f"unset_{name}"] if f"unset_{name}" in self.fields else None)
            for name in self.fields
            if not name.startswith("unset_")
        ] + [(self[name], None) for name in self.fields if name.startswith("unset_extra.")]

    def clean(self) -> dict[str, Any]:
        cleaned = cast(dict[str, Any], super().clean())
        for name in (*JSON_FIELDS, "extra_keys"):
            if name in self.fields and cleaned.get(name):
                parsed = _parse_json_object(self, name, cleaned[name])
                if parsed is not None:
                    cleaned[name] = parsed
        # The service's checks too, so every field's error shows at once (it checks again).
        overrides, _ = self.overrides()
        try:
            clean_overrides(self.object_type, overrides)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                target = name
                if name.startswith("extra."):
                    target = f"{EXTRA_FIELD_PREFIX}{name[6:]}"
                    target = target if target in self.fields else "extra_keys"
                if target in self.fields and target not in self.errors and messages:
                    self.add_error(target, messages[0])
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
        per_key = data.get("extra_keys")
        typed = {**(per_key if isinstance(per_key, dict) else {}), **_typed_extra_values(self)}
        for key, value in typed.items():
            if f"extra.{key}" not in unset:
                overrides[f"extra.{key}"] = value
        return overrides, unset


def _workspace_placeholder(value: Any, *, secret: bool) -> str:
    """What an override field shows of the Workspace value: the value, or for a secret only
    whether it is set."""
    if secret:
        return "Workspace value: set" if value not in (None, "", {}) else "Workspace value: not set"
    if value is None:
        return "Workspace value: not set"
    if value == "":
        return "Workspace value: empty text"
    return f"Workspace value: {_display(value)}"


class DeploymentForm(forms.Form):
    """A Deployment's settings. The metadata DB URL and the Fernet keys are write-only: never
    filled in, and left empty on edit they keep the stored value; a box clears each. They are
    offered only to those who may set them (`may_set_metadata_db`: Workspace Owners)."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=1000)
    kind = forms.ChoiceField(choices=Deployment.Kind.choices, initial=Deployment.Kind.STANDARD)
    metadata_db_url = forms.CharField(
        label="Airflow metadata DB URL",
        required=False,
        widget=_secret_password_input(),
        help_text="postgresql://user:password@host:5432/airflow or sqlite:////path/airflow.db; "
        "only databases on this server's allowlist can be used. Tested when saved.",
    )
    clear_metadata_db_url = forms.BooleanField(label="Clear the stored URL", required=False)
    fernet_key = forms.CharField(
        label="Fernet key(s), newest first",
        required=False,
        widget=_secret_password_input(),
        help_text="Airflow's [core] fernet_key; comma-separated when rotating.",
    )
    clear_fernet_key = forms.BooleanField(label="Clear the stored keys", required=False)

    SECRETS = ("metadata_db_url", "fernet_key")

    def __init__(
        self,
        *args: Any,
        deployment: Deployment | None = None,
        may_set_metadata_db: bool = True,
        **kwargs: Any,
    ) -> None:
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
            self.fields["name"].help_text = (
                "Renaming keeps its objects, links, tokens and history: its secrets backend "
                "knows it by its token, not its name."
            )
        self.may_set_metadata_db = may_set_metadata_db
        for name in self.SECRETS:
            stored = deployment is not None and bool(getattr(deployment, name))
            if not may_set_metadata_db:
                del self.fields[name]
            elif stored:
                _mark_stored(self.fields[name])
            if not may_set_metadata_db or not stored:
                del self.fields[f"clear_{name}"]

    def layout(self) -> list[tuple[forms.BoundField, forms.BoundField | None]]:
        """Each field with its "Clear the stored …" box, to show the box under its field."""
        return [
            (self[name], self[f"clear_{name}"] if f"clear_{name}" in self.fields else None)
            for name in self.fields
            if not name.startswith("clear_")
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = cast(dict[str, Any], super().clean())
        for name in self.SECRETS:
            if cleaned.get(f"clear_{name}") and cleaned.get(name):
                self.add_error(
                    f"clear_{name}",
                    f"Either type a new {str(self.fields[name].label).lower()} or clear it, "
                    "not both.",
                )
        return cleaned

    def changes(self) -> dict[str, Any]:
        """The service's keyword arguments: an empty secret is None (keep the stored one), a
        cleared one "" (remove it)."""
        data = self.cleaned_data
        changes: dict[str, Any] = {
            "name": data["name"],
            "description": data["description"],
            "kind": data["kind"],
        }
        for name in self.SECRETS:
            if name not in self.fields:
                continue
            if data.get(f"clear_{name}"):
                changes[name] = ""
            elif data.get(name):
                changes[name] = data[name]
        return changes


class IdeProjectForm(forms.Form):
    name = forms.CharField(label="IDE project name", max_length=100)
    description = forms.CharField(required=False, max_length=2000)


class WorkspaceForm(forms.Form):
    name = forms.CharField(
        label="Workspace name",
        max_length=100,
        error_messages={
            "required": "Give the new Workspace a name.",
            "max_length": "A Workspace name is at most %(limit_value)d characters "
            "(this one has %(show_value)d).",
        },
    )
