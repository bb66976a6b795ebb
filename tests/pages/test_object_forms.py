"""What the object forms promise a user: line breaks as typed, browsers kept from filling in
the user's own login, a URI help that says what happens, a stored extra's shape shown and
stored secrets that can be cleared, metrics fields in order and per auth type."""

import json
import re

import pytest

from envmanager.forms import EnvironmentObjectForm
from envmanager.models import EnvironmentObject
from envmanager.services import link_create
from tests.envmanager.test_environment_objects import create
from tests.pages.test_pages import browser


def env_url(team, slug: str) -> str:
    return f"/workspaces/{team.workspace.pk}/environment/?type={slug}"


def object_url(team, obj) -> str:
    return f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/"


def stored(key: str) -> dict:
    return EnvironmentObject.objects.get(key=key).values


# Line breaks


@pytest.mark.parametrize(
    ("slug", "field"),
    [("environment-variables", "value"), ("airflow-variables", "value")],
)
def test_a_value_typed_on_two_lines_is_stored_with_lf(team, slug, field):
    key = "TWO_LINES"
    browser(team.operator).post(
        env_url(team, slug), {"type": slug, "new-key": key, f"new-{field}": "line1\r\nline2\r\n"}
    )
    assert stored(key)[field] == "line1\nline2\n"


def test_descriptions_and_json_fields_are_stored_with_lf(team):
    browser(team.operator).post(
        env_url(team, "connections"),
        {
            "type": "connections",
            "new-key": "c",
            "new-conn_type": "http",
            "new-description": "first\r\nsecond",
            "new-extra": '{\r\n  "a": "x"\r\n}',
        },
    )
    assert (stored("c")["description"], stored("c")["extra"]) == ("first\nsecond", {"a": "x"})


def test_an_override_value_typed_on_two_lines_is_stored_with_lf(team):
    obj = create(team, "AIRFLOW_VARIABLE", "v", {"value": "1"})
    link = link_create(user=team.owner, obj=obj, deployment=team.deployment)
    browser(team.operator).post(
        f"{object_url(team, obj)}links/{link.pk}/override/",
        {f"link{link.pk}-value": "a\r\nb"},
    )
    link.refresh_from_db()
    assert link.overrides == {"value": "a\nb"}


def test_the_api_takes_a_value_exactly_as_sent(team, api):
    # An Airflow variable: an environment variable's value may not hold a carriage return at
    # all (the served dotenv could not keep it; tests/envmanager/test_dotenv.py).
    response = api.as_user(team.operator).post(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects",
        {
            "objectKey": "CRLF",
            "objectType": "AIRFLOW_VARIABLE",
            "scope": "WORKSPACE",
            "airflowVariable": {"value": "a\r\nb"},
        },
        format="json",
    )
    assert response.status_code == 201
    assert stored("CRLF")["value"] == "a\r\nb"


# Browser autofill


def inputs(html: str) -> dict[str, str]:
    """Each input's name → its whole tag."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*>', html)}


@pytest.mark.parametrize(
    ("slug", "new_password", "off"),
    [
        ("connections", ["new-password"], ["new-login", "new-uri"]),
        ("metrics-exports", ["new-password", "new-basic_token"], ["new-username"]),
    ],
)
def test_credential_boxes_are_never_filled_with_the_users_own_login(team, slug, new_password, off):
    tags = inputs(browser(team.operator).get(env_url(team, slug)).content.decode())
    for name in new_password:
        assert 'type="password"' in tags[name] and 'autocomplete="new-password"' in tags[name]
    for name in off:
        assert 'autocomplete="off"' in tags[name]


def test_override_and_deployment_secret_boxes_are_never_autofilled(team):
    obj = create(team, "CONNECTION", "c", {"conn_type": "http"})
    link = link_create(user=team.owner, obj=obj, deployment=team.deployment)
    tags = inputs(browser(team.operator).get(object_url(team, obj)).content.decode())
    assert 'autocomplete="new-password"' in tags[f"link{link.pk}-password"]
    assert 'autocomplete="off"' in tags[f"link{link.pk}-login"]
    settings = f"/deployments/{team.deployment.pk}/settings/"
    tags = inputs(browser(team.owner).get(settings).content.decode())
    for name in ("metadata_db_url", "fernet_key"):
        assert 'autocomplete="new-password"' in tags[name]


# The connection URI


def test_the_uri_help_says_it_wins_over_the_typed_fields(team):
    html = browser(team.operator).get(env_url(team, "connections")).content.decode()
    assert "Fills the fields below" not in html
    assert "When a URI is given it wins" in html and "The description is kept." in html


def test_a_uri_wins_over_typed_fields_as_the_help_says(team):
    browser(team.operator).post(
        env_url(team, "connections"),
        {
            "type": "connections",
            "new-key": "c",
            "new-conn_type": "http",
            "new-host": "typed-host",
            "new-login": "typed-login",
            "new-description": "kept",
            "new-uri": "mysql://u@uri-host/db",
        },
    )
    values = stored("c")
    assert (values["conn_type"], values["host"], values["login"]) == ("mysql", "uri-host", "u")
    assert (values["password"], values["description"]) == (
        None,
        "kept",
    )  # the URI has no password: unset, as Airflow reads it


# Editing stored secrets


@pytest.fixture
def conn(team):
    team.conn = create(
        team,
        "CONNECTION",
        "warehouse",
        {
            "conn_type": "postgres",
            "host": "db",
            "password": "stored-Secret-pw",
            "extra": {"sslmode": "stored-Secret-mode", "token": "stored-Secret-token"},
        },
    )
    return team


def update(team, **fields):
    data = {"key": "warehouse", "conn_type": "postgres", "host": "db"}
    return browser(team.operator).post(f"{object_url(team, team.conn)}update/", {**data, **fields})


def test_the_edit_form_shows_which_keys_extra_holds_never_their_values(conn):
    html = browser(conn.operator).get(object_url(conn, conn.conn)).content.decode()
    assert "Stored and hidden: sslmode (set), token (set)." in html
    assert "replaces the whole stored extra; left empty, it is kept." in html
    assert "stored-Secret" not in html


def test_clear_stored_password_and_extra(conn):
    html = browser(conn.operator).get(object_url(conn, conn.conn)).content.decode()
    assert "Clear the stored password" in html and "Clear the stored extra" in html
    assert update(conn, clear_password="on").status_code == 302
    values = stored("warehouse")
    assert values["password"] is None and values["extra"]["token"] == "stored-Secret-token"
    update(conn, clear_extra="on")
    assert stored("warehouse")["extra"] is None  # unset, as Airflow's NULL
    html = browser(conn.operator).get(object_url(conn, conn.conn)).content.decode()
    assert "Clear the stored" not in html  # nothing left to clear


def test_a_box_left_empty_is_unset_and_stored_empty_text_stays_empty_text(conn):
    # Created on the page with empty boxes: unset, as Airflow stores a field left out.
    browser(conn.operator).post(
        env_url(conn, "connections"),
        {"type": "connections", "new-key": "bare", "new-conn_type": "http", "new-host": ""},
    )
    bare = stored("bare")
    assert [bare[name] for name in ("host", "schema", "login", "password", "extra")] == [None] * 5
    # Empty text stored through the API or a migration is shown as such and kept on save.
    obj = EnvironmentObject.objects.get(key="warehouse")
    obj.values = {**obj.values, "schema": "", "login": None}
    obj.save()
    html = browser(conn.operator).get(object_url(conn, conn.conn)).content.decode()
    assert html.count("Stored as empty text (Airflow shows &#x27;&#x27;), not unset") == 1
    assert update(conn, schema="", login="").status_code == 302
    values = stored("warehouse")
    assert (values["schema"], values["login"]) == ("", None)


def test_left_empty_a_stored_secret_is_kept(conn):
    update(conn, host="new-host", password="", extra="")
    values = stored("warehouse")
    assert values["host"] == "new-host" and values["password"] == "stored-Secret-pw"
    assert values["extra"]["sslmode"] == "stored-Secret-mode"


def test_clearing_and_typing_a_new_secret_at_once_is_refused(conn):
    response = update(conn, clear_password="on", password="new-pw")
    assert response.status_code == 200
    assert "Either type a new password or clear it, not both." in response.content.decode()
    assert stored("warehouse")["password"] == "stored-Secret-pw"


def test_a_new_extra_replaces_the_whole_stored_one(conn):
    update(conn, extra='{"sslmode": "disable"}')
    assert stored("warehouse")["extra"] == {"sslmode": "disable"}


def test_metrics_secrets_can_be_cleared_too(team):
    obj = create(
        team,
        "METRICS_EXPORT",
        "prom",
        {
            "endpoint": "https://p.example.com/w",
            "auth_type": "AUTH_TOKEN",
            "basic_token": "tok",
            "headers": {"X-Key": "secret-header"},
        },
    )
    html = browser(team.operator).get(object_url(team, obj)).content.decode()
    assert "Clear the stored auth token" in html and "X-Key (set)" in html
    browser(team.operator).post(
        f"{object_url(team, obj)}update/",
        {
            "key": "prom",
            "endpoint": "https://p.example.com/w",
            "exporter_type": "PROMETHEUS",
            "auth_type": "",
            "clear_basic_token": "on",
            "clear_headers": "on",
        },
    )
    values = stored("prom")
    assert (values["basic_token"], values["headers"], values["auth_type"]) == ("", {}, "")


# Metrics exports


def test_metrics_fields_come_in_order_endpoint_exporter_auth_then_its_fields(team):
    html = browser(team.operator).get(env_url(team, "metrics-exports")).content.decode()
    order = re.findall(r'data-field="([a-z_0-9]+)"', html)
    assert order[:5] == ["key", "endpoint", "exporter_type", "auth_type", "username"]
    assert order.index("password") > order.index("auth_type")
    assert "Prometheus remote write" in html


def test_the_page_tells_app_js_which_fields_each_auth_type_uses(team):
    html = browser(team.operator).get(env_url(team, "metrics-exports")).content.decode()
    assert 'data-field-chooser="field-chooser"' in html
    data = json.loads(re.search(r'id="field-chooser"[^>]*>(.*?)</script>', html).group(1))
    assert data["chooser"] == "auth_type" and data["emptyShowsAll"] is False
    assert data["choices"]["BASIC"] == {"username": "Username", "password": "Password"}
    assert data["choices"]["AUTH_TOKEN"] == {"basic_token": "Auth token"}
    assert data["choices"][""] == {}
    connection = browser(team.operator).get(env_url(team, "connections")).content.decode()
    data = json.loads(re.search(r'id="field-chooser"[^>]*>(.*?)</script>', connection).group(1))
    assert data["chooser"] == "conn_type" and data["choices"]["aws"]["login"] == "AWS Access Key ID"


def test_a_metrics_export_saved_without_an_exporter_is_prometheus(team):
    form = EnvironmentObjectForm(
        {"key": "p", "endpoint": "https://p.example.com/w", "auth_type": ""},
        object_type="METRICS_EXPORT",
    )
    assert form.is_valid(), form.errors
    assert "exporter_type" not in form.values()
    browser(team.operator).post(
        env_url(team, "metrics-exports"),
        {"type": "metrics-exports", "new-key": "p", "new-endpoint": "https://p.example.com/w"},
    )
    assert stored("p")["exporter_type"] == "PROMETHEUS"
