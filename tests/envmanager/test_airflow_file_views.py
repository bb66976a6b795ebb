import base64
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import AuditEvent
from envmanager.models import EnvironmentObject

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


def preview_then_import(client, url: str, **fields) -> None:
    upload = SimpleUploadedFile("c.json", json.dumps(EXPORTED).encode())
    page = client.post(url, {"type": "connections", "file": upload, **fields})
    client.post(
        url,
        {
            "action": "apply",
            "type": "connections",
            "filename": "c.json",
            "content": page.context["content"],
            **fields,
        },
    )


def test_export_download_is_audited_and_refused_to_authors(team):
    preview_then_import(browser(team.operator), f"/workspaces/{team.workspace.pk}/airflow-files/")
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


def test_the_preview_page_holds_the_file_only_encrypted_and_apply_still_imports(team):
    client = browser(team.operator)
    url = f"/workspaces/{team.workspace.pk}/airflow-files/"
    upload = SimpleUploadedFile("c.json", json.dumps(EXPORTED).encode())
    page = client.post(url, {"type": "connections", "file": upload})
    html = page.content.decode()
    sealed = page.context["content"]
    assert f'name="content" value="{sealed}"' in html
    # Neither the secret nor the file in any encoding a browser (or anyone it leaks to) reads.
    raw = json.dumps(EXPORTED).encode()
    for readable in (b"file-secret-123", raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        assert readable.decode() not in html
    assert "file-secret-123" not in base64.urlsafe_b64decode(sealed).decode("latin-1")
    client.post(
        url, {"action": "apply", "type": "connections", "filename": "c.json", "content": sealed}
    )
    assert EnvironmentObject.objects.get(key="warehouse").values["password"] == "file-secret-123"


def tampered(sealed: str) -> list[str]:
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[40] ^= 1
    return [
        base64.urlsafe_b64encode(bytes(raw)).decode(),
        sealed[:-8],
        base64.b64encode(json.dumps(EXPORTED).encode()).decode(),  # the old plain encoding
        "",
        "ünïcødé",
    ]


def test_a_tampered_preview_is_refused_with_a_clear_message_and_imports_nothing(team):
    client = browser(team.operator)
    url = f"/workspaces/{team.workspace.pk}/airflow-files/"
    upload = SimpleUploadedFile("c.json", json.dumps(EXPORTED).encode())
    sealed = client.post(url, {"type": "connections", "file": upload}).context["content"]
    for content in tampered(sealed):
        page = client.post(
            url,
            {"action": "apply", "type": "connections", "filename": "c.json", "content": content},
            follow=True,
        )
        assert page.status_code == 200
        assert "changed in the page" in page.content.decode()
    assert not EnvironmentObject.objects.exists()


def test_a_preview_applies_only_for_its_user_file_and_target(team):
    url = f"/workspaces/{team.workspace.pk}/airflow-files/"
    upload = SimpleUploadedFile("c.json", json.dumps(EXPORTED).encode())
    sealed = (
        browser(team.operator).post(url, {"type": "connections", "file": upload}).context["content"]
    )
    apply = {"action": "apply", "type": "connections", "filename": "c.json", "content": sealed}
    attempts = [
        (team.owner, apply),  # another user
        (team.operator, {**apply, "filename": "c.yaml"}),  # another file name
        (team.operator, {**apply, "deployment": team.deployment.pk}),  # another target
    ]
    for user, data in attempts:
        page = browser(user).post(url, data, follow=True)
        assert "changed in the page" in page.content.decode()
    assert not EnvironmentObject.objects.exists()


def test_an_old_preview_is_refused(team, monkeypatch):
    from envmanager import airflow_file_views

    client = browser(team.operator)
    url = f"/workspaces/{team.workspace.pk}/airflow-files/"
    upload = SimpleUploadedFile("c.json", json.dumps(EXPORTED).encode())
    sealed = client.post(url, {"type": "connections", "file": upload}).context["content"]
    monkeypatch.setattr(airflow_file_views, "PREVIEW_MAX_AGE", -1)
    page = client.post(
        url,
        {"action": "apply", "type": "connections", "filename": "c.json", "content": sealed},
        follow=True,
    )
    assert "older than an hour" in page.content.decode()
    assert not EnvironmentObject.objects.exists()


def test_members_and_authors_see_preview_disabled_with_the_reason(team):
    url = f"/workspaces/{team.workspace.pk}/airflow-files/"
    for user in (team.member, team.author):
        html = browser(user).get(url).content.decode()
        assert (
            'type="submit" disabled title="Importing creates environment objects: '
            'Operators and Owners only.">Preview</button>' in html
        )
    html = browser(team.operator).get(url).content.decode()
    assert '<button class="btn btn-primary" type="submit">Preview</button>' in html
