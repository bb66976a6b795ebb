"""JSON nested deeper than the cap (envmanager.kernel.json_limits) is refused as bad input
wherever it comes in: an API body, an Airflow file, a form's JSON field, a value stored in a JSON
field.
Some thousands of levels in a few KB used to be a RecursionError: a 500."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from envmanager import object_types
from envmanager.kernel.json_limits import MAX_JSON_DEPTH
from envmanager.models import EnvironmentObject
from tests.api.conftest import body, object_url, objects_url

ERROR_KEYS = {"message", "statusCode", "requestId", "fieldErrors"}
DEEP = 5000  # about 10 KB of brackets


def nested_lists(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


def nested_objects(levels: int, inner: str = "1") -> str:
    return '{"a":' * levels + inner + "}" * levels


def nested_dict(levels: int) -> dict:
    """A dict `levels` levels deep, built without recursion."""
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def assert_refused_as_too_deep(response) -> None:
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()) == ERROR_KEYS
    assert response.json()["statusCode"] == 400
    assert f"more than {MAX_JSON_DEPTH} levels deep" in response.json()["message"]


def post_json(client, url: str, text: str, method: str = "post"):
    return getattr(client, method)(url, data=text, content_type="application/json")


# The API


@pytest.mark.parametrize("text", [nested_lists(DEEP), nested_objects(DEEP)])
def test_a_deeply_nested_body_is_a_400_in_our_shape(api, team, text):
    assert len(text) <= 30_001
    client = api.as_user(team.operator)
    assert_refused_as_too_deep(post_json(client, objects_url(team), text))
    assert_refused_as_too_deep(post_json(client, "/api/v1/workspaces", text))
    assert not EnvironmentObject.objects.exists()


def test_a_deeply_nested_extra_in_a_patch_is_a_400_in_our_shape(api, team):
    client = api.as_user(team.operator)
    created = client.post(objects_url(team), body("CONNECTION"), format="json")
    assert created.status_code == 201
    text = '{"connection": {"extra": ' + nested_objects(DEEP) + "}}"
    response = post_json(client, object_url(team, created.json()["id"]), text, method="patch")
    assert_refused_as_too_deep(response)
    stored = EnvironmentObject.objects.get(pk=created.json()["id"])
    assert stored.values["extra"] == body("CONNECTION")["connection"]["extra"]


def test_a_body_nested_exactly_to_the_cap_is_accepted(api, team):
    # The body, its connection block and extra take three levels.
    extra = '{"deep": ' + nested_objects(MAX_JSON_DEPTH - 3) + "}"
    data = body("CONNECTION")
    data["connection"]["extra"] = "EXTRA"
    text = json.dumps(data).replace('"EXTRA"', extra)
    response = post_json(api.as_user(team.operator), objects_url(team), text)
    assert response.status_code == 201, response.json()
    stored = EnvironmentObject.objects.get(pk=response.json()["id"])
    assert stored.values["extra"] == json.loads(extra)
    one_more = text.replace(extra, '{"deep": ' + nested_objects(MAX_JSON_DEPTH - 2) + "}")
    assert_refused_as_too_deep(post_json(api.as_user(team.operator), objects_url(team), one_more))


def test_brackets_inside_strings_do_not_count(api, team):
    data = body("CONNECTION")
    data["connection"]["extra"] = {"brackets": "[{" * DEEP + '"\\'}
    response = api.as_user(team.operator).post(objects_url(team), data, format="json")
    assert response.status_code == 201, response.json()


# Values stored in JSON fields, whoever sends them


def test_a_stored_extra_respects_the_cap_whoever_sends_it():
    values = {"conn_type": "postgres", "extra": nested_dict(MAX_JSON_DEPTH)}
    assert object_types.clean_values("CONNECTION", values)["extra"] == values["extra"]
    for extra in (nested_dict(MAX_JSON_DEPTH + 1), nested_objects(DEEP)):
        with pytest.raises(ValidationError) as refused:
            object_types.clean_values("CONNECTION", {"conn_type": "postgres", "extra": extra})
        assert "levels deep" in str(refused.value.message_dict["extra"])
    with pytest.raises(ValidationError) as refused:
        object_types.clean_overrides("CONNECTION", {"extra.region": nested_dict(MAX_JSON_DEPTH)})
    assert "levels deep" in str(refused.value.message_dict["extra.region"])


def test_a_deep_metrics_export_label_map_is_refused():
    values = {"endpoint": "https://prom.example.com", "labels": nested_dict(DEEP)}
    with pytest.raises(ValidationError) as refused:
        object_types.clean_values("METRICS_EXPORT", values)
    assert "levels deep" in str(refused.value.message_dict["labels"])


def test_a_deep_extra_typed_into_the_page_form_is_shown_next_to_the_field(team):
    client = Client()
    client.force_login(team.operator)
    response = client.post(
        f"/workspaces/{team.workspace.pk}/environment/?type=connections",
        {
            "type": "connections",
            "new-key": "deep",
            "new-conn_type": "postgres",
            "new-extra": nested_objects(DEEP),
        },
    )
    assert response.status_code == 200
    assert f"more than {MAX_JSON_DEPTH} levels deep" in response.content.decode()
    assert not EnvironmentObject.objects.exists()


def test_a_deep_extra_in_a_connection_uri_is_refused(team):
    from envmanager.connection_uri import parse_connection_uri

    with pytest.raises(ValueError, match="not valid JSON"):
        parse_connection_uri("postgres://db/?__extra__=" + nested_objects(DEEP))


# Airflow files


def files_url(team, file_type: str, action: str) -> str:
    return f"/api/v1/workspaces/{team.workspace.pk}/airflow-files/{file_type}/{action}"


DEEP_FILES = [
    ("connections", "c.json", nested_objects(DEEP)),
    ("connections", "c.json", '{"db": ' + nested_lists(DEEP) + "}"),
    ("variables", "v.json", '{"v": ' + nested_lists(DEEP) + "}"),
    ("variables", "v.yaml", "v: " + nested_lists(DEEP)),
    ("connections", "c.yaml", "db: " + nested_objects(DEEP).replace(":", ": ")),
]


@pytest.mark.parametrize(("file_type", "filename", "content"), DEEP_FILES)
@pytest.mark.parametrize("action", ["preview", "import"])
def test_a_deeply_nested_airflow_file_is_a_clean_400(
    api, team, file_type, filename, content, action
):
    client = api.as_user(team.operator)
    response = client.post(
        files_url(team, file_type, action),
        {"file": SimpleUploadedFile(filename, content.encode())},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()) == ERROR_KEYS
    assert f"more than {MAX_JSON_DEPTH} levels deep" in response.json()["message"].lower()
    assert response.json()["fieldErrors"][0]["field"] == "file"
    assert not EnvironmentObject.objects.exists()


def test_a_deep_file_sent_as_json_text_is_a_clean_400(api, team):
    response = api.as_user(team.operator).post(
        files_url(team, "variables", "preview"),
        {"filename": "v.json", "content": '{"v": ' + nested_lists(DEEP) + "}"},
        format="json",
    )
    assert response.status_code == 400
    assert "levels deep" in response.json()["message"]


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        (
            "c.env",
            "db=" + nested_objects(DEEP) + "\n",
        ),  # a JSON line, as `--serialization-format json`
        ("c.json", json.dumps({"db": {"conn_type": "postgres", "extra": nested_objects(DEEP)}})),
    ],
)
def test_a_deep_connection_in_a_file_is_refused_on_its_row(api, team, filename, content):
    client = api.as_user(team.operator)
    content = content + ("ok=postgres://db\n" if filename.endswith(".env") else "")
    for action in ("preview", "import"):
        response = client.post(
            files_url(team, "connections", action),
            {"file": SimpleUploadedFile(filename, content.encode())},
            format="multipart",
        )
        assert response.status_code == 200, response.content[:300]
        rows = {row["objectKey"]: row for row in response.json()["rows"]}
        assert rows["db"]["action"] == "SKIP" and "levels deep" in rows["db"]["reason"]
    assert not EnvironmentObject.objects.filter(key="db").exists()


def test_a_deep_file_on_the_page_is_a_clear_message(team):
    client = Client()
    client.force_login(team.operator)
    page = client.post(
        f"/workspaces/{team.workspace.pk}/airflow-files/",
        {"type": "connections", "file": SimpleUploadedFile("c.json", nested_lists(DEEP).encode())},
        follow=True,
    )
    assert page.status_code == 200
    assert f"more than {MAX_JSON_DEPTH} levels deep" in page.content.decode()


def test_a_file_nested_to_the_cap_is_read(api, team):
    # The file's object, the variable's value: the value nests to the cap less one.
    value = nested_lists(MAX_JSON_DEPTH - 1)
    response = api.as_user(team.operator).post(
        files_url(team, "variables", "import"),
        {"file": SimpleUploadedFile("v.json", ('{"v": ' + value + "}").encode())},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    stored = EnvironmentObject.objects.get(key="v").values["value"]
    assert json.loads(stored) == json.loads(value)
