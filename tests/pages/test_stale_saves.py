"""A save never reverts what someone else changed since the page was opened: the page sends only
the fields the user changed, and one changed meanwhile by someone else is refused with its
current value (never a secret's) and nothing saved. The API's PATCH takes `If-Match` with the
ETag its GET gave."""

import html
import json
import re

import pytest

from envmanager.models import EnvironmentObject
from envmanager.services import environment_object_update
from tests.envmanager.test_environment_objects import create
from tests.pages.test_pages import browser

pytestmark = pytest.mark.django_db

VALUES = {
    "conn_type": "postgres",
    "host": "db-1",
    "login": "etl",
    "password": "stored-Secret-pw",
    "description": "warehouse",
}


def object_url(team, obj) -> str:
    return f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/"


def update_url(team, obj) -> str:
    return f"{object_url(team, obj)}update/"


def open_page(client, team, obj) -> dict:
    """The edit form's fields as the browser would post them back unchanged."""
    page = client.get(object_url(team, obj)).content.decode()
    opened = re.search(r'name="opened" value="([^"]*)"', page)
    assert opened, "the edit form carries what it showed"
    shown = json.loads(html.unescape(opened.group(1)))
    assert "stored-Secret-pw" not in html.unescape(opened.group(1))  # never a secret
    return {
        "opened": html.unescape(opened.group(1)),
        "key": shown["key"],
        "conn_type": shown["conn_type"],
        "host": shown["host"],
        "login": shown["login"],
        "description": shown["description"],
    }


def stored(obj) -> dict:
    return EnvironmentObject.objects.get(pk=obj.pk).values


@pytest.fixture
def conn(team):
    return create(team, "CONNECTION", "warehouse", VALUES)


def test_a_page_opened_before_another_change_keeps_that_change(team, conn):
    client = browser(team.operator)
    form = open_page(client, team, conn)
    environment_object_update(user=team.owner, obj=conn, values={"host": "db-2"})
    response = client.post(update_url(team, conn), {**form, "description": "edited on the page"})
    assert response.status_code == 302
    values = stored(conn)
    assert values["host"] == "db-2"  # the other change stays
    assert values["description"] == "edited on the page"
    assert values["password"] == "stored-Secret-pw"


def test_a_field_changed_since_the_page_was_opened_is_refused_with_its_current_value(team, conn):
    client = browser(team.operator)
    form = open_page(client, team, conn)
    environment_object_update(user=team.owner, obj=conn, values={"host": "db-2"})
    response = client.post(
        update_url(team, conn), {**form, "host": "db-3", "description": "also edited"}
    )
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert 'Changed since you opened it: now "db-2"' in page
    assert "Nothing was saved" in page
    values = stored(conn)
    assert (values["host"], values["description"]) == ("db-2", "warehouse")
    # Reloaded, the same change saves.
    form = open_page(client, team, conn)
    assert client.post(update_url(team, conn), {**form, "host": "db-3"}).status_code == 302
    assert stored(conn)["host"] == "db-3"


def test_a_rename_since_the_page_was_opened_is_refused_and_a_secret_is_never_shown(team, conn):
    client = browser(team.operator)
    form = open_page(client, team, conn)
    environment_object_update(
        user=team.owner, obj=conn, key="warehouse_v2", values={"password": "newer-Secret"}
    )
    response = client.post(update_url(team, conn), {**form, "key": "warehouse_v3"})
    page = html.unescape(response.content.decode())
    assert 'Changed since you opened it: now "warehouse_v2"' in page
    assert "newer-Secret" not in page and "stored-Secret" not in page
    assert EnvironmentObject.objects.get(pk=conn.pk).key == "warehouse_v2"
    # A typed secret is the user's new value: saved whatever happened to it meanwhile.
    form = open_page(client, team, conn)
    environment_object_update(user=team.owner, obj=conn, values={"password": "third-Secret"})
    assert client.post(update_url(team, conn), {**form, "password": "typed"}).status_code == 302
    assert stored(conn)["password"] == "typed"


def api_url(team, obj) -> str:
    return f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/{obj.pk}"


def test_the_api_patch_takes_if_match_with_the_etag_a_get_gave(api, team, conn):
    client = api.as_user(team.operator)
    etag = client.get(api_url(team, conn))["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    environment_object_update(user=team.owner, obj=conn, values={"host": "db-2"})
    stale = client.patch(
        api_url(team, conn), {"connection": {"host": "db-3"}}, format="json", HTTP_IF_MATCH=etag
    )
    assert stale.status_code == 412
    assert "changed since you read it" in stale.json()["message"]
    assert stored(conn)["host"] == "db-2"
    for weak in (f"W/{etag}",):
        response = client.patch(
            api_url(team, conn), {"connection": {"host": "x"}}, format="json", HTTP_IF_MATCH=weak
        )
        assert response.status_code == 412
    current = client.get(api_url(team, conn))["ETag"]
    assert current != etag
    fresh = client.patch(
        api_url(team, conn),
        {"connection": {"host": "db-3"}},
        format="json",
        HTTP_IF_MATCH=f'"other", {current}',
    )
    assert fresh.status_code == 200 and fresh["ETag"] != current
    assert stored(conn)["host"] == "db-3"
    anything = client.patch(
        api_url(team, conn), {"connection": {"host": "db-4"}}, format="json", HTTP_IF_MATCH="*"
    )
    assert anything.status_code == 200
    without = client.patch(api_url(team, conn), {"connection": {"host": "db-5"}}, format="json")
    assert without.status_code == 200 and stored(conn)["host"] == "db-5"


def test_a_tampered_opened_field_nested_deep_is_a_clean_save_not_a_500(team, conn):
    client = browser(team.operator)
    form = open_page(client, team, conn)
    deep = "[" * 5000 + "]" * 5000
    response = client.post(update_url(team, conn), {**form, "opened": deep, "host": "db-9"})
    assert response.status_code == 302  # read as no snapshot: every field sent, none checked
    assert stored(conn)["host"] == "db-9"
