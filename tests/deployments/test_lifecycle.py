"""Renaming and deleting Deployments, editing and deleting IDE projects, and what removing a
member takes: the services, the API and the pages (SQLite and PostgreSQL alike)."""

import pytest
from django.test import Client
from django.urls import reverse
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import assign_perm

from accounts.models import AuditEvent, Role
from accounts.services import membership_remove, membership_set
from deployments.models import Deployment, DeploymentToken, IdeProject
from deployments.services import (
    deployment_delete,
    deployment_token_create,
    deployment_update,
    ide_project_create,
    ide_project_delete,
    ide_project_update,
)
from envmanager.kernel.errors import Conflict, InvalidInput, NotPermitted
from envmanager.lookups import document_cache, environment_version
from envmanager.models import EnvironmentObject, Link, MigrationItem, MigrationRun, ObjectVersion
from envmanager.services import (
    environment_object_create,
    environment_object_update,
    link_create,
)


def _lookup(path: str, token: str):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def doomed(team):
    """team.deployment with one of everything deletion is about: a Workspace object linked to
    it (with an override) and to the other Deployment, an object of its own (with history), a
    token, a finished migration run with undo data, a per-Deployment grant."""
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "db.internal", "password": "ws-pw"},
    )
    link_create(
        user=team.operator, obj=conn, deployment=team.deployment, overrides={"password": "prod"}
    )
    link_create(user=team.operator, obj=conn, deployment=team.other_deployment)
    own = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="mode",
        values={"value": "prod"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    environment_object_update(user=team.operator, obj=own, values={"value": "production"})
    _, plain = deployment_token_create(user=team.operator, deployment=team.deployment, name="af")
    run = MigrationRun.objects.create(
        workspace=team.workspace,
        deployment=team.deployment,
        object_type="CONNECTION",
        status=MigrationRun.Status.SUCCEEDED,
    )
    MigrationItem.objects.create(run=run, object_key="legacy", environment_object=conn)
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    team.conn, team.own, team.plain, team.run = conn, own, plain, run
    return team


def _deployment_rows(deployment_id: int) -> dict[str, int]:
    return {
        "deployment": Deployment.objects.filter(pk=deployment_id).count(),
        "objects": EnvironmentObject.objects.filter(deployment_id=deployment_id).count(),
        "links": Link.objects.filter(deployment_id=deployment_id).count(),
        "tokens": DeploymentToken.objects.filter(deployment_id=deployment_id).count(),
        "runs": MigrationRun.objects.filter(deployment_id=deployment_id).count(),
        "grants": UserObjectPermission.objects.filter(object_pk=str(deployment_id)).count(),
        "audit": AuditEvent.objects.filter(deployment_id=deployment_id).count(),
    }


# Deleting a Deployment: the service


def test_owner_deletes_a_deployment_and_only_what_is_its_own(doomed):
    pk = doomed.deployment.pk
    assert _lookup("/api/v1/lookup/connections/warehouse", doomed.plain).status_code == 200
    audit_before = AuditEvent.objects.filter(deployment_id=pk).count()

    deleted = deployment_delete(user=doomed.owner, deployment=doomed.deployment)

    assert deleted == {
        "name": "production",
        "objectsDeleted": 1,
        "linksRemoved": 1,
        "overridesRemoved": 1,
        "migrationRunsDeleted": 1,
        "tokensRevoked": 1,
    }
    rows = _deployment_rows(pk)
    assert {k: v for k, v in rows.items() if k != "audit"} == {
        "deployment": 0,
        "objects": 0,
        "links": 0,
        "tokens": 0,
        "runs": 0,
        "grants": 0,
    }
    assert not GroupObjectPermission.objects.filter(
        object_pk=str(pk), content_type__model="deployment"
    ).exists()
    assert not MigrationItem.objects.filter(run_id=doomed.run.pk).exists()
    # Its own object's history goes too: nothing left to offer for a restore.
    assert not ObjectVersion.objects.filter(environment_object_id=doomed.own.pk).exists()
    # The Workspace object stays, still linked (with its values) to the other Deployment.
    doomed.conn.refresh_from_db()
    assert doomed.conn.values["password"] == "ws-pw"
    assert list(doomed.conn.links.values_list("deployment_id", flat=True)) == [
        doomed.other_deployment.pk
    ]
    # The secrets backend is turned away at once, for every kind of lookup.
    for path in (
        "/api/v1/lookup/connections/warehouse",
        "/api/v1/lookup/variables/mode",
        "/api/v1/lookup/environment",
    ):
        assert _lookup(path, doomed.plain).status_code == 401, path
    # The audit trail stays readable: earlier rows about it remain, the deletion names it.
    assert AuditEvent.objects.filter(deployment_id=pk).count() == audit_before + 1
    event = AuditEvent.objects.get(action="deployment.delete")
    assert (event.deployment_id, event.actor, event.detail["name"]) == (
        pk,
        doomed.owner,
        "production",
    )


def test_deletion_refused_while_a_migration_run_is_active_changes_nothing(doomed):
    MigrationRun.objects.create(
        workspace=doomed.workspace,
        deployment=doomed.deployment,
        object_type="AIRFLOW_VARIABLE",
        status=MigrationRun.Status.WAITING,
    )
    before = _deployment_rows(doomed.deployment.pk)
    versions = ObjectVersion.objects.count()

    with pytest.raises(Conflict, match="migration run in progress"):
        deployment_delete(user=doomed.owner, deployment=doomed.deployment)

    assert _deployment_rows(doomed.deployment.pk) == before
    assert ObjectVersion.objects.count() == versions
    assert _lookup("/api/v1/lookup/connections/warehouse", doomed.plain).status_code == 200


@pytest.mark.parametrize("role", ["operator", "author", "member"])
def test_only_owners_delete_deployments(doomed, role):
    before = _deployment_rows(doomed.deployment.pk)
    with pytest.raises(NotPermitted, match="Owners only"):
        deployment_delete(user=doomed.user(role), deployment=doomed.deployment)
    assert _deployment_rows(doomed.deployment.pk) == before


def test_a_per_deployment_grant_does_not_allow_deletion(doomed):
    # doomed.author holds update on this very Deployment.
    with pytest.raises(NotPermitted):
        deployment_delete(user=doomed.author, deployment=doomed.deployment)
    assert Deployment.objects.filter(pk=doomed.deployment.pk).exists()


def test_deletion_needs_the_name_typed_as_it_is_now(doomed):
    before = _deployment_rows(doomed.deployment.pk)
    with pytest.raises(InvalidInput, match="Type the Deployment's name"):
        deployment_delete(user=doomed.owner, deployment=doomed.deployment, confirm_name="staging")
    # Renamed since the page was opened: the old name no longer confirms.
    stale = Deployment.objects.get(pk=doomed.deployment.pk)
    deployment_update(user=doomed.owner, deployment=doomed.deployment, name="prod-eu")
    with pytest.raises(InvalidInput):
        deployment_delete(user=doomed.owner, deployment=stale, confirm_name="production")
    after = _deployment_rows(doomed.deployment.pk)
    assert after == {**before, "audit": before["audit"] + 1}  # the rename's row only
    deployment_delete(user=doomed.owner, deployment=stale, confirm_name=" prod-eu ")
    assert not Deployment.objects.filter(pk=doomed.deployment.pk).exists()


def test_deleting_forgets_the_deployments_document_held_in_memory(
    doomed, django_capture_on_commit_callbacks
):
    pk = doomed.deployment.pk
    document_cache.get(pk, environment_version(pk))
    assert pk in document_cache._documents
    with django_capture_on_commit_callbacks(execute=True):
        deployment_delete(user=doomed.owner, deployment=doomed.deployment)
    assert pk not in document_cache._documents


def test_rename_is_audited_with_both_names_and_keeps_tokens_working(doomed):
    deployment_update(user=doomed.operator, deployment=doomed.deployment, name="  prod-eu ")
    doomed.deployment.refresh_from_db()
    assert doomed.deployment.name == "prod-eu"
    event = AuditEvent.objects.filter(action="deployment.update").latest("id")
    assert event.fields == ["name"]
    assert event.detail == {"name": "prod-eu", "previousName": "production"}
    assert _lookup("/api/v1/lookup/variables/mode", doomed.plain).json() == {"value": "production"}


def test_rename_to_a_taken_name_is_refused(team):
    with pytest.raises(Conflict, match="already exists"):
        deployment_update(user=team.owner, deployment=team.deployment, name="staging")
    team.deployment.refresh_from_db()
    assert team.deployment.name == "production"


# IDE projects: the services


@pytest.fixture
def project(team):
    project = ide_project_create(
        user=team.operator, workspace=team.workspace, name="notebooks", description="Ad hoc"
    )
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres"},
    )
    link_create(user=team.operator, obj=conn, ide_project=project)
    team.project, team.conn = project, conn
    return team


def test_ide_project_edit_is_audited_and_keeps_its_links(project):
    updated = ide_project_update(
        user=project.operator, project=project.project, name="lab", description="Shared lab"
    )
    assert (updated.name, updated.description) == ("lab", "Shared lab")
    assert Link.objects.filter(ide_project=project.project).count() == 1
    event = AuditEvent.objects.filter(action="ide_project.update").get()
    assert event.fields == ["description", "name"]
    assert event.detail == {
        "ideProjectId": project.project.pk,
        "name": "lab",
        "previousName": "notebooks",
    }


def test_ide_project_edit_refuses_a_taken_or_empty_name(project):
    ide_project_create(user=project.operator, workspace=project.workspace, name="taken")
    with pytest.raises(Conflict):
        ide_project_update(user=project.operator, project=project.project, name="taken")
    with pytest.raises(InvalidInput):
        ide_project_update(user=project.operator, project=project.project, name="  ")
    project.project.refresh_from_db()
    assert project.project.name == "notebooks"
    assert not AuditEvent.objects.filter(action="ide_project.update").exists()


def test_ide_project_delete_removes_its_links_not_the_objects(project):
    deleted = ide_project_delete(user=project.operator, project=project.project)
    assert deleted == {"name": "notebooks", "linksRemoved": 1}
    assert not IdeProject.objects.filter(pk=project.project.pk).exists()
    assert not Link.objects.filter(ide_project_id=project.project.pk).exists()
    assert EnvironmentObject.objects.filter(pk=project.conn.pk).exists()
    event = AuditEvent.objects.get(action="ide_project.delete")
    assert event.detail == {
        "ideProjectId": project.project.pk,
        "name": "notebooks",
        "linksRemoved": 1,
    }


@pytest.mark.parametrize("role", ["author", "member"])
def test_authors_and_members_neither_edit_nor_delete_ide_projects(project, role):
    with pytest.raises(NotPermitted):
        ide_project_update(user=project.user(role), project=project.project, name="x")
    with pytest.raises(NotPermitted):
        ide_project_delete(user=project.user(role), project=project.project)
    project.project.refresh_from_db()
    assert project.project.name == "notebooks"
    assert Link.objects.filter(ide_project=project.project).count() == 1


# Members: removing takes the per-Deployment grants


def test_a_removed_member_readded_does_not_regain_old_deployment_grants(team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    assert team.author.has_perm("deployments.update_deployment", team.deployment)
    membership_remove(actor=team.owner, workspace=team.workspace, user=team.author)
    event = AuditEvent.objects.filter(action="membership.remove").latest("id")
    assert event.detail["grantsRemoved"] == 1

    membership_set(
        actor=team.owner, workspace=team.workspace, email=team.author.email, role=Role.AUTHOR
    )
    author = type(team.author).objects.get(pk=team.author.pk)  # no cached permissions
    assert not author.has_perm("deployments.update_deployment", team.deployment)
    with pytest.raises(NotPermitted):
        deployment_update(user=author, deployment=team.deployment, name="mine")


def test_removing_a_member_keeps_their_grants_in_other_workspaces(team, other_team):
    membership_set(
        actor=other_team.owner,
        workspace=other_team.workspace,
        email=team.author.email,
        role=Role.AUTHOR,
    )
    assign_perm("deployments.update_deployment", team.author, other_team.deployment)
    membership_remove(actor=team.owner, workspace=team.workspace, user=team.author)
    author = type(team.author).objects.get(pk=team.author.pk)
    assert author.has_perm("deployments.update_deployment", other_team.deployment)


def test_only_owners_remove_members_and_a_refusal_keeps_the_grant(team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    with pytest.raises(NotPermitted):
        membership_remove(actor=team.operator, workspace=team.workspace, user=team.author)
    assert UserObjectPermission.objects.filter(user=team.author).count() == 1


# The API


def test_api_owner_deletes_a_deployment(api, doomed):
    url = f"/api/v1/workspaces/{doomed.workspace.pk}/deployments/{doomed.deployment.pk}"
    response = api.as_user(doomed.owner).delete(url)
    assert response.status_code == 204
    assert not Deployment.objects.filter(pk=doomed.deployment.pk).exists()
    assert _lookup("/api/v1/lookup/variables/mode", doomed.plain).status_code == 401
    assert api.get(url).status_code == 404


def test_api_operator_may_not_delete_a_deployment(api, doomed):
    url = f"/api/v1/workspaces/{doomed.workspace.pk}/deployments/{doomed.deployment.pk}"
    before = _deployment_rows(doomed.deployment.pk)
    response = api.as_user(doomed.operator).delete(url)
    assert response.status_code == 403
    body = response.json()
    assert body["statusCode"] == 403 and "Owners only" in body["message"] and body["requestId"]
    assert _deployment_rows(doomed.deployment.pk) == before


def test_api_deletion_during_a_migration_run_is_a_409(api, doomed):
    MigrationRun.objects.create(
        workspace=doomed.workspace,
        deployment=doomed.deployment,
        object_type="CONNECTION",
        status=MigrationRun.Status.COPYING,
    )
    url = f"/api/v1/workspaces/{doomed.workspace.pk}/deployments/{doomed.deployment.pk}"
    response = api.as_user(doomed.owner).delete(url)
    assert response.status_code == 409
    assert "migration run in progress" in response.json()["message"]
    assert Deployment.objects.filter(pk=doomed.deployment.pk).exists()


def test_api_another_workspaces_deployment_is_a_404(api, team, other_team):
    url = f"/api/v1/workspaces/{other_team.workspace.pk}/deployments/{other_team.deployment.pk}"
    assert api.as_user(team.owner).delete(url).status_code == 404
    assert Deployment.objects.filter(pk=other_team.deployment.pk).exists()


def test_api_rename_a_deployment(api, team):
    url = f"/api/v1/workspaces/{team.workspace.pk}/deployments/{team.deployment.pk}"
    response = api.as_user(team.operator).patch(url, {"name": "prod-eu"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "prod-eu"


def test_api_ide_project_read_edit_delete(api, project):
    url = f"/api/v1/workspaces/{project.workspace.pk}/ide-projects/{project.project.pk}"
    client = api.as_user(project.operator)
    assert client.get(url).json()["name"] == "notebooks"
    response = client.patch(url, {"description": "Shared"}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("notebooks", "Shared")
    assert client.patch(url, {"name": ""}, format="json").status_code == 400
    assert client.patch(url, {"nmae": "x"}, format="json").status_code == 400
    ide_project_create(user=project.operator, workspace=project.workspace, name="taken")
    conflict = client.patch(url, {"name": "taken"}, format="json")
    assert conflict.status_code == 409 and conflict.json()["fieldErrors"][0]["field"] == "name"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert EnvironmentObject.objects.filter(pk=project.conn.pk).exists()


def test_api_authors_may_not_edit_or_delete_ide_projects(api, project):
    url = f"/api/v1/workspaces/{project.workspace.pk}/ide-projects/{project.project.pk}"
    client = api.as_user(project.author)
    assert client.patch(url, {"name": "x"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    assert IdeProject.objects.get(pk=project.project.pk).name == "notebooks"


def test_api_another_workspaces_ide_project_is_a_404(api, project, other_team):
    url = f"/api/v1/workspaces/{project.workspace.pk}/ide-projects/{project.project.pk}"
    assert api.as_user(other_team.owner).delete(url).status_code == 404
    other_url = f"/api/v1/workspaces/{other_team.workspace.pk}/ide-projects/{project.project.pk}"
    assert api.as_user(other_team.owner).delete(other_url).status_code == 404
    assert IdeProject.objects.filter(pk=project.project.pk).exists()


# The pages


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_settings_page_says_what_deletion_takes_before_confirming(doomed):
    page = _as(doomed.owner).get(reverse("deployment-settings", args=[doomed.deployment.pk]))
    text = page.content.decode()
    assert "Delete production?" in text
    assert 'data-confirm-key="production"' in text
    for said in (
        "deletes its 1 own (Deployment-level) object and their history",
        "removes its 1 link to Workspace objects, with 1 override (the Workspace objects stay",
        "revokes its 1 Deployment token: its Airflow's secrets backend gets 401 at once",
        "deletes its 1 migration run and their undo data: those migrations can no longer be undone",
        "Renaming keeps its objects, links, tokens and history",
    ):
        assert said in text, said


@pytest.mark.parametrize("role", ["operator", "member"])
def test_settings_page_tells_non_owners_only_owners_delete(doomed, role):
    text = (
        _as(doomed.user(role))
        .get(reverse("deployment-settings", args=[doomed.deployment.pk]))
        .content.decode()
    )
    assert "Only Workspace Owners delete Deployments" in text
    assert 'name="confirm_name"' not in text


def test_settings_page_shows_the_active_run_that_blocks_deletion(doomed):
    run = MigrationRun.objects.create(
        workspace=doomed.workspace,
        deployment=doomed.deployment,
        object_type="CONNECTION",
        status=MigrationRun.Status.DELETING,
    )
    text = (
        _as(doomed.owner)
        .get(reverse("deployment-settings", args=[doomed.deployment.pk]))
        .content.decode()
    )
    assert f"Migration run #{run.pk} is in progress" in text
    assert 'name="confirm_name"' not in text


def test_page_delete_with_the_wrong_name_changes_nothing(doomed):
    client = _as(doomed.owner)
    url = reverse("deployment-delete", args=[doomed.deployment.pk])
    response = client.post(url, {"confirm_name": "prod"}, follow=True)
    assert "Type the Deployment&#x27;s name, production, to confirm" in response.content.decode()
    assert Deployment.objects.filter(pk=doomed.deployment.pk).exists()


def test_page_delete_with_the_name_says_what_went(doomed):
    response = _as(doomed.owner).post(
        reverse("deployment-delete", args=[doomed.deployment.pk]),
        {"confirm_name": "production"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("workspace", args=[doomed.workspace.pk])
    assert (
        "Deleted Deployment production: 1 own object, 1 link to Workspace objects (1 override), "
        "1 token revoked and 1 migration run deleted." in response.content.decode()
    )
    assert not Deployment.objects.filter(pk=doomed.deployment.pk).exists()


def test_page_operator_delete_is_refused(doomed):
    response = _as(doomed.operator).post(
        reverse("deployment-delete", args=[doomed.deployment.pk]),
        {"confirm_name": "production"},
        follow=True,
    )
    assert "Owners only" in response.content.decode()
    assert Deployment.objects.filter(pk=doomed.deployment.pk).exists()


def test_page_ide_project_edit_and_delete(project):
    client = _as(project.operator)
    pk = project.project.pk
    page = client.get(reverse("workspace", args=[project.workspace.pk])).content.decode()
    assert "Its links to Workspace objects are removed" in page
    response = client.post(
        reverse("workspace-ide-project-update", args=[project.workspace.pk, pk]),
        {f"project-{pk}-name": "lab", f"project-{pk}-description": "Shared"},
        follow=True,
    )
    assert "Saved IDE project lab." in response.content.decode()
    assert IdeProject.objects.get(pk=pk).description == "Shared"
    response = client.post(
        reverse("workspace-ide-project-delete", args=[project.workspace.pk, pk]), follow=True
    )
    assert (
        "Deleted IDE project lab and its 1 link; the Workspace objects stay."
        in response.content.decode()
    )
    assert not IdeProject.objects.filter(pk=pk).exists()


def test_page_author_sees_ide_project_rules_and_is_refused(project):
    client = _as(project.author)
    pk = project.project.pk
    page = client.get(reverse("workspace", args=[project.workspace.pk])).content.decode()
    assert "Operators and Owners edit and delete IDE projects." in page
    response = client.post(
        reverse("workspace-ide-project-delete", args=[project.workspace.pk, pk]), follow=True
    )
    assert "does not allow you to delete IDE projects" in response.content.decode()
    assert IdeProject.objects.filter(pk=pk).exists()


def test_members_page_says_removal_takes_per_deployment_grants(team):
    page = _as(team.owner).get(reverse("workspace", args=[team.workspace.pk])).content.decode()
    assert "including any per-Deployment grants" in page
