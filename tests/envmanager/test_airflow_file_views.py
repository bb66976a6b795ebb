import base64
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from envmanager.models import AuditEvent, EnvironmentObject

EXPORTED = {
    "warehouse": {
        "conn_type": "postgres",
        "description": None,
        "login": "etl",
        "password": "file-secret-123",
        "host": "db",
        "port": 5432,
        "schema": "dwh",
        "extra": '{"sslmode": "require"}',
    }
}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_upload_preview_then_import(team):
    client = browser(team.operator)
    url = f"/workspaces/{team.workspace.pk}/airflow-files/"
    upload = SimpleUploadedFile("c.json", json.dumps(EXPORTED).encode())
    page = client.post(url, {"type": "connections", "file": upload})
    assert b"Preview of c.json" in page.content and b"create" in page.content
    assert b"file-secret-123" not in page.content
    assert not EnvironmentObject.objects.exists()
    content = page.context["content"]
    client.post(
        url, {"action": "apply", "type": "connections", "filename": "c.json", "content": content}
    )
    assert EnvironmentObject.objects.get(key="warehouse").values["password"] == "file-secret-123"


def test_a_bad_file_is_a_clear_message(team):
    client = browser(team.operator)
    upload = SimpleUploadedFile("c.json", b"{broken")
    page = client.post(
        f"/workspaces/{team.workspace.pk}/airflow-files/",
        {"type": "connections", "file": upload},
        follow=True,
    )
    assert b"Not valid JSON" in page.content
    assert not EnvironmentObject.objects.exists()


def test_export_download_is_audited_and_refused_to_authors(team):
    browser(team.operator).post(
        f"/workspaces/{team.workspace.pk}/airflow-files/",
        {
            "action": "apply",
            "type": "connections",
            "filename": "c.json",
            "content": base64.b64encode(json.dumps(EXPORTED).encode()).decode(),
        },
    )
    url = f"/workspaces/{team.workspace.pk}/airflow-files/connections.yaml"
    response = browser(team.operator).get(url)
    assert response.status_code == 200 and b"file-secret-123" in response.content
    assert AuditEvent.objects.filter(action="secrets.reveal").exists()
    assert browser(team.author).get(url).status_code == 302


def test_another_tenant_gets_404(team, other_team):
    url = f"/workspaces/{team.workspace.pk}/airflow-files/"
    assert browser(other_team.owner).get(url).status_code == 404


def test_a_deployment_that_is_not_a_number_is_a_404(team):
    client = browser(team.operator)
    base = f"/workspaces/{team.workspace.pk}/airflow-files/"
    assert client.get(base, {"deployment": "abc"}).status_code == 404
    assert client.get(f"{base}connections.json", {"deployment": "1.5"}).status_code == 404
    assert client.get(base, {"deployment": team.deployment.pk}).status_code == 200
