"""Airflow's file formats through the API: preview, import and export of connections and
variables for a Workspace or a Deployment, refused as the page refuses them. What a file is
read as, field by field, is tested with the services (tests/envmanager/test_airflow_files.py)."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from envmanager.models import EnvironmentObject, Link
from envmanager.selectors import deployment_resolved_environment
from envmanager.services import environment_object_create, link_create
from tests.envmanager.test_airflow_files import AIRFLOW_EXPORT as CONNECTIONS
from tests.envmanager.test_airflow_files import OURS as CONNECTIONS_STORED

# As `airflow variables export v.json` writes them.
VARIABLES = {
    "plain": "text",
    "structured": {"a": [1, 2]},
    "described": {"value": "v", "description": "d"},
}
VARIABLES_STORED = {
    "plain": {"value": "text", "description": None},
    "structured": {"value": json.dumps({"a": [1, 2]}, indent=2), "description": None},
    "described": {"value": "v", "description": "d"},
}
FILES = {
    "connections": ("c.json", json.dumps(CONNECTIONS), CONNECTIONS_STORED, "CONNECTION"),
    "variables": ("v.json", json.dumps(VARIABLES), VARIABLES_STORED, "AIRFLOW_VARIABLE"),
}


def url(team, file_type: str, action: str) -> str:
    return f"/api/v1/workspaces/{team.workspace.pk}/airflow-files/{file_type}/{action}"


def upload(client, address: str, filename: str, content: bytes | str, **fields):
    if isinstance(content, str):
        content = content.encode()
    return client.post(
        address, {"file": SimpleUploadedFile(filename, content), **fields}, format="multipart"
    )


def existing(team, object_type: str, key: str, values: dict):
    return environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type=object_type,
        key=key,
        values=values,
    )


def stored(workspace, object_type: str) -> dict:
    """Every object of a type in a Workspace: key → its values, as the file had them."""
    return {
        o.key: {name: o.values.get(name) for name in CONNECTIONS_STORED["warehouse"]}
        if object_type == "CONNECTION"
        else {name: o.values.get(name) for name in ("value", "description")}
        for o in EnvironmentObject.objects.filter(workspace=workspace, object_type=object_type)
    }


def changes() -> tuple:
    """What a request that changes nothing leaves as it was."""
    objects = sorted(
        (o.pk, o.key, json.dumps(o.values, sort_keys=True)) for o in EnvironmentObject.objects.all()
    )
    links = sorted(
        (link.pk, json.dumps(link.overrides, sort_keys=True)) for link in Link.objects.all()
    )
    return objects, links, AuditEvent.objects.filter(action="environment.import").count()


def test_preview_then_import_of_a_connections_upload(api, team):
    client = api.as_user(team.operator)
    filename, text, expected, object_type = FILES["connections"]
    preview = upload(client, url(team, "connections", "preview"), filename, text)
    assert preview.status_code == 200, preview.json()
    assert preview.json() == {
        "rows": [
            {"objectKey": "warehouse", "action": "CREATE", "reason": ""},
            {"objectKey": "bare", "action": "CREATE", "reason": ""},
            {"objectKey": "empty", "action": "CREATE", "reason": ""},
        ],
        "counts": {"CREATE": 3, "OVERRIDE": 0, "UPDATE": 0, "SKIP": 0},
    }
    assert not EnvironmentObject.objects.exists()
    imported = upload(client, url(team, "connections", "import"), filename, text)
    assert imported.status_code == 200, imported.json()
    assert imported.json() == preview.json()
    assert stored(team.workspace, object_type) == expected
    assert {o.scope for o in EnvironmentObject.objects.all()} == {"WORKSPACE"}
    again = upload(client, url(team, "connections", "import"), filename, text)
    assert again.json()["counts"] == {"CREATE": 0, "OVERRIDE": 0, "UPDATE": 0, "SKIP": 3}


def test_preview_then_import_of_variables_sent_as_json(api, team):
    client = api.as_user(team.owner)
    filename, text, expected, object_type = FILES["variables"]
    body = {"filename": filename, "content": text}
    preview = client.post(url(team, "variables", "preview"), body, format="json")
    assert preview.status_code == 200, preview.json()
    assert preview.json()["counts"] == {"CREATE": 3, "OVERRIDE": 0, "UPDATE": 0, "SKIP": 0}
    assert not EnvironmentObject.objects.exists()
    imported = client.post(url(team, "variables", "import"), body, format="json")
    assert imported.status_code == 200, imported.json()
    assert {r["objectKey"]: r["action"] for r in imported.json()["rows"]} == {
        "plain": "CREATE",
        "structured": "CREATE",
        "described": "CREATE",
    }
    assert stored(team.workspace, object_type) == expected


def test_import_for_a_deployment_overrides_what_it_links_and_creates_its_own(api, team):
    obj = existing(
        team,
        "CONNECTION",
        "warehouse",
        {**CONNECTIONS_STORED["warehouse"], "password": "workspace-pw"},
    )
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    filename, text, expected, _ = FILES["connections"]
    response = upload(
        api.as_user(team.operator),
        url(team, "connections", "import"),
        filename,
        text,
        deploymentId=team.deployment.pk,
    )
    assert response.status_code == 200, response.json()
    assert {r["objectKey"]: r["action"] for r in response.json()["rows"]} == {
        "warehouse": "OVERRIDE",
        "bare": "CREATE",
        "empty": "CREATE",
    }
    link = Link.objects.get(environment_object=obj, deployment=team.deployment)
    assert link.overrides == {"password": "p:a/s@s?#%"}
    obj.refresh_from_db()
    assert obj.values["password"] == "workspace-pw"
    bare = EnvironmentObject.objects.get(key="bare")
    assert (bare.scope, bare.deployment_id) == ("DEPLOYMENT", team.deployment.pk)
    resolved = deployment_resolved_environment(team.deployment)["CONNECTION"]
    assert {key: item.values for key, item in resolved.items()} == expected


def test_preview_changes_nothing_even_with_overwrite(api, team):
    existing(team, "AIRFLOW_VARIABLE", "plain", {"value": "old", "description": ""})
    before = changes()
    filename, text, _, _ = FILES["variables"]
    response = api.as_user(team.operator).post(
        url(team, "variables", "preview"),
        {"filename": filename, "content": text, "overwrite": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["counts"] == {"CREATE": 2, "OVERRIDE": 0, "UPDATE": 1, "SKIP": 0}
    assert changes() == before


def test_overwrite_is_needed_to_replace_other_values(api, team):
    existing(team, "AIRFLOW_VARIABLE", "plain", {"value": "old", "description": ""})
    filename, text, expected, _ = FILES["variables"]
    client = api.as_user(team.operator)
    kept = upload(client, url(team, "variables", "import"), filename, text)
    assert [r for r in kept.json()["rows"] if r["objectKey"] == "plain"][0]["action"] == "SKIP"
    assert stored(team.workspace, "AIRFLOW_VARIABLE")["plain"]["value"] == "old"
    replaced = upload(client, url(team, "variables", "import"), filename, text, overwrite="true")
    assert replaced.json()["counts"]["UPDATE"] == 1
    assert stored(team.workspace, "AIRFLOW_VARIABLE") == expected


@pytest.mark.parametrize(
    ("file_type", "file_format", "serialization"),
    [
        ("connections", "json", "uri"),
        ("connections", "yaml", "uri"),
        ("connections", "env", "uri"),
        ("connections", "env", "json"),
        ("variables", "json", "uri"),
    ],
)
def test_an_export_imports_into_another_workspace_with_equal_values(
    api, team, other_team, file_type, file_format, serialization
):
    filename, text, expected, object_type = FILES[file_type]
    upload(api.as_user(team.operator), url(team, file_type, "import"), filename, text)
    exported = api.as_user(team.operator).get(
        url(team, file_type, "export"), {"format": file_format, "serialization": serialization}
    )
    assert exported.status_code == 200
    imported = upload(
        api.as_user(other_team.owner),
        url(other_team, file_type, "import"),
        f"exported.{file_format}",
        exported.content,
    )
    assert imported.status_code == 200, imported.json()
    if (file_type, file_format, serialization) == ("connections", "env", "uri"):
        # A URI, as Airflow reads one: no description, no empty password, and a host and a
        # schema always (empty text when it names none).
        expected = {
            key: {
                **values,
                "description": None,
                "password": values["password"] or None,
                "host": values["host"] or "",
                "schema": values["schema"] or "",
            }
            for key, values in expected.items()
        }
    assert stored(other_team.workspace, object_type) == expected


def test_an_export_is_an_audited_download_that_no_cache_keeps(api, team):
    filename, text, _, _ = FILES["connections"]
    upload(api.as_user(team.operator), url(team, "connections", "import"), filename, text)
    response = api.as_user(team.operator).get(
        url(team, "connections", "export"), {"format": "yaml"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="Data Platform-connections.yaml"'
    )
    assert response["Cache-Control"] == "no-store"
    assert b"p:a/s@s?#%" in response.content
    event = AuditEvent.objects.get(action="secrets.reveal")
    assert (event.workspace_id, event.actor_id) == (team.workspace.pk, team.operator.pk)


def test_an_export_for_a_deployment_is_what_it_resolves(api, team):
    obj = existing(team, "AIRFLOW_VARIABLE", "region", {"value": "eu"})
    link_create(user=team.operator, obj=obj, deployment=team.deployment, overrides={"value": "us"})
    response = api.as_user(team.operator).get(
        url(team, "variables", "export"), {"deploymentId": team.deployment.pk}
    )
    assert response.status_code == 200
    assert json.loads(response.content) == {"region": "us"}
    assert "production-variables.json" in response["Content-Disposition"]
    assert AuditEvent.objects.get(action="secrets.reveal").deployment_id == team.deployment.pk
    elsewhere = api.as_user(team.operator).get(
        url(team, "variables", "export"), {"deploymentId": team.other_deployment.pk}
    )
    assert json.loads(elsewhere.content) == {}


@pytest.mark.parametrize("role", ["MEMBER", "AUTHOR"])
def test_members_and_authors_may_not_import(api, team, role):
    filename, text, _, _ = FILES["connections"]
    client = api.as_user(team.user(role))
    for action in ("preview", "import"):
        response = upload(client, url(team, "connections", action), filename, text)
        assert response.status_code == 403
        assert "does not allow you to import" in response.json()["message"]
    assert not EnvironmentObject.objects.exists()


def test_only_operators_and_owners_export_unless_local_development_is_allowed(api, team):
    address = url(team, "connections", "export")
    for role in ("MEMBER", "AUTHOR"):
        response = api.as_user(team.user(role)).get(address)
        assert response.status_code == 403
        assert "reveals secrets" in response.json()["message"]
    assert api.as_user(team.owner).get(address).status_code == 200
    team.workspace.local_development_secrets = True
    team.workspace.save()
    assert api.as_user(team.author).get(address).status_code == 200
    assert api.as_user(team.member).get(address).status_code == 403
    assert not AuditEvent.objects.filter(action="secrets.reveal", actor=team.member).exists()


def test_another_tenant_gets_404(api, team, other_team):
    filename, text, _, _ = FILES["connections"]
    stranger = api.as_user(other_team.owner)
    for action in ("preview", "import"):
        response = upload(stranger, url(team, "connections", action), filename, text)
        assert response.status_code == 404
        assert set(response.json()) == {"message", "statusCode", "requestId", "fieldErrors"}
    assert stranger.get(url(team, "connections", "export")).status_code == 404
    mine = api.as_user(team.owner)
    theirs = other_team.deployment.pk
    response = upload(mine, url(team, "connections", "import"), filename, text, deploymentId=theirs)
    assert response.status_code == 404
    assert mine.get(url(team, "connections", "export"), {"deploymentId": theirs}).status_code == 404
    assert not EnvironmentObject.objects.exists()


def test_an_unknown_kind_of_file_is_404(api, team):
    client = api.as_user(team.owner)
    assert client.get(url(team, "dags", "export")).status_code == 404
    response = upload(client, url(team, "dags", "import"), "d.json", "{}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("c.json", b"{broken", "Not valid JSON"),
        ("c.yaml", b"a: [unclosed", "Not valid YAML"),
        ("c.json", b'{"warehouse": "postgres://h"}\xff\xfe', "not UTF-8"),
        ("c.json", b"", "empty"),
        ("c.json", b"[1, 2]", "one object"),
        ("c.txt", b"{}", "Unsupported file type"),
        ("c.json", b'{"a": "' + b"x" * (6 * 1024 * 1024) + b'"}', "larger than 5 MiB"),
    ],
)
def test_a_bad_upload_is_a_400_and_changes_nothing(api, team, filename, content, message):
    before = changes()
    for action in ("preview", "import"):
        response = upload(
            api.as_user(team.operator), url(team, "connections", action), filename, content
        )
        assert response.status_code == 400
        body = response.json()
        assert message in body["message"]
        assert body["fieldErrors"][0]["field"] == "file"
    assert changes() == before


def test_bad_json_bodies_are_a_400_and_change_nothing(api, team):
    client = api.as_user(team.operator)
    address = url(team, "variables", "import")
    huge = {"filename": "v.json", "content": '{"a": "' + "x" * (6 * 1024 * 1024) + '"}'}
    for body, message in [
        ({"filename": "v.json", "content": "{broken"}, "Not valid JSON"),
        (huge, "larger than 5 MiB; send a file this large as a multipart upload"),
        ({"content": "{}"}, "filename"),
        ({"filename": "v.json"}, "content"),
        ({"filename": "v.json", "content": 42}, "content"),
    ]:
        response = client.post(address, body, format="json")
        assert response.status_code == 400, body.keys()
        assert message in response.json()["message"]
    assert client.post(address, "[]", content_type="application/json").status_code == 400
    assert not EnvironmentObject.objects.exists()


@pytest.mark.parametrize(
    ("deployment_id", "status"),
    # Not a whole number: bad input (400); a whole number that is no Deployment here: 404.
    [("abc", 400), ("1.5", 400), ("-1", 404), ("99999999999999999999999", 404)],
)
def test_a_deployment_id_that_is_no_whole_number_of_this_workspace_is_a_4xx(
    api, team, deployment_id, status
):
    filename, text, _, _ = FILES["connections"]
    client = api.as_user(team.operator)
    responses = [
        upload(
            client, url(team, "connections", "import"), filename, text, deploymentId=deployment_id
        ),
        client.post(
            url(team, "connections", "preview"),
            {"filename": filename, "content": text, "deploymentId": deployment_id},
            format="json",
        ),
        client.get(url(team, "connections", "export"), {"deploymentId": deployment_id}),
    ]
    for response in responses:
        assert response.status_code == status
        assert set(response.json()) == {"message", "statusCode", "requestId", "fieldErrors"}
    assert not EnvironmentObject.objects.exists()


def test_a_deployment_id_not_a_number_names_the_field(api, team):
    response = api.as_user(team.operator).get(
        url(team, "connections", "export"), {"deploymentId": "abc"}
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["fieldErrors"]] == ["deploymentId"]
    missing = api.as_user(team.operator).get(
        url(team, "connections", "export"), {"deploymentId": 987654}
    )
    assert missing.status_code == 404


def test_a_bad_export_format_is_a_400(api, team):
    client = api.as_user(team.operator)
    assert client.get(url(team, "connections", "export"), {"format": "xml"}).status_code == 400
    response = client.get(url(team, "variables", "export"), {"format": "yaml"})
    assert response.status_code == 400
    assert "Variables are exported as JSON" in response.json()["message"]
    assert not AuditEvent.objects.filter(action="secrets.reveal").exists()


def test_an_export_error_is_json_whatever_the_client_accepts(api, team):
    response = api.as_user(team.member).get(
        url(team, "connections", "export"), HTTP_ACCEPT="application/octet-stream"
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "reveals secrets" in response.json()["message"]
