"""Run by `manage.py airflow_connection_catalog` under an Airflow interpreter (not imported by
envmanager): prints, as JSON, the connection types that Airflow's own UI offers, worked out the
way the Airflow 3 UI does (`/ui/connections/hook_meta`, HookMetaService in airflow-core), plus
the versions of Airflow and of the provider distributions they came from.

Only the standard library and Airflow itself: it must run in any Airflow environment."""

import json
import logging
import sys
from importlib import metadata

STANDARD = {
    "description": "description",
    "url_schema": "schema",
    "host": "host",
    "port": "port",
    "login": "login",
    "password": "password",
}


def _versions() -> dict:
    providers = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("apache-airflow-providers-"):
            providers[name] = dist.version
    return {
        "airflow": metadata.version("apache-airflow-core"),
        "providers": dict(sorted(providers.items())),
    }


def _extra_field(name: str, param: dict, sensitive: bool, placeholders: dict) -> dict:
    schema = param.get("schema") or {}
    kinds = [t for t in (schema.get("type") or ["string"]) if t != "null"] or ["string"]
    kind = kinds[0] if isinstance(schema.get("type"), list) else schema.get("type", "string")
    if kind not in ("string", "integer", "boolean", "number"):
        kind = "string"
    if schema.get("format") == "password":
        sensitive = True
    field = {
        "name": name,
        "label": schema.get("title") or name,
        "kind": kind,
        "sensitive": sensitive,
    }
    if param.get("description") or schema.get("description"):
        field["description"] = param.get("description") or schema.get("description")
    if placeholders.get(name) not in (None, ""):
        field["placeholder"] = str(placeholders[name])
    if schema.get("enum"):
        field["choices"] = list(schema["enum"])
    if param.get("value") not in (None, "") and not sensitive:
        field["default"] = param["value"]
    return field


def catalog() -> dict:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    from airflow.providers_manager import ProvidersManager

    hooks = HookMetaService.hook_meta_data()
    pm = ProvidersManager()
    behaviours = pm._field_behaviours_from_metadata
    widgets = pm._connection_form_widgets_from_metadata
    # "hook_key__field" keys, as HookMetaService splits them.
    sensitive = {
        (key.split("__")[1], info.field_name): bool(info.is_sensitive)
        for key, info in widgets.items()
        if "__" in key
    }
    providers = getattr(pm, "_hook_provider_dict", {})
    types = []
    for hook in hooks:
        meta = hook.model_dump(mode="json")
        conn_type = meta["connection_type"]
        behaviour = behaviours.get(conn_type) or {}
        fields = {}
        for ui_name, field_name in STANDARD.items():
            spec = (meta.get("standard_fields") or {}).get(ui_name)
            if not spec:
                continue
            fields[field_name] = {
                k: v
                for k, v in (
                    ("hidden", bool(spec.get("hidden"))),
                    ("label", spec.get("title")),
                    ("placeholder", spec.get("placeholder")),
                )
                if v not in (None, "", False)
            }
        extra_placeholder = (behaviour.get("placeholders") or {}).get("extra")
        if extra_placeholder:
            fields["extra"] = {"placeholder": str(extra_placeholder)}
        placeholders = behaviour.get("placeholders") or {}
        extra_fields = [
            _extra_field(name, param, sensitive.get((conn_type, name), False), placeholders)
            for name, param in (meta.get("extra_fields") or {}).items()
        ]
        entry = {"conn_type": conn_type, "hook_name": meta.get("hook_name") or conn_type}
        if meta.get("hook_class_name"):
            entry["hook_class_name"] = meta["hook_class_name"]
        package = getattr(providers.get(conn_type), "package_name", None)
        if package:
            entry["package"] = package
        entry["fields"] = {k: v for k, v in fields.items() if v}
        entry["extra_fields"] = extra_fields
        types.append(entry)
    types.sort(key=lambda t: t["conn_type"])
    return {**_versions(), "connection_types": types}


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # provider warnings would mix with the JSON on stdout
    json.dump(catalog(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
