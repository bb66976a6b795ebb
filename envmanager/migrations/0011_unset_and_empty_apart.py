"""Unset and empty text become two values for a connection's description, host, schema, login,
password and extra, and for an Airflow variable's description (Airflow keeps NULL and '' apart).

Until now both were stored as '' (and extra as {}) and served to Airflow as null: this turns
every stored '' (and {} extra) into unset, so each Deployment resolves exactly what it did
before. Objects, link overrides, versions and the overrides an undo puts back."""

from django.db import migrations

NULLABLE = {
    "CONNECTION": ("description", "host", "schema", "login", "password", "extra"),
    "AIRFLOW_VARIABLE": ("description",),
}
BATCH = 500


def _unset_empty(object_type: str, values: dict | None) -> bool:
    """Turn this type's empty nullable fields into None in place; whether any was."""
    changed = False
    for name in NULLABLE.get(object_type, ()):
        if isinstance(values, dict) and name in values and values[name] in ("", {}):
            values[name] = None
            changed = True
    return changed


def _rewrite(queryset, field: str, object_type_of) -> None:
    batch = []
    for row in queryset.iterator(chunk_size=BATCH):
        value = getattr(row, field)
        object_type = object_type_of(row)
        changed = _unset_empty(object_type, value)
        if field == "snapshot" and isinstance(value, dict):
            changed |= _unset_empty(object_type, value.get("values"))
            for link in value.get("links") or ():
                changed |= _unset_empty(object_type, link.get("overrides"))
        if changed:
            batch.append(row)
        if len(batch) >= BATCH:
            queryset.model.objects.bulk_update(batch, [field])
            batch = []
    if batch:
        queryset.model.objects.bulk_update(batch, [field])


def forwards(apps, schema_editor) -> None:
    types = list(NULLABLE)
    EnvironmentObject = apps.get_model("envmanager", "EnvironmentObject")
    Link = apps.get_model("envmanager", "Link")
    ObjectVersion = apps.get_model("envmanager", "ObjectVersion")
    MigrationItem = apps.get_model("envmanager", "MigrationItem")
    _rewrite(
        EnvironmentObject.objects.filter(object_type__in=types), "values", lambda o: o.object_type
    )
    _rewrite(Link.objects.filter(object_type__in=types), "overrides", lambda o: o.object_type)
    _rewrite(
        ObjectVersion.objects.filter(object_type__in=types), "snapshot", lambda o: o.object_type
    )
    _rewrite(
        MigrationItem.objects.filter(
            run__object_type__in=types, previous_overrides__isnull=False
        ).select_related("run"),
        "previous_overrides",
        lambda item: item.run.object_type,
    )


class Migration(migrations.Migration):
    dependencies = [("envmanager", "0010_remove_shadowed_rows")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
