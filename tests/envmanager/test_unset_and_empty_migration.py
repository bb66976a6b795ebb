"""Data migration 0011: what was stored as '' (and {} extra) before unset and empty were two
values becomes unset, so every Deployment resolves exactly what it did (Airflow was served null
for both); everything else is left as it was."""

import importlib

import pytest
from django.apps import apps

from envmanager.lookups import airflow_connection
from envmanager.models import EnvironmentObject, Link, ObjectVersion
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import environment_object_create, environment_object_update, link_create

pytestmark = pytest.mark.django_db

forwards = importlib.import_module("envmanager.migrations.0011_unset_and_empty_apart").forwards
OLD_EMPTY = {
    "conn_type": "http",
    "description": "",
    "host": "",
    "schema": "",
    "login": "",
    "password": "",
    "port": None,
    "extra": {},
}


def test_old_empty_text_becomes_unset_and_what_airflow_is_served_does_not_change(team):
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="api",
        values={"conn_type": "http", "host": "api.example.com"},
    )
    link_create(user=team.operator, obj=conn, deployment=team.deployment, overrides={"host": ""})
    environment_object_update(user=team.operator, obj=conn, values={"login": "x"})  # a version
    variable = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="v",
        values={"value": "", "description": "d"},
    )
    env_var = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="E",
        values={"value": ""},
    )
    # As the code before stored them: every empty field as '' and extra as {}.
    EnvironmentObject.objects.filter(pk=conn.pk).update(values=OLD_EMPTY)
    version = ObjectVersion.objects.get(
        environment_object_id=conn.pk, reason=ObjectVersion.Reason.UPDATE
    )
    version.snapshot = {**version.snapshot, "values": OLD_EMPTY}
    version.save()
    EnvironmentObject.objects.filter(pk=variable.pk).update(
        values={"value": "", "description": "", "is_secret": False}
    )
    # What the code before served for it: every empty field as null.
    served_before = {**dict.fromkeys(OLD_EMPTY), "conn_type": "http"}

    forwards(apps, None)

    conn.refresh_from_db()
    assert conn.values == {**dict.fromkeys(OLD_EMPTY), "conn_type": "http"}
    assert Link.objects.get(environment_object=conn).overrides == {"host": None}
    version.refresh_from_db()
    assert version.snapshot["values"] == conn.values
    resolved = deployment_resolved_environment(team.deployment)["CONNECTION"]["api"].values
    assert airflow_connection(resolved) == served_before
    variable.refresh_from_db()
    assert variable.values == {"value": "", "description": None, "is_secret": False}  # value kept
    env_var.refresh_from_db()
    assert env_var.values["value"] == ""  # environment variables have no unset
