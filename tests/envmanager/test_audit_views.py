import csv
import io
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from envmanager.models import EnvironmentObject, ObjectVersion
from envmanager.services import (
    environment_object_create,
    environment_object_delete,
    environment_object_update,
)

SECRET = "audit-view-secret-42"


@pytest.fixture
def history(team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="retries",
        values={"value": SECRET, "is_secret": True},
    )
    environment_object_update(user=team.operator, obj=obj, values={"value": "other"})
    return obj


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "status"), [("OWNER", 200), ("OPERATOR", 403), ("AUTHOR", 403), ("MEMBER", 403)]
)
def test_only_owners_read_the_audit_log(api, team, history, role, status):
    url = f"/api/v1/workspaces/{team.workspace.pk}/audit-log"
    assert api.as_user(team.user(role)).get(url).status_code == status
    page = browser(team.user(role)).get(f"/workspaces/{team.workspace.pk}/audit/")
    assert page.status_code == status


def test_audit_log_filters_and_pages(api, team, history):
    url = f"/api/v1/workspaces/{team.workspace.pk}/audit-log"
    client = api.as_user(team.owner)
    body = client.get(url, {"action": "environment_object.update"}).json()
    assert body["totalCount"] == 1
    assert body["auditEvents"][0]["fields"] == ["value"]
    assert body["auditEvents"][0]["actor"] == team.operator.email
    assert client.get(url, {"objectKey": "retr", "limit": 1}).json()["totalCount"] == 2
    assert client.get(url, {"since": "not-a-date"}).status_code == 400
    assert client.get(url, {"limit": 0}).status_code == 400


def test_audit_log_exports_csv_without_values(api, team, history):
    response = api.as_user(team.owner).get(
        f"/api/v1/workspaces/{team.workspace.pk}/audit-log/export"
    )
    content = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert {r["action"] for r in rows} >= {"environment_object.create", "environment_object.update"}
    assert SECRET not in content


def test_another_tenants_audit_log_is_404(api, team, other_team):
    response = api.as_user(other_team.owner).get(
        f"/api/v1/workspaces/{team.workspace.pk}/audit-log"
    )
    assert response.status_code == 404


def test_history_page_lists_versions_without_values_and_restores(team, history):
    client = browser(team.operator)
    url = f"/workspaces/{team.workspace.pk}/environment/{history.pk}/history/"
    page = client.get(url)
    assert page.status_code == 200 and SECRET.encode() not in page.content
    version = ObjectVersion.objects.get(environment_object_id=history.pk)
    restore = f"/workspaces/{team.workspace.pk}/versions/{version.pk}/restore/"
    # Without the confirmation the POST only shows what restoring changes (see test_version_diff).
    assert client.post(restore).status_code == 200
    history.refresh_from_db()
    assert history.values["value"] == "other"
    response = client.post(restore, {"confirm": "restore"})
    assert response.status_code == 302
    history.refresh_from_db()
    assert history.values["value"] == SECRET


def test_members_cannot_see_history(team, history):
    url = f"/workspaces/{team.workspace.pk}/environment/{history.pk}/history/"
    assert browser(team.member).get(url).status_code == 404


def test_versions_api_and_restore(api, team, history):
    base = f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{history.pk}/versions"
    versions = api.as_user(team.author).get(base).json()["versions"]
    assert [v["changedFields"] for v in versions] == [["value"]]
    assert api.post(f"{base}/{versions[0]['id']}/restore").status_code == 403
    assert api.as_user(team.owner).post(f"{base}/{versions[0]['id']}/restore").status_code == 200


def versions_url(workspace, object_id: int) -> str:
    return f"/api/v1/workspaces/{workspace.pk}/environment-objects/{object_id}/versions"


def test_versions_of_another_tenants_object_are_a_404_as_its_get(api, team, history, other_team):
    theirs = environment_object_create(
        user=other_team.operator,
        workspace=other_team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="theirs",
        values={"value": "x"},
    )
    environment_object_update(user=other_team.operator, obj=theirs, values={"value": "y"})
    assert ObjectVersion.objects.filter(environment_object_id=theirs.pk).exists()
    client = api.as_user(team.owner)
    objects = f"/api/v1/workspaces/{team.workspace.pk}/environment-objects"
    assert client.get(f"{objects}/{theirs.pk}").status_code == 404
    response = client.get(versions_url(team.workspace, theirs.pk))
    assert response.status_code == 404
    assert set(response.json()) == {"message", "statusCode", "requestId", "fieldErrors"}
    assert response.json()["statusCode"] == 404


def test_versions_of_a_missing_object_are_a_404(api, team, history):
    response = api.as_user(team.owner).get(versions_url(team.workspace, history.pk + 1000))
    assert response.status_code == 404
    assert response.json()["statusCode"] == 404


def test_an_object_without_versions_yet_has_an_empty_history(api, team):
    fresh = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="fresh",
        values={"value": "x"},
    )
    response = api.as_user(team.author).get(versions_url(team.workspace, fresh.pk))
    assert response.status_code == 200 and response.json() == {"versions": []}


def test_a_deleted_objects_versions_stay_listed_until_purged(api, team, history):
    object_id = history.pk
    environment_object_delete(user=team.operator, obj=history)
    response = api.as_user(team.author).get(versions_url(team.workspace, object_id))
    assert response.status_code == 200
    assert [v["reason"] for v in response.json()["versions"]][0] == "DELETE"


def test_deleted_objects_are_listed_in_the_api_and_restored_from_there(
    api, team, history, other_team
):
    object_id = history.pk
    environment_object_delete(user=team.operator, obj=history)
    url = f"/api/v1/workspaces/{team.workspace.pk}/deleted-environment-objects"
    assert api.as_user(team.member).get(url).status_code == 403
    assert api.as_user(other_team.owner).get(url).status_code == 404
    response = api.as_user(team.author).get(url)
    assert response.status_code == 200
    (deleted,) = response.json()["deletedObjects"]
    assert deleted["environmentObjectId"] == object_id and deleted["objectKey"] == "retries"
    assert deleted["reason"] == "DELETE" and deleted["scope"] == "WORKSPACE"
    assert SECRET not in response.content.decode()
    created = datetime.fromisoformat(deleted["createdAt"])
    assert datetime.fromisoformat(deleted["restorableUntil"]) - created == timedelta(days=30)

    restore = f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{object_id}/versions"
    response = api.as_user(team.operator).post(f"{restore}/{deleted['id']}/restore")
    assert response.status_code == 200
    assert api.as_user(team.author).get(url).json()["deletedObjects"] == []
    assert EnvironmentObject.objects.get(pk=object_id).values["value"] == "other"


def test_audit_filters_take_part_of_an_action_or_actor_and_until_a_day_includes_it(
    api, team, history
):
    url = f"/api/v1/workspaces/{team.workspace.pk}/audit-log"
    client = api.as_user(team.owner)

    def count(**params):
        return client.get(url, params).json()["totalCount"]

    assert count(action="environment_object") == 2  # create and update
    assert count(action="environment_object.update") == 1
    assert count(actor="operator@") == count(actor="OPERATOR@EXAMPLE.COM") >= 2
    today = timezone.now().date()
    assert count(until=today.isoformat()) == count() > 0
    assert count(until=(today - timedelta(days=1)).isoformat()) == 0
    assert count(since=today.isoformat()) == count()
    assert count(since=(today + timedelta(days=1)).isoformat()) == 0
    page = browser(team.owner).get(
        f"/workspaces/{team.workspace.pk}/audit/", {"until": today.isoformat()}
    )
    assert "environment_object.update" in page.content.decode()


def test_an_object_never_changed_has_an_empty_history_not_a_404(team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="fresh",
        values={"value": "1"},
    )
    base = f"/workspaces/{team.workspace.pk}/environment"
    response = browser(team.author).get(f"{base}/{obj.pk}/history/")
    assert response.status_code == 200
    assert "No changes yet" in response.content.decode()
    assert browser(team.author).get(f"{base}/999999/history/").status_code == 404


def export_rows(api, team) -> list[dict]:
    response = api.as_user(team.owner).get(
        f"/api/v1/workspaces/{team.workspace.pk}/audit-log/export"
    )
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(content, newline="")))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_the_csv_export_writes_formula_like_cells_as_text(api, team, start):
    from accounts.audit import audit_record

    key = f'{start}HYPERLINK("https://evil.example","x")'
    audit_record(workspace=team.workspace, actor=None, action="test.event", object_key=key)
    (row,) = [r for r in export_rows(api, team) if r["action"] == "test.event"]
    assert row["object_key"] == "'" + key


def test_an_email_beginning_with_a_formula_sign_is_exported_as_text(api, team):
    from accounts.models import Role
    from accounts.services import membership_set
    from tests.conftest import make_user

    user = make_user("=1+2@example.com")
    membership_set(actor=team.owner, workspace=team.workspace, email=user.email, role=Role.OPERATOR)
    environment_object_create(
        user=user,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="-2.5",
        values={"conn_type": "http"},
    )
    (row,) = [r for r in export_rows(api, team) if r["action"] == "environment_object.create"]
    assert (row["actor_label"], row["object_key"]) == ("'=1+2@example.com", "'-2.5")


def test_ordinary_cells_are_exported_as_they_are(api, team, history):
    rows = export_rows(api, team)
    assert {r["object_key"] for r in rows if r["object_type"]} == {"retries"}
    assert all(not r["created_at"].startswith("'") for r in rows)
    assert {r["actor_label"] for r in rows if r["object_key"]} == {team.operator.email}
