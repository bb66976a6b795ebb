"""Airflow's connection types, as Airflow's own UI shows them: each type's name, the standard
fields it hides, relabels and gives placeholders, and the extra fields it adds (stored as keys of
`extra`). Read once from the catalog file that `manage.py airflow_connection_catalog` makes
from a real Airflow (the file says which Airflow and provider versions)."""

import json
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).resolve().parent / "data" / "airflow_connection_types.json"
EXTRACT_SCRIPT = Path(__file__).resolve().parent / "airflow_connection_catalog_extract.py"
# Airflow 3's connection form labels for the standard fields.
STANDARD_LABELS = {
    "host": "Host",
    "schema": "Schema",
    "login": "Login",
    "password": "Password",
    "port": "Port",
    "extra": "Extra Fields JSON",
    "description": "Description",
}
STANDARD_FIELDS = ("host", "schema", "login", "password", "port")
EXTRA_KINDS = ("string", "integer", "number", "boolean")


@dataclass(frozen=True)
class ExtraField:
    """A field a type adds to the form; its value is stored as `extra[name]`."""

    name: str
    label: str
    kind: str = "string"
    sensitive: bool = False
    placeholder: str = ""
    description: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectionType:
    conn_type: str
    hook_name: str
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_fields: tuple[ExtraField, ...] = ()

    def hidden(self, name: str) -> bool:
        return bool(self.fields.get(name, {}).get("hidden"))

    def label(self, name: str) -> str:
        return self.fields.get(name, {}).get("label") or STANDARD_LABELS[name]

    def placeholder(self, name: str) -> str:
        return str(self.fields.get(name, {}).get("placeholder") or "")

    def extra_field(self, name: str) -> ExtraField | None:
        return next((f for f in self.extra_fields if f.name == name), None)

    def as_json(self) -> dict[str, Any]:
        """What the page's script needs to redraw the form for this type (its labels and hidden
        fields come in the form's `chooser`)."""
        # Only what differs from a plain text box with no placeholder: it is in every page.
        return {
            "hookName": self.hook_name,
            "fields": {
                name: {"placeholder": self.placeholder(name)}
                for name in (*STANDARD_FIELDS, "extra")
                if self.placeholder(name)
            },
            "extraFields": [
                {
                    key: value
                    for key, value in (
                        ("name", f.name),
                        ("label", f.label),
                        ("kind", f.kind),
                        ("sensitive", f.sensitive),
                        ("placeholder", f.placeholder),
                        ("description", f.description),
                        ("choices", list(f.choices)),
                    )
                    if value or key in ("name", "label")
                }
                for f in self.extra_fields
            ],
        }


def _extra_field(raw: dict[str, Any]) -> ExtraField:
    kind = raw.get("kind", "string")
    return ExtraField(
        name=str(raw["name"]),
        label=str(raw.get("label") or raw["name"]),
        kind=kind if kind in EXTRA_KINDS else "string",
        sensitive=bool(raw.get("sensitive")),
        placeholder=str(raw.get("placeholder") or ""),
        description=str(raw.get("description") or ""),
        choices=tuple(str(c) for c in raw.get("choices") or ()),
    )


def parse_catalog(data: dict[str, Any]) -> dict[str, ConnectionType]:
    """The connection types of a catalog document, by conn_type."""
    return {
        raw["conn_type"]: ConnectionType(
            conn_type=raw["conn_type"],
            hook_name=raw.get("hook_name") or raw["conn_type"],
            fields={k: dict(v) for k, v in (raw.get("fields") or {}).items()},
            extra_fields=tuple(_extra_field(f) for f in raw.get("extra_fields") or ()),
        )
        for raw in data["connection_types"]
    }


@cache
def catalog_document() -> dict[str, Any]:
    """The shipped catalog file, read once."""
    data: dict[str, Any] = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return data


@cache
def connection_types() -> dict[str, ConnectionType]:
    """Every known connection type, by conn_type, sorted by it."""
    return dict(sorted(parse_catalog(catalog_document()).items()))


def connection_type(conn_type: str | None) -> ConnectionType | None:
    """The type's entry, or None for a type Airflow's providers do not list (a custom hook)."""
    return connection_types().get((conn_type or "").strip())


def extract_catalog(airflow_python: str, *, timeout: float = 300) -> dict[str, Any]:
    """The catalog of the Airflow installation that `airflow_python` (its interpreter) runs:
    the extraction script is run there, in isolated mode (no envmanager on its path)."""
    result = subprocess.run(
        [airflow_python, "-I", str(EXTRACT_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"The extraction failed under {airflow_python}: {tail[0]}")
    data: dict[str, Any] = json.loads(result.stdout)
    return data
