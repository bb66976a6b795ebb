"""History is complete: links, unlinks, overrides and promotion merges are versions too; any
version can be compared with now (secrets only as changed or unchanged); a restore from the
page asks first; and a secret stays secret."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from deployments.services import deployment_create
from envmanager.kernel.errors import InvalidInput, NotPermitted
from envmanager.models import EnvironmentObject, ObjectVersion
from envmanager.services import (
    auto_link_exclude,
    environment_object_create,
    environment_object_promote,
    environment_object_update,
    link_create,
    link_delete,
    link_set_overrides,
)
from envmanager.services.versions import environment_object_restore_version, version_diff

SECRET = "hist-S3cret-password-1"
OVERRIDE_SECRET = "hist-S3cret-override-2"
VARIABLE_SECRET = "hist-S3cret-variable-3"


def connection_object(team, key="warehouse", **values):
    return environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key=key,
        values={"conn_type": "postgres", "host": "h1", "password": SECRET, **values},
    )


def secret_variable(team, key="api_token"):
    return environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key=key,
        values={"value": VARIABLE_SECRET, "is_secret": True},
    )


def versions_of(obj) -> list[ObjectVersion]:
    return list(ObjectVersion.objects.filter(environment_object_id=obj.pk).order_by("id"))


def raw_versions() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM envmanager_objectversion")
        return json.dumps(cursor.fetchall(), default=str)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Links, unlinks, overrides and merges are versions


def test_linking_records_a_version_naming_the_deployment(team):
    obj = connection_object(team)
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    (version,) = versions_of(obj)
    assert version.reason == ObjectVersion.Reason.LINK
    assert version.detail == {
        "deploymentId": team.deployment.pk,
        "deploymentName": team.deployment.name,
    }
    assert version.snapshot["links"] == []  # the object as it was before the link


def test_unlinking_records_a_version_that_keeps_the_link_and_its_override(team):
    obj = connection_object(team)
    link = link_create(
        user=team.operator,
        obj=obj,
        deployment=team.deployment,
        overrides={"password": OVERRIDE_SECRET},
    )
    link_delete(user=team.operator, link=link)
    unlink = versions_of(obj)[-1]
    assert unlink.reason == ObjectVersion.Reason.UNLINK
    assert unlink.detail["deploymentName"] == team.deployment.name
    assert unlink.snapshot["links"][0]["overrides"] == {"password": OVERRIDE_SECRET}


def test_excluding_a_deployment_from_an_auto_link_records_an_unlink(team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="everywhere",
        values={"conn_type": "http"},
        auto_link_deployments=True,
    )
    auto_link_exclude(user=team.operator, obj=obj, deployment=team.other_deployment)
    (version,) = versions_of(obj)
    assert version.reason == ObjectVersion.Reason.UNLINK
    assert version.detail["deploymentId"] == team.other_deployment.pk


def test_a_new_deployments_auto_links_are_in_each_objects_history(team):
    with CaptureQueriesContext(connection) as alone:
        deployment_create(user=team.owner, workspace=team.workspace, name="before")
    objects = [
        environment_object_create(
            user=team.operator,
            workspace=team.workspace,
            object_type="AIRFLOW_VARIABLE",
            key=f"everywhere_{i}",
            values={"value": str(i)},
            auto_link_deployments=True,
        )
        for i in range(5)
    ]
    with CaptureQueriesContext(connection) as linked:
        dev = deployment_create(user=team.owner, workspace=team.workspace, name="dev")
    # The objects, their links and exclusions, one insert of versions, one of links: not a few
    # queries per object.
    assert len(linked.captured_queries) <= len(alone.captured_queries) + 5
    for obj in objects:
        (version,) = versions_of(obj)
        assert version.reason == ObjectVersion.Reason.LINK
        assert version.detail == {"deploymentId": dev.pk, "deploymentName": "dev", "autoLink": True}
        assert dev.pk not in [link["deployment_id"] for link in version.snapshot["links"]]
        assert obj.links.filter(deployment=dev, is_auto=True).exists()
    client = Client()
    client.force_login(team.author)
    page = client.get(f"/workspaces/{team.workspace.pk}/environment/{objects[0].pk}/history/")
    assert "Deployment dev · auto-link of a new Deployment" in page.content.decode()


def test_setting_and_unsetting_an_override_record_versions_with_field_names_only(team):
    obj = connection_object(team)
    link = link_create(user=team.operator, obj=obj, deployment=team.deployment)
    link_set_overrides(
        user=team.operator, link=link, overrides={"password": OVERRIDE_SECRET, "host": "prod"}
    )
    link_set_overrides(user=team.operator, link=link, unset_fields=["password"])
    _, set_version, unset_version = versions_of(obj)
    assert set_version.reason == unset_version.reason == ObjectVersion.Reason.OVERRIDE
    assert set_version.changed_fields == ["host", "password"]
    assert set_version.detail["overrideFields"] == ["host", "password"]
    assert unset_version.detail["unsetFields"] == ["password"]
    assert unset_version.snapshot["links"][0]["overrides"]["password"] == OVERRIDE_SECRET
    # The override's secret is kept encrypted: neither the plain detail nor the stored row
    # holds it.
    assert OVERRIDE_SECRET not in raw_versions() and SECRET not in raw_versions()


def test_setting_an_override_to_what_it_is_records_no_version(team):
    obj = connection_object(team)
    link = link_create(
        user=team.operator, obj=obj, deployment=team.deployment, overrides={"host": "prod"}
    )
    link_set_overrides(user=team.operator, link=link, overrides={"host": "prod"})
    assert [v.reason for v in versions_of(obj)] == [ObjectVersion.Reason.LINK]


def test_a_promotion_merge_is_a_version_of_the_workspace_object(team):
    workspace_object = connection_object(team)
    local = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "prod-db", "password": SECRET},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    environment_object_promote(user=team.operator, obj=local)
    (merge,) = versions_of(workspace_object)
    assert merge.reason == ObjectVersion.Reason.MERGE
    assert merge.detail == {
        "deploymentId": team.deployment.pk,
        "deploymentName": team.deployment.name,
        "overrideFields": ["host"],
    }
    assert merge.snapshot["links"] == []


def test_a_secret_variable_merged_into_a_plain_one_makes_it_secret(team):
    workspace_variable = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="api_token",
        values={"value": "shared-plain"},
    )
    local = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="api_token",
        values={"value": VARIABLE_SECRET, "is_secret": True},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    environment_object_promote(user=team.operator, obj=local)
    workspace_variable.refresh_from_db()
    assert workspace_variable.values["is_secret"] is True
    (merge,) = versions_of(workspace_variable)
    assert merge.changed_fields == ["value", "is_secret"]
    assert merge.snapshot["values"]["is_secret"] is False
    event = AuditEvent.objects.get(action="environment_object.promote")
    assert event.detail == {"overrideCreated": True, "madeSecret": True}


def test_the_history_page_says_which_deployment_a_link_change_was_about(team):
    obj = connection_object(team)
    link_create(
        user=team.operator, obj=obj, deployment=team.deployment, overrides={"login": "prod"}
    )
    page = browser(team.author).get(
        f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/history/"
    )
    html = page.content.decode()
    assert "Before a link" in html and f"Deployment {team.deployment.name}: login" in html


# The diff


def test_the_diff_shows_plain_fields_old_and_new_and_secrets_only_as_changed(team):
    obj = connection_object(team)
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2"})
    environment_object_update(user=team.operator, obj=obj, values={"password": "new-pw"})
    first = versions_of(obj)[0]
    diff = {f.field: f for f in version_diff(version=first).fields}
    assert (diff["host"].version, diff["host"].current, diff["host"].changed) == ("h1", "h2", True)
    assert diff["password"].secret and diff["password"].changed
    assert diff["password"].version is None and diff["password"].current is None
    assert not diff["conn_type"].changed and not diff["key"].changed
    second = versions_of(obj)[1]
    assert not {f.field: f for f in version_diff(version=second).fields}["host"].changed


def test_a_secret_set_to_the_same_value_again_is_unchanged(team):
    obj = connection_object(team)
    environment_object_update(user=team.operator, obj=obj, values={"password": "other"})
    environment_object_update(user=team.operator, obj=obj, values={"password": SECRET})
    password = {f.field: f for f in version_diff(version=versions_of(obj)[0]).fields}["password"]
    assert password.secret and not password.changed


def test_a_value_secret_now_is_not_shown_even_where_the_version_held_it_plain(team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="api_token",
        values={"value": "plain-then"},
    )
    environment_object_update(
        user=team.operator, obj=obj, values={"value": VARIABLE_SECRET, "is_secret": True}
    )
    value = {f.field: f for f in version_diff(version=versions_of(obj)[0]).fields}["value"]
    assert value.secret and value.changed and value.current is None


def test_the_diff_lists_links_that_differ_with_secret_overrides_as_changed(team):
    obj = connection_object(team)
    link = link_create(
        user=team.operator,
        obj=obj,
        deployment=team.deployment,
        overrides={"password": OVERRIDE_SECRET, "host": "prod"},
    )
    link_set_overrides(
        user=team.operator, link=link, overrides={"password": "rotated", "host": "prod2"}
    )
    link_create(user=team.operator, obj=obj, deployment=team.other_deployment)
    override_version = versions_of(obj)[1]
    links = {change.target_name: change for change in version_diff(version=override_version).links}
    assert links[team.other_deployment.name].change == "LINKED_SINCE"
    overrides = {f.field: f for f in links[team.deployment.name].overrides}
    assert overrides["password"].secret and overrides["password"].changed
    assert overrides["password"].version is None
    assert (overrides["host"].version, overrides["host"].current) == ("prod", "prod2")


def test_the_version_page_shows_the_diff_and_no_secret(team):
    obj = connection_object(team)
    link_create(
        user=team.operator,
        obj=obj,
        deployment=team.deployment,
        overrides={"password": OVERRIDE_SECRET},
    )
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2", "password": "x"})
    update = versions_of(obj)[-1]
    page = browser(team.author).get(f"/workspaces/{team.workspace.pk}/versions/{update.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-field="host"' in html and "<code>h1</code>" in html and "<code>h2</code>" in html
    assert "<strong>changed</strong>" in html
    for secret in (SECRET, OVERRIDE_SECRET, "x</code>"):
        assert secret not in html
    # An Author sees the diff but is not offered the restore.
    assert "Only Operators and Owners can restore versions." in html
    assert 'name="confirm"' not in html


def test_the_diff_is_in_the_api_without_secret_values(api, team):
    obj = connection_object(team)
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2", "password": "x"})
    (version,) = versions_of(obj)
    url = (
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{obj.pk}"
        f"/versions/{version.pk}/diff"
    )
    response = api.as_user(team.author).get(url)
    assert response.status_code == 200
    fields = {f["field"]: f for f in response.json()["fieldChanges"]}
    assert fields["host"] == {
        "field": "host",
        "secret": False,
        "changed": True,
        "version": "h1",
        "current": "h2",
    }
    assert fields["password"] == {"field": "password", "secret": True, "changed": True}
    assert SECRET.encode() not in response.content
    assert api.as_user(team.member).get(url).status_code == 403


def test_the_versions_list_in_the_api_names_the_deployment(api, team):
    obj = connection_object(team)
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    url = f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{obj.pk}/versions"
    (version,) = api.as_user(team.author).get(url).json()["versions"]
    assert version["reason"] == "LINK"
    assert version["detail"]["deploymentName"] == team.deployment.name


# Restore asks first


def test_a_restore_post_without_confirmation_changes_nothing_and_shows_the_diff(team):
    obj = connection_object(team)
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2"})
    (version,) = versions_of(obj)
    restore = f"/workspaces/{team.workspace.pk}/versions/{version.pk}/restore/"
    page = browser(team.operator).post(restore)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Nothing has changed yet." in html and "h2 → h1" in html
    obj.refresh_from_db()
    assert obj.values["host"] == "h2"
    assert len(versions_of(obj)) == 1
    assert not AuditEvent.objects.filter(action="environment_object.restore").exists()
    done = browser(team.operator).post(restore, {"confirm": "restore"})
    assert done.status_code == 302
    obj.refresh_from_db()
    assert obj.values["host"] == "h1"


def test_a_deleted_objects_restore_asks_first_too(team):
    from envmanager.services import environment_object_delete

    obj = connection_object(team)
    environment_object_delete(user=team.operator, obj=obj)
    (version,) = versions_of(obj)
    restore = f"/workspaces/{team.workspace.pk}/versions/{version.pk}/restore/"
    page = browser(team.operator).post(restore)
    assert page.status_code == 200 and "Restoring brings back" in page.content.decode()
    assert not EnvironmentObject.objects.filter(pk=obj.pk).exists()


def test_authors_cannot_restore_even_with_confirmation(team):
    obj = connection_object(team)
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2"})
    (version,) = versions_of(obj)
    restore = f"/workspaces/{team.workspace.pk}/versions/{version.pk}/restore/"
    browser(team.author).post(restore, {"confirm": "restore"})
    obj.refresh_from_db()
    assert obj.values["host"] == "h2"


# A secret stays secret


@pytest.mark.parametrize("role", ["OWNER", "OPERATOR"])
def test_no_role_can_make_a_secret_variable_plain(team, role):
    obj = secret_variable(team)
    with pytest.raises(InvalidInput) as refused:
        environment_object_update(user=team.user(role), obj=obj, values={"is_secret": False})
    assert "a secret stays secret" in refused.value.message
    assert VARIABLE_SECRET not in refused.value.message
    obj.refresh_from_db()
    assert obj.values["is_secret"] is True
    assert versions_of(obj) == []
    assert not AuditEvent.objects.filter(action="environment_object.update").exists()


@pytest.mark.parametrize("role", ["AUTHOR", "MEMBER"])
def test_authors_and_members_cannot_touch_the_flag_at_all(team, role):
    obj = secret_variable(team)
    with pytest.raises(NotPermitted):
        environment_object_update(user=team.user(role), obj=obj, values={"is_secret": False})


def test_making_a_variable_secret_is_audited_as_an_update_of_its_flag(team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="SERVICE_TOKEN",
        values={"value": "v"},
    )
    environment_object_update(user=team.operator, obj=obj, values={"is_secret": True})
    event = AuditEvent.objects.get(action="environment_object.update")
    assert event.fields == ["is_secret"] and event.actor_id == team.operator.pk


def test_the_api_refuses_lowering_the_flag_with_the_field_named(api, team):
    obj = secret_variable(team)
    response = api.as_user(team.owner).patch(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{obj.pk}",
        {"airflowVariable": {"isSecret": False}},
        format="json",
    )
    assert response.status_code == 400
    assert VARIABLE_SECRET.encode() not in response.content
    assert [e["field"] for e in response.json()["fieldErrors"]] == ["airflowVariable.isSecret"]
    obj.refresh_from_db()
    assert obj.values["is_secret"] is True


def test_the_edit_page_keeps_the_secret_box_ticked(team):
    obj = secret_variable(team)
    page = browser(team.owner).get(f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/")
    html = page.content.decode()
    assert "A secret stays secret" in html
    assert VARIABLE_SECRET not in html


def test_restoring_a_version_from_before_the_flag_keeps_it_secret(team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="api_token",
        values={"value": "old-plain"},
    )
    environment_object_update(
        user=team.operator, obj=obj, values={"value": VARIABLE_SECRET, "is_secret": True}
    )
    (before,) = versions_of(obj)
    assert version_diff(version=before).secret_flag_kept
    environment_object_restore_version(user=team.owner, version=before)
    obj.refresh_from_db()
    assert obj.values == {"value": "old-plain", "description": None, "is_secret": True}


def test_members_and_other_tenants_get_a_404_for_a_version_page(team, other_team):
    obj = connection_object(team)
    environment_object_update(user=team.operator, obj=obj, values={"host": "h2"})
    (version,) = versions_of(obj)
    url = f"/workspaces/{team.workspace.pk}/versions/{version.pk}/"
    assert browser(team.member).get(url).status_code == 404
    theirs = f"/workspaces/{other_team.workspace.pk}/versions/{version.pk}/"
    assert browser(other_team.owner).get(theirs).status_code == 404
    assert browser(other_team.owner).get(url).status_code == 404
    restore = f"/workspaces/{other_team.workspace.pk}/versions/{version.pk}/restore/"
    assert browser(other_team.owner).post(restore, {"confirm": "restore"}).status_code == 404
    obj.refresh_from_db()
    assert obj.values["host"] == "h2"
