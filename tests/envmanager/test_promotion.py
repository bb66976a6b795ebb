import pytest
from guardian.shortcuts import assign_perm

from envmanager.kernel.errors import InvalidInput, NotPermitted
from envmanager.models import EnvironmentObject, Link
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import environment_object_create, link_create
from envmanager.services import promotion as promotion_module
from envmanager.services.promotion import environment_object_promote

VALUES = {
    "CONNECTION": {
        "conn_type": "postgres",
        "host": "h",
        "password": "pw",
        "port": 5432,
        "extra": {"a": "1", "b": "2"},
    },
    "AIRFLOW_VARIABLE": {"value": "v", "description": "d"},
    "ENVIRONMENT_VARIABLE": {"value": "v", "is_secret": True},
    "METRICS_EXPORT": {"endpoint": "https://prom.example.com/write", "labels": {"a": "b"}},
}
KEYS = {
    "CONNECTION": "warehouse",
    "AIRFLOW_VARIABLE": "mode",
    "ENVIRONMENT_VARIABLE": "MODE",
    "METRICS_EXPORT": "prom",
}


def local(team, object_type, **values):
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type=object_type,
        key=KEYS[object_type],
        values={**VALUES[object_type], **values},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )


def resolved(deployment):
    return {
        t: {k: r.values for k, r in items.items()}
        for t, items in deployment_resolved_environment(deployment).items()
    }


def promote(team, obj, user=None):
    confirm = obj.key if obj.object_type == "ENVIRONMENT_VARIABLE" else None
    return environment_object_promote(user=user or team.operator, obj=obj, confirm_key=confirm)


@pytest.mark.parametrize("object_type", list(VALUES))
def test_promotion_keeps_the_deployment_resolving_the_same(team, object_type):
    obj = local(team, object_type)
    before = resolved(team.deployment)
    promoted, override = promote(team, obj)
    assert (promoted.pk, promoted.scope, override) == (obj.pk, "WORKSPACE", False)
    assert resolved(team.deployment) == before
    assert [link.deployment_id for link in promoted.links.all()] == [team.deployment.pk]
    # It can now be linked elsewhere.
    link_create(user=team.operator, obj=promoted, deployment=team.other_deployment)
    assert KEYS[object_type] in resolved(team.other_deployment)[object_type]


@pytest.mark.parametrize("object_type", list(VALUES))
@pytest.mark.parametrize(
    ("role", "allowed"), [("OWNER", True), ("OPERATOR", True), ("AUTHOR", False), ("MEMBER", False)]
)
def test_who_may_promote(team, object_type, role, allowed):
    obj = local(team, object_type)
    if allowed:
        promote(team, obj, team.user(role))
    else:
        with pytest.raises(NotPermitted):
            promote(team, obj, team.user(role))
        assert EnvironmentObject.objects.get(pk=obj.pk).scope == "DEPLOYMENT"


def test_a_per_deployment_grant_alone_is_not_enough(team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    obj = local(team, "CONNECTION")
    with pytest.raises(NotPermitted):
        promote(team, obj, team.author)


def test_an_outsider_may_not_promote(team, other_team):
    with pytest.raises(NotPermitted):
        promote(team, local(team, "CONNECTION"), other_team.owner)


def test_a_workspace_object_or_its_override_is_refused(team):
    ws = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="shared",
        values=VALUES["CONNECTION"],
    )
    link_create(user=team.owner, obj=ws, deployment=team.deployment, overrides={"host": "x"})
    with pytest.raises(InvalidInput) as error:
        promote(team, ws)
    assert "override" in error.value.message


@pytest.mark.parametrize("typed", [None, "", "mode", "WRONG"])
def test_environment_variables_need_the_typed_key(team, typed):
    obj = local(team, "ENVIRONMENT_VARIABLE")
    with pytest.raises(InvalidInput) as error:
        environment_object_promote(user=team.operator, obj=obj, confirm_key=typed)
    assert "confirmKey" in error.value.field_errors
    assert EnvironmentObject.objects.get(pk=obj.pk).scope == "DEPLOYMENT"


def test_an_existing_key_gets_an_override_with_exactly_the_differing_fields(team):
    ws = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={**VALUES["CONNECTION"], "host": "ws-host", "extra": {"a": "1"}},
    )
    link_create(user=team.owner, obj=ws, deployment=team.other_deployment)
    obj = local(team, "CONNECTION")
    before = resolved(team.deployment)
    promoted, override = promote(team, obj)
    assert (promoted.pk, override) == (ws.pk, True)
    assert not EnvironmentObject.objects.filter(pk=obj.pk).exists()
    link = Link.objects.get(environment_object=ws, deployment=team.deployment)
    assert link.overrides == {"host": "h", "extra": {"a": "1", "b": "2"}}
    assert resolved(team.deployment) == before
    assert resolved(team.other_deployment)["CONNECTION"]["warehouse"]["host"] == "ws-host"


def test_a_failure_midway_changes_nothing(team, monkeypatch):
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={**VALUES["CONNECTION"], "host": "ws-host"},
    )
    obj = local(team, "CONNECTION")
    before = resolved(team.deployment)

    def broken(**kwargs):
        raise RuntimeError("audit storage unavailable")

    # The audit row is written after the local object was deleted and the link created.
    monkeypatch.setattr(promotion_module, "audit_record", broken)
    with pytest.raises(RuntimeError):
        promote(team, obj)
    assert EnvironmentObject.objects.filter(pk=obj.pk, scope="DEPLOYMENT").exists()
    assert resolved(team.deployment) == before


def test_promote_api(api, team, other_team):
    obj = local(team, "ENVIRONMENT_VARIABLE")
    url = f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{obj.pk}/promote"
    assert (
        api.as_user(team.author).post(url, {"confirmKey": "MODE"}, format="json").status_code == 403
    )
    response = api.as_user(team.operator).post(url, {"confirmKey": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["fieldErrors"][0]["field"] == "confirmKey"
    response = api.post(url, {"confirmKey": "MODE"}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "id": obj.pk,
        "objectKey": "MODE",
        "objectType": "ENVIRONMENT_VARIABLE",
        "scope": "WORKSPACE",
        "overrideCreated": False,
    }
    foreign = f"/api/v1/workspaces/{other_team.workspace.pk}/environment-objects/{obj.pk}/promote"
    assert api.as_user(other_team.owner).post(foreign, {}, format="json").status_code == 404
