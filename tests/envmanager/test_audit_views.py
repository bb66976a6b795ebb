import csv
import io
from datetime import datetime, timedelta

import pytest
from django.test import Client

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
    response = client.post(f"/workspaces/{team.workspace.pk}/versions/{version.pk}/restore/")
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
