import pytest
from django.db import IntegrityError, transaction
from guardian.shortcuts import assign_perm

from accounts.models import AuditEvent
from deployments.services import deployment_create
from envmanager.kernel.errors import Conflict, InvalidInput, NotFound, NotPermitted
from envmanager.models import EnvironmentObject, Link, ObjectVersion
from envmanager.selectors import deployment_resolve_one, deployment_resolved_environment
from envmanager.services import (
    auto_link_exclude,
    environment_object_create,
    environment_object_delete,
    environment_object_update,
    link_create,
    link_delete,
    link_set_overrides,
)

PG = {
    "conn_type": "postgres",
    "host": "db.internal",
    "login": "etl",
    "password": "pw1",
    "port": 5432,
    "schema": "analytics",
    "extra": {"sslmode": "require", "region": "eu"},
}


def create(team, object_type="CONNECTION", key="warehouse", values=None, user=None, **kwargs):
    return environment_object_create(
        user=user or team.operator,
        workspace=team.workspace,
        object_type=object_type,
        key=key,
        values=PG if values is None else values,
        **kwargs,
    )


def resolved(deployment, object_type="CONNECTION"):
    return {
        k: r.values for k, r in deployment_resolved_environment(deployment)[object_type].items()
    }


# Keys


@pytest.mark.parametrize(
    ("object_type", "key"),
    [
        ("CONNECTION", "my conn"),
        ("CONNECTION", "x" * 251),
        ("AIRFLOW_VARIABLE", "has/slash"),
        ("AIRFLOW_VARIABLE", "ends-with-newline\n"),
        ("ENVIRONMENT_VARIABLE", "1STARTS_WITH_DIGIT"),
        ("ENVIRONMENT_VARIABLE", "HAS-DASH"),
        ("METRICS_EXPORT", ""),
    ],
)
def test_invalid_keys_are_refused_and_nothing_is_saved(team, object_type, key):
    values = {"CONNECTION": PG, "METRICS_EXPORT": {"endpoint": "https://p.example.com"}}.get(
        object_type, {"value": "v"}
    )
    with pytest.raises(InvalidInput) as error:
        create(team, object_type, key, values)
    assert "key" in error.value.field_errors
    assert not EnvironmentObject.objects.exists()


@pytest.mark.parametrize(
    ("object_type", "key"),
    [
        ("CONNECTION", "aws_default"),
        ("CONNECTION", "team.a:conn/1"),
        ("AIRFLOW_VARIABLE", "config.json-v2"),
        ("ENVIRONMENT_VARIABLE", "_PRIVATE_2"),
    ],
)
def test_airflow_style_keys_are_accepted(team, object_type, key):
    values = PG if object_type == "CONNECTION" else {"value": "v"}
    assert create(team, object_type, key, values).key == key


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({**PG, "extra": "{not json"}, "extra"),
        ({**PG, "extra": "[1, 2]"}, "extra"),
        ({**PG, "port": "eighty"}, "port"),
        ({**PG, "port": 70000}, "port"),
        ({**PG, "conn_type": ""}, "conn_type"),
        ({**PG, "colour": "blue"}, "colour"),
        ({**PG, "extra": {"blob": "x" * (1024 * 1024 + 1)}}, "value"),
    ],
)
def test_bad_connection_values_are_refused(team, values, field):
    with pytest.raises(InvalidInput) as error:
        create(team, values=values)
    assert field in error.value.field_errors
    assert not EnvironmentObject.objects.exists()


def test_workspace_key_is_unique_per_type(team):
    create(team)
    with pytest.raises(Conflict):
        create(team, values={**PG, "host": "other"})
    # Another type may use the same key.
    create(team, "AIRFLOW_VARIABLE", "warehouse", {"value": "x"})


def test_database_refuses_two_workspace_objects_with_one_key(team):
    obj = create(team)
    with pytest.raises(IntegrityError), transaction.atomic():
        EnvironmentObject.objects.create(
            workspace=team.workspace,
            scope="WORKSPACE",
            object_type="CONNECTION",
            key=obj.key,
            values=PG,
        )


def test_database_refuses_two_resolutions_of_one_key_in_a_deployment(team):
    obj = create(team)
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    local = create(team, key="local", scope="DEPLOYMENT", deployment=team.deployment)
    with pytest.raises(IntegrityError), transaction.atomic():
        Link.objects.create(
            environment_object=local,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_key="warehouse",
            overrides={},
        )


# Permissions


@pytest.mark.parametrize("role", ["AUTHOR", "MEMBER"])
def test_authors_and_members_cannot_create_edit_or_delete(team, role):
    with pytest.raises(NotPermitted):
        create(team, user=team.user(role))
    obj = create(team)
    with pytest.raises(NotPermitted):
        environment_object_update(user=team.user(role), obj=obj, values={"host": "x"})
    with pytest.raises(NotPermitted):
        environment_object_delete(user=team.user(role), obj=obj)
    with pytest.raises(NotPermitted):
        link_create(user=team.user(role), obj=obj, deployment=team.deployment)


def test_other_workspace_owner_cannot_touch_objects(team, other_team):
    obj = create(team)
    with pytest.raises(NotPermitted):
        environment_object_update(user=other_team.owner, obj=obj, values={"host": "x"})


def test_per_deployment_grant_edits_that_deployments_own_objects(team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    obj = create(team, user=team.author, scope="DEPLOYMENT", deployment=team.deployment)
    environment_object_update(user=team.author, obj=obj, values={"host": "new"})
    with pytest.raises(NotPermitted):
        create(
            team, key="k2", user=team.author, scope="DEPLOYMENT", deployment=team.other_deployment
        )
    with pytest.raises(NotPermitted):
        create(team, key="k3", user=team.author)


# Updates


def test_update_keeps_secrets_not_given(team):
    obj = create(team)
    obj = environment_object_update(user=team.operator, obj=obj, values={"host": "new-host"})
    obj.refresh_from_db()
    assert obj.values["host"] == "new-host"
    assert obj.values["password"] == "pw1"
    assert obj.updated_by == team.operator


def test_bad_update_changes_nothing(team):
    obj = create(team)
    with pytest.raises(InvalidInput):
        environment_object_update(user=team.operator, obj=obj, values={"port": "x", "host": "h2"})
    obj.refresh_from_db()
    assert obj.values == {**PG, "description": None}


def test_renaming_a_key_follows_into_links(team):
    obj = create(team)
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    environment_object_update(user=team.operator, obj=obj, key="warehouse_v2")
    assert set(resolved(team.deployment)) == {"warehouse_v2"}


# Links, overrides and resolution


def test_unlinked_workspace_object_resolves_nowhere(team):
    create(team)
    assert resolved(team.deployment) == {}


def test_link_makes_object_resolve_with_its_values(team):
    obj = create(team)
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    assert resolved(team.deployment)["warehouse"]["host"] == "db.internal"
    assert resolved(team.other_deployment) == {}


def test_override_changes_one_deployment_only(team):
    obj = create(team)
    link = link_create(
        user=team.operator,
        obj=obj,
        deployment=team.deployment,
        overrides={"password": "prod-pw", "extra.region": "us"},
    )
    link_create(user=team.operator, obj=obj, deployment=team.other_deployment)
    prod = resolved(team.deployment)["warehouse"]
    assert prod["password"] == "prod-pw"
    assert prod["extra"] == {"sslmode": "require", "region": "us"}
    assert resolved(team.other_deployment)["warehouse"]["password"] == "pw1"
    item = deployment_resolve_one(team.deployment, "CONNECTION", "warehouse")
    assert item.overridden_fields == ("extra.region", "password")
    # Unset falls back to the Workspace value.
    link_set_overrides(user=team.operator, link=link, unset_fields=["password"])
    assert resolved(team.deployment)["warehouse"]["password"] == "pw1"
    assert resolved(team.deployment)["warehouse"]["extra"]["region"] == "us"


def test_unsetting_extra_unsets_its_single_key_overrides_too(team):
    obj = create(team)
    link = link_create(
        user=team.operator,
        obj=obj,
        deployment=team.deployment,
        overrides={"extra": {"only": "this"}, "extra.region": "us", "password": "prod-pw"},
    )
    link_set_overrides(user=team.operator, link=link, unset_fields=["extra"])
    assert resolved(team.deployment)["warehouse"]["extra"] == PG["extra"]
    assert Link.objects.get(pk=link.pk).overrides == {"password": "prod-pw"}


def test_unsetting_a_field_that_cannot_be_overridden_is_refused(team):
    obj = create(team)
    link = link_create(
        user=team.operator, obj=obj, deployment=team.deployment, overrides={"password": "p"}
    )
    with pytest.raises(InvalidInput, match="'description'"):
        link_set_overrides(
            user=team.operator, link=link, overrides={"host": "h"}, unset_fields=["description"]
        )
    assert Link.objects.get(pk=link.pk).overrides == {"password": "p"}


def test_whole_extra_override_replaces_extra(team):
    obj = create(team)
    link_create(
        user=team.operator,
        obj=obj,
        deployment=team.deployment,
        overrides={"extra": {"only": "this"}},
    )
    assert resolved(team.deployment)["warehouse"]["extra"] == {"only": "this"}


def test_workspace_change_reaches_linked_deployments_but_not_overridden_fields(team):
    obj = create(team)
    link_create(user=team.operator, obj=obj, deployment=team.deployment, overrides={"host": "h"})
    environment_object_update(user=team.operator, obj=obj, values={"host": "new", "login": "l2"})
    value = resolved(team.deployment)["warehouse"]
    assert (value["host"], value["login"]) == ("h", "l2")


@pytest.mark.parametrize(
    ("object_type", "values", "overrides", "field"),
    [
        ("CONNECTION", PG, {"description": "x"}, "overrides.description"),
        ("AIRFLOW_VARIABLE", {"value": "v"}, {"description": "x"}, "overrides.description"),
        ("ENVIRONMENT_VARIABLE", {"value": "v"}, {"is_secret": True}, "overrides.is_secret"),
        ("CONNECTION", PG, {"port": "x"}, "overrides.port"),
    ],
)
def test_only_overridable_fields_can_be_overridden(team, object_type, values, overrides, field):
    obj = create(team, object_type, "k1", values)
    with pytest.raises(InvalidInput) as error:
        link_create(user=team.operator, obj=obj, deployment=team.deployment, overrides=overrides)
    assert field in error.value.field_errors
    assert not Link.objects.filter(environment_object=obj).exists()


def test_deployment_scoped_object_resolves_only_on_its_deployment(team):
    create(
        team,
        "AIRFLOW_VARIABLE",
        "mode",
        {"value": "prod"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    assert resolved(team.deployment, "AIRFLOW_VARIABLE") == {
        "mode": {"value": "prod", "description": None, "is_secret": False}
    }
    assert resolved(team.other_deployment, "AIRFLOW_VARIABLE") == {}


def test_deployment_scoped_key_clashing_with_a_link_is_a_conflict(team):
    obj = create(team)
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    with pytest.raises(Conflict) as error:
        create(team, scope="DEPLOYMENT", deployment=team.deployment)
    assert "linked Workspace object" in error.value.message
    # The other Deployment may have its own.
    create(team, scope="DEPLOYMENT", deployment=team.other_deployment)


def test_linking_onto_a_deployments_own_key_is_a_conflict(team):
    create(team, scope="DEPLOYMENT", deployment=team.deployment)
    obj = create(team)
    with pytest.raises(Conflict) as error:
        link_create(user=team.operator, obj=obj, deployment=team.deployment)
    assert "its own objects" in error.value.message


def test_deployment_scoped_objects_cannot_be_linked(team):
    local = create(team, scope="DEPLOYMENT", deployment=team.deployment)
    with pytest.raises(InvalidInput):
        link_create(user=team.operator, obj=local, deployment=team.other_deployment)


def test_auto_link_reaches_present_and_future_deployments_except_excluded(team):
    obj = create(team, auto_link_deployments=True)
    assert "warehouse" in resolved(team.deployment)
    assert "warehouse" in resolved(team.other_deployment)
    auto_link_exclude(user=team.operator, obj=obj, deployment=team.other_deployment)
    assert "warehouse" not in resolved(team.other_deployment)
    new = deployment_create(user=team.owner, workspace=team.workspace, name="dev")
    assert "warehouse" in resolved(new)
    # Switching auto-link off removes the automatic links.
    environment_object_update(user=team.operator, obj=obj, auto_link_deployments=False)
    assert "warehouse" not in resolved(team.deployment)
    assert "warehouse" not in resolved(new)


def test_unlinking_an_auto_linked_object_keeps_it_away(team):
    obj = create(team, auto_link_deployments=True)
    link = Link.objects.get(environment_object=obj, deployment=team.deployment)
    link_delete(user=team.operator, link=link)
    environment_object_update(user=team.operator, obj=obj, values={"host": "again"})
    assert "warehouse" not in resolved(team.deployment)
    assert obj.auto_link_excluded.filter(pk=team.deployment.pk).exists()


def test_ide_project_links(team):
    from deployments.services import ide_project_create

    project = ide_project_create(user=team.owner, workspace=team.workspace, name="notebooks")
    obj = create(team)
    link = link_create(user=team.operator, obj=obj, ide_project=project)
    assert link.target == project
    with pytest.raises(InvalidInput):
        link_create(
            user=team.operator,
            obj=create(team, key="k2"),
            ide_project=project,
            overrides={"host": "x"},
        )


def test_delete_removes_it_from_every_deployment(team):
    obj = create(team, auto_link_deployments=True)
    environment_object_delete(user=team.operator, obj=obj)
    assert resolved(team.deployment) == {}
    assert not Link.objects.exists()


def test_resolving_a_deployment_takes_one_query(team, django_assert_num_queries):
    for i in range(30):
        obj = create(team, key=f"c{i}")
        link_create(
            user=team.operator, obj=obj, deployment=team.deployment, overrides={"host": f"h{i}"}
        )
    with django_assert_num_queries(1):
        env = deployment_resolved_environment(team.deployment)
    assert len(env["CONNECTION"]) == 30


def test_an_update_from_a_stale_read_keeps_what_changed_meanwhile(team):
    obj = create(team)
    stale = EnvironmentObject.objects.get(pk=obj.pk)
    environment_object_update(user=team.operator, obj=obj, values={"host": "new-host"})
    environment_object_update(user=team.owner, obj=stale, values={"login": "new-login"})
    obj.refresh_from_db()
    assert obj.values["host"] == "new-host" and obj.values["login"] == "new-login"
    assert obj.values["password"] == "pw1"


def test_a_delete_from_a_stale_read_keeps_the_last_values_to_restore(team):
    obj = create(team)
    stale = EnvironmentObject.objects.get(pk=obj.pk)
    environment_object_update(user=team.operator, obj=obj, values={"password": "pw2"})
    environment_object_delete(user=team.operator, obj=stale)
    saved = ObjectVersion.objects.filter(environment_object_id=obj.pk, reason="DELETE").get()
    assert saved.snapshot["values"]["password"] == "pw2"


def test_changing_an_object_deleted_meanwhile_is_a_clear_not_found(team):
    obj = create(team)
    stale = EnvironmentObject.objects.get(pk=obj.pk)
    environment_object_delete(user=team.operator, obj=obj)
    with pytest.raises(NotFound):
        environment_object_update(user=team.operator, obj=stale, values={"host": "x"})
    with pytest.raises(NotFound):
        environment_object_delete(user=team.operator, obj=stale)


def test_linking_an_excluded_deployment_by_hand_ends_its_exclusion(team):
    obj = create(team, auto_link_deployments=True)
    auto_link_exclude(user=team.operator, obj=obj, deployment=team.other_deployment)
    link_create(user=team.operator, obj=obj, deployment=team.other_deployment)
    assert not obj.auto_link_excluded.exists()
    assert "warehouse" in resolved(team.other_deployment)
    # Switching auto-link off and on again keeps it linked, now as part of the auto-link.
    environment_object_update(user=team.operator, obj=obj, auto_link_deployments=False)
    environment_object_update(user=team.operator, obj=obj, auto_link_deployments=True)
    assert "warehouse" in resolved(team.other_deployment)
    event = AuditEvent.objects.filter(action="link.create").latest("id")
    assert event.detail == {"autoLinkExclusionEnded": True}
