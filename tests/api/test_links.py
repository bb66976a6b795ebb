"""Links and overrides through the API: create, set, unset (on a link or for every link),
`extra.KEY`, IDE projects, auto-link and its exclusions."""

from deployments.models import IdeProject
from deployments.services import deployment_create
from envmanager.models import Link
from envmanager.selectors import deployment_resolve_one
from tests.api.conftest import assert_no_secret, field_names, object_url, stored


def _link(team, deployment=None, **fields):
    return {"scope": "DEPLOYMENT", "scopeEntityId": (deployment or team.deployment).pk, **fields}


def _patch(api, team, data, body):
    response = api.as_user(team.operator).patch(object_url(team, data["id"]), body, format="json")
    assert response.status_code == 200, response.json()
    return response


def _resolved(deployment, key="warehouse"):
    return deployment_resolve_one(deployment, "CONNECTION", key).values


def test_create_with_links_and_overrides(api, team, create):
    data = create(
        links=[
            _link(team, overrides={"host": "replica.internal", "password": "over-pw-S3CRET"}),
            _link(team, team.other_deployment),
        ]
    )
    first, second = data["links"]
    assert first == {
        "scope": "DEPLOYMENT",
        "scopeEntityId": team.deployment.pk,
        "isAuto": False,
        "overrides": {"host": "replica.internal"},
        "overrideFields": ["host", "password"],
    }
    assert second["overrides"] == {} and second["overrideFields"] == []
    assert _resolved(team.deployment)["password"] == "over-pw-S3CRET"
    assert _resolved(team.other_deployment)["password"] == "conn-pw-S3CRET"


def test_override_values_that_are_secret_never_come_back(api, team, create):
    data = create(
        links=[_link(team, overrides={"password": "over-pw-S3CRET", "extra.token": "x-S3CRET"})]
    )
    response = api.as_user(team.author).get(object_url(team, data["id"]))
    assert b"over-pw-S3CRET" not in response.content and b"x-S3CRET" not in response.content
    assert_no_secret(response)
    assert response.json()["links"][0]["overrideFields"] == ["extra.token", "password"]


def test_patch_links_creates_missing_and_deletes_absent(api, team, create):
    data = create(links=[_link(team)])
    response = _patch(api, team, data, {"links": [_link(team, team.other_deployment)]})
    assert [link["scopeEntityId"] for link in response.json()["links"]] == [
        team.other_deployment.pk
    ]
    assert deployment_resolve_one(team.deployment, "CONNECTION", "warehouse") is None
    assert deployment_resolve_one(team.other_deployment, "CONNECTION", "warehouse")


def test_patch_overrides_merge_and_unset_fields_on_a_link_fall_back(api, team, create):
    data = create(links=[_link(team, overrides={"host": "h1", "port": 6432})])
    _patch(api, team, data, {"links": [_link(team, overrides={"login": "reader"})]})
    assert stored(data["id"]).links.get().overrides == {
        "host": "h1",
        "port": 6432,
        "login": "reader",
    }
    response = _patch(api, team, data, {"links": [_link(team, unsetFields=["host", "port"])]})
    assert response.json()["links"][0]["overrides"] == {"login": "reader"}
    assert _resolved(team.deployment)["host"] == "db.internal"
    assert _resolved(team.deployment)["port"] == 5432


def test_top_level_unset_fields_clears_an_override_on_every_link(api, team, create):
    data = create(
        links=[
            _link(team, overrides={"host": "h1", "login": "a"}),
            _link(team, team.other_deployment, overrides={"host": "h2"}),
        ]
    )
    response = _patch(api, team, data, {"unsetFields": ["host"]})
    assert [link["overrides"] for link in response.json()["links"]] == [{"login": "a"}, {}]


def test_one_key_of_extra_is_overridden_and_unset(api, team, create):
    data = create(links=[_link(team, overrides={"extra.sslmode": "disable"})])
    assert _resolved(team.deployment)["extra"] == {
        "sslmode": "disable",
        "token": "extra-tok-S3CRET",
    }
    assert data["links"][0]["overrideFields"] == ["extra.sslmode"]
    _patch(api, team, data, {"links": [_link(team, unsetFields=["extra.sslmode"])]})
    assert _resolved(team.deployment)["extra"]["sslmode"] == "require"


def test_a_variable_override_round_trips(api, team, create):
    data = create(
        "AIRFLOW_VARIABLE",
        objectKey="batch_size",
        airflowVariable={"value": "500", "isSecret": False},
        links=[_link(team, overrides={"value": "50"})],
    )
    assert data["links"][0]["overrides"] == {"value": "50"}
    resolved = deployment_resolve_one(team.deployment, "AIRFLOW_VARIABLE", "batch_size")
    assert resolved.values["value"] == "50"


def test_a_secret_variable_override_is_listed_but_not_shown(api, team, create):
    data = create("AIRFLOW_VARIABLE", links=[_link(team, overrides={"value": "ov-S3CRET"})])
    assert data["links"][0] == {**data["links"][0], "overrides": {}, "overrideFields": ["value"]}


def test_link_to_an_ide_project(api, team, create):
    project = IdeProject.objects.create(workspace=team.workspace, name="dev")
    data = create(links=[{"scope": "IDE_PROJECT", "scopeEntityId": project.pk}])
    assert data["links"][0]["scope"] == "IDE_PROJECT"
    assert Link.objects.get(ide_project=project).environment_object_id == data["id"]


def test_a_link_to_another_workspaces_deployment_is_a_400(api, team, other_team, create):
    data = create()
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]), {"links": [_link(other_team)]}, format="json"
    )
    assert response.status_code == 400
    assert field_names(response) == ["links[0].scopeEntityId"]


def test_a_field_that_cannot_be_overridden_is_named(api, team, create):
    data = create()
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]),
        {"links": [_link(team, overrides={"description": "x"})]},
        format="json",
    )
    assert response.status_code == 400
    assert field_names(response) == ["links[0].overrides.description"]
    assert response.json()["message"].startswith("links[0].overrides.description:")


def test_an_override_of_the_wrong_json_type_is_named(api, team, create):
    data = create()
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]),
        {"links": [_link(team, overrides={"port": "5432"})]},
        format="json",
    )
    assert response.status_code == 400
    assert field_names(response) == ["links[0].overrides.port"]


def test_a_deployment_listed_twice_is_a_400(api, team, create):
    data = create()
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]), {"links": [_link(team), _link(team)]}, format="json"
    )
    assert response.status_code == 400
    assert field_names(response) == ["links[1].scopeEntityId"]


def test_linking_a_key_the_deployment_already_resolves_is_a_409(api, team, create):
    create("ENVIRONMENT_VARIABLE", scope="DEPLOYMENT", scopeEntityId=team.deployment.pk)
    data = create("ENVIRONMENT_VARIABLE", links=[_link(team, team.other_deployment)])
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]),
        {"links": [_link(team), _link(team, team.other_deployment)]},
        format="json",
    )
    assert response.status_code == 409
    assert field_names(response) == ["links[0].objectKey"]
    # All or nothing: the link that was fine is not half-applied either.
    assert [link.deployment_id for link in stored(data["id"]).links.all()] == [
        team.other_deployment.pk
    ]


def test_a_failed_patch_changes_nothing(api, team, create):
    data = create()
    response = api.as_user(team.operator).patch(
        object_url(team, data["id"]),
        {"objectKey": "renamed", "links": [_link(team, overrides={"description": "x"})]},
        format="json",
    )
    assert response.status_code == 400
    assert stored(data["id"]).key == "warehouse"


def test_a_deployment_scoped_object_cannot_be_linked(api, team, create):
    response = api.as_user(team.operator).post(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects",
        {
            "objectKey": "X",
            "objectType": "ENVIRONMENT_VARIABLE",
            "scope": "DEPLOYMENT",
            "scopeEntityId": team.deployment.pk,
            "environmentVariable": {"value": "1"},
            "links": [_link(team, team.other_deployment)],
        },
        format="json",
    )
    assert response.status_code == 400
    assert field_names(response) == ["links"]


def test_auto_link_links_every_deployment_present_and_future(api, team, create):
    data = create(autoLinkDeployments=True)
    assert [(link["scopeEntityId"], link["isAuto"]) for link in data["links"]] == [
        (team.deployment.pk, True),
        (team.other_deployment.pk, True),
    ]
    later = deployment_create(user=team.owner, workspace=team.workspace, name="dev")
    response = api.as_user(team.author).get(object_url(team, data["id"]))
    assert later.pk in [link["scopeEntityId"] for link in response.json()["links"]]


def test_auto_link_with_overrides_at_creation(api, team, create):
    data = create(autoLinkDeployments=True, links=[_link(team, overrides={"host": "h"})])
    assert [link["overrides"] for link in data["links"]] == [{"host": "h"}, {}]


def test_exclude_linking_unlinks_and_lists_the_exclusion(api, team, create):
    data = create(autoLinkDeployments=True)
    response = api.as_user(team.operator).post(
        f"{object_url(team, data['id'])}/exclude-linking",
        {"scope": "DEPLOYMENT", "scopeEntityId": team.deployment.pk},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["excludeLinks"] == [
        {"scope": "DEPLOYMENT", "scopeEntityId": team.deployment.pk}
    ]
    assert [link["scopeEntityId"] for link in response.json()["links"]] == [
        team.other_deployment.pk
    ]


def test_exclude_linking_of_an_unknown_deployment_is_a_400(api, team, other_team, create):
    data = create(autoLinkDeployments=True)
    response = api.as_user(team.operator).post(
        f"{object_url(team, data['id'])}/exclude-linking",
        {"scope": "DEPLOYMENT", "scopeEntityId": other_team.deployment.pk},
        format="json",
    )
    assert response.status_code == 400
    assert field_names(response) == ["scopeEntityId"]


def test_leaving_an_auto_linked_deployment_out_of_links_excludes_it(api, team, create):
    data = create(autoLinkDeployments=True)
    response = _patch(api, team, data, {"links": [_link(team)]})
    assert response.json()["excludeLinks"] == [
        {"scope": "DEPLOYMENT", "scopeEntityId": team.other_deployment.pk}
    ]


def test_switching_auto_link_off_keeps_the_links_listed(api, team, create):
    data = create(autoLinkDeployments=True)
    response = _patch(api, team, data, {"autoLinkDeployments": False, "links": [_link(team)]})
    assert [(link["scopeEntityId"], link["isAuto"]) for link in response.json()["links"]] == [
        (team.deployment.pk, False)
    ]


def test_switching_auto_link_on_with_links_adds_the_others(api, team, create):
    data = create()
    response = _patch(
        api,
        team,
        data,
        {"autoLinkDeployments": True, "links": [_link(team, overrides={"host": "h"})]},
    )
    links = response.json()["links"]
    assert [link["scopeEntityId"] for link in links] == [
        team.deployment.pk,
        team.other_deployment.pk,
    ]
    assert links[0]["overrides"] == {"host": "h"}
