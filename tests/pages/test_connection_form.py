"""The connection form as Airflow's own (server side, no script): the chosen type's labels and
extra fields, extra fields stored in `extra`, every error at once, what was typed kept, and the
override dialog showing the Workspace values."""

import pytest

from envmanager.models import EnvironmentObject
from envmanager.services import link_create
from tests.envmanager.test_environment_objects import create
from tests.pages.test_pages import browser

pytestmark = pytest.mark.django_db


def env_url(team) -> str:
    return f"/workspaces/{team.workspace.pk}/environment/?type=connections"


def post_new(team, **fields):
    data = {"type": "connections", **{f"new-{k}": v for k, v in fields.items()}}
    return browser(team.operator).post(env_url(team), data)


def stored(key: str) -> dict:
    return EnvironmentObject.objects.get(key=key).values


def test_posted_extra_fields_land_in_extra_merged_with_the_json(team):
    response = post_new(
        team,
        key="sf",
        conn_type="snowflake",
        login="me",
        extra__account="acme-eu",
        extra__insecure_mode="true",
        extra='{"session_parameters": {"QUERY_TAG": "x"}}',
    )
    assert response.status_code == 302
    assert stored("sf")["extra"] == {
        "account": "acme-eu",
        "insecure_mode": True,
        "session_parameters": {"QUERY_TAG": "x"},
    }


def test_an_extra_field_typed_on_edit_keeps_the_other_stored_keys(team):
    obj = create(team, "CONNECTION", "sf", {"conn_type": "snowflake", "extra": {"role": "r"}})
    url = f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/update/"
    page = browser(team.operator).get(f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/")
    html = page.content.decode()
    assert 'name="extra__role"' in html and "(set; kept unless typed)" in html
    assert 'value="r"' not in html  # extra is secret: its values never show
    response = browser(team.operator).post(
        url, {"key": "sf", "conn_type": "snowflake", "extra__warehouse": "wh"}
    )
    assert response.status_code == 302
    assert stored("sf")["extra"] == {"role": "r", "warehouse": "wh"}


def test_the_form_is_drawn_for_the_posted_type_with_airflows_labels(team):
    html = post_new(team, key="bad key", conn_type="postgres").content.decode()
    assert '<label for="id_new-schema">Database</label>' in html
    html = post_new(team, key="bad key", conn_type="aws").content.decode()
    assert '<label for="id_new-login">AWS Access Key ID</label>' in html
    assert 'placeholder="YOUR_AWS_ACCESS_KEY_ID"' in html


def test_every_field_error_shows_at_once_and_typed_values_stay(team):
    html = post_new(
        team,
        key="bad key",
        conn_type="snowflake",
        host="db.internal",
        port="99999",
        extra="{not json",
        extra__account="acme",
        extra__private_key_content="typed-Secret-key",
    ).content.decode()
    assert "A connection key may contain only" in html
    assert "Ensure this value is less than or equal to 65535." in html
    assert "Not valid JSON" in html
    assert 'value="db.internal"' in html and 'value="acme"' in html
    assert "typed-Secret-key" not in html  # a sensitive extra field is a secret
    retype = html.split("never sent back to your browser: type", 1)[1].split("</p>", 1)[0]
    assert "Private key (Text)" in retype  # named among the secrets to type again
    assert not EnvironmentObject.objects.filter(key="bad key").exists()


def test_an_extra_field_and_the_json_may_not_disagree(team):
    html = post_new(
        team, key="sf", conn_type="snowflake", extra__role="a", extra='{"role": "b"}'
    ).content.decode()
    assert "Extra JSON sets role to another value too" in html
    assert not EnvironmentObject.objects.filter(key="sf").exists()


def test_an_unknown_type_is_allowed_with_a_note(team):
    html = post_new(team, key="bad key", conn_type="my_custom_hook").content.decode()
    note = html.split("data-unknown-type-note", 1)[1].split("</small>", 1)[0]
    assert "hidden" not in note.split(">", 1)[0] and "custom hook" in note
    assert post_new(team, key="c", conn_type="my_custom_hook").status_code == 302
    assert stored("c")["conn_type"] == "my_custom_hook"


@pytest.fixture
def linked(team):
    obj = create(
        team,
        "CONNECTION",
        "warehouse",
        {
            "conn_type": "snowflake",
            "host": "db.internal",
            "password": "stored-Secret-pw",
            "extra": {"account": "stored-Secret-acct"},
        },
    )
    link = link_create(user=team.operator, obj=obj, deployment=team.deployment)
    return obj, link


def test_the_override_dialog_shows_workspace_values_never_secrets(team, linked):
    obj, link = linked
    html = (
        browser(team.operator)
        .get(f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/")
        .content.decode()
    )
    assert 'placeholder="Workspace value: db.internal"' in html
    assert 'placeholder="Workspace value: set"' in html  # the password, the account
    assert 'placeholder="Workspace value: not set"' in html  # e.g. the warehouse
    assert f'name="link{link.pk}-extra__account"' in html
    assert "stored-Secret" not in html


def test_an_override_of_an_extra_field_is_a_single_key_override(team, linked):
    obj, link = linked
    url = f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/links/{link.pk}/override/"
    response = browser(team.operator).post(url, {f"link{link.pk}-extra__warehouse": "wh2"})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.overrides == {"extra.warehouse": "wh2"}


def test_override_errors_show_at_once(team, linked):
    obj, link = linked
    url = f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/links/{link.pk}/override/"
    html = (
        browser(team.operator)
        .post(url, {f"link{link.pk}-port": "not-a-port", f"link{link.pk}-extra": "{bad"})
        .content.decode()
    )
    assert "Not valid JSON" in html  # the extra's error, and the port's with it
    assert "A port is a whole number." in html
    link.refresh_from_db()
    assert link.overrides == {}


def test_an_override_error_keeps_typed_extra_fields_but_never_a_sensitive_one(team, linked):
    obj, link = linked
    url = f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/links/{link.pk}/override/"
    p = f"link{link.pk}-"
    html = (
        browser(team.operator)
        .post(
            url,
            {
                f"{p}extra": "{bad",
                f"{p}extra__warehouse": "wh-typed",
                f"{p}extra__private_key_content": "typed-Secret-key",
            },
        )
        .content.decode()
    )
    assert 'value="wh-typed"' in html
    assert "typed-Secret-key" not in html
    link.refresh_from_db()
    assert link.overrides == {}
