"""The connection form in real headless Chromium: the chosen type's fields as Airflow's own
form shows them, extra fields stored in `extra`, JSON checked before sending, every error at
once, and what was typed kept."""

import pytest

from envmanager.models import EnvironmentObject
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_new_connection(page, team) -> None:
    log_in(page, team.operator.email)
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/environment/?type=connections")
    page.click("summary:has-text('New connection')")


def choose_type(page, conn_type: str) -> None:
    page.fill("input[name=new-conn_type]", conn_type)
    page.dispatch_event("input[name=new-conn_type]", "change")


def label_of(page, name: str) -> str:
    return page.locator(f"[data-field={name}] > label").first.inner_text()


def test_postgres_calls_its_schema_database(page, team):
    open_new_connection(page, team)
    choose_type(page, "postgres")
    assert label_of(page, "schema") == "Database"
    assert page.locator("[data-field=host]").is_visible()
    assert page.locator("[data-field=port]").is_visible()
    assert page.locator("option[value=postgres]").count() == 1  # in the searchable list


def test_aws_has_no_host_or_port_and_airflows_labels(page, team):
    open_new_connection(page, team)
    choose_type(page, "aws")
    assert not page.locator("[data-field=host]").is_visible()
    assert not page.locator("[data-field=port]").is_visible()
    assert label_of(page, "login") == "AWS Access Key ID"
    assert page.get_attribute("input[name=new-login]", "placeholder") == "YOUR_AWS_ACCESS_KEY_ID"


def test_an_extra_field_value_lands_in_extra(page, team):
    open_new_connection(page, team)
    page.fill("input[name=new-key]", "sf")
    choose_type(page, "snowflake")
    page.fill("input[name=new-extra__account]", "acme-eu")
    page.select_option("select[name=new-extra__insecure_mode]", "true")
    assert page.get_attribute("input[name=new-extra__private_key_content]", "type") == "password"
    page.fill("textarea[name=new-extra]", '{"session_parameters": {"QUERY_TAG": "t"}}')
    page.click("form button:has-text('Create')")
    page.wait_for_load_state()
    assert page.locator("text=Created sf.").is_visible()
    assert EnvironmentObject.objects.get(key="sf").values["extra"] == {
        "account": "acme-eu",
        "insecure_mode": True,
        "session_parameters": {"QUERY_TAG": "t"},
    }


def test_switching_type_and_back_keeps_what_was_typed_and_sends_only_the_chosen(page, team):
    open_new_connection(page, team)
    page.fill("input[name=new-key]", "g")
    choose_type(page, "snowflake")
    page.fill("input[name=new-extra__account]", "acme")
    choose_type(page, "google_cloud_platform")
    assert page.locator("input[name=new-extra__account]").count() == 0
    page.fill("input[name=new-extra__project]", "my-project")
    choose_type(page, "snowflake")
    assert page.input_value("input[name=new-extra__account]") == "acme"
    page.click("form button:has-text('Create')")
    page.wait_for_load_state()
    assert EnvironmentObject.objects.get(key="g").values["extra"] == {"account": "acme"}


def test_a_custom_type_is_allowed_with_a_note(page, team):
    open_new_connection(page, team)
    choose_type(page, "my_custom_hook")
    assert page.locator("[data-unknown-type-note]").is_visible()
    assert page.locator("[data-field=host]").is_visible()
    choose_type(page, "http")
    assert not page.locator("[data-unknown-type-note]").is_visible()


def test_bad_json_and_a_bad_port_are_shown_at_once_before_sending(page, team):
    open_new_connection(page, team)
    page.fill("input[name=new-key]", "warehouse")
    choose_type(page, "postgres")
    page.fill("input[name=new-host]", "db.internal")
    page.fill("input[name=new-port]", "99999")
    page.fill("textarea[name=new-extra]", '{"sslmode": ')
    url = page.url
    page.click("form button:has-text('Create')")
    errors = page.locator("[data-client-error]")
    assert errors.count() == 2
    assert "Not valid JSON" in page.locator("[data-field=extra] [data-client-error]").inner_text()
    assert page.locator("[data-field=port] [data-client-error]").is_visible()
    assert page.url == url and not EnvironmentObject.objects.exists()
    assert page.input_value("textarea[name=new-extra]") == '{"sslmode": '  # nothing lost
    assert page.input_value("input[name=new-host]") == "db.internal"


def test_after_a_server_error_typed_fields_stay_and_every_error_shows(page, team):
    open_new_connection(page, team)
    page.fill("input[name=new-key]", "bad key")
    choose_type(page, "snowflake")
    page.fill("input[name=new-schema]", "analytics")
    page.fill("input[name=new-login]", "loader")
    page.fill("input[name=new-password]", "typed-Secret-pw")
    page.fill("input[name=new-extra__account]", "acme")
    page.fill("input[name=new-extra__private_key_content]", "typed-Secret-key")
    page.fill("textarea[name=new-description]", "the warehouse")
    page.click("form button:has-text('Create')")
    page.wait_for_load_state()
    assert page.locator("[data-field=key] .error").is_visible()
    assert page.input_value("input[name=new-conn_type]") == "snowflake"
    assert page.input_value("input[name=new-schema]") == "analytics"
    assert not page.locator("[data-field=host]").is_visible()  # still drawn for snowflake
    assert page.input_value("input[name=new-login]") == "loader"
    assert page.input_value("input[name=new-extra__account]") == "acme"
    assert page.input_value("textarea[name=new-description]") == "the warehouse"
    assert page.input_value("input[name=new-password]") == ""
    assert page.input_value("input[name=new-extra__private_key_content]") == ""
    assert "typed-Secret" not in page.content()


def test_the_override_dialog_shows_airflows_labels_and_the_workspace_values(page, team):
    from envmanager.services import environment_object_create, link_create

    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="wh",
        values={
            "conn_type": "postgres",
            "host": "db.internal",
            "password": "stored-Secret-pw",
            "extra": {"sslmode": "stored-Secret-mode"},
        },
    )
    link = link_create(user=team.operator, obj=obj, deployment=team.deployment)
    log_in(page, team.operator.email)
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/environment/{obj.pk}/")
    page.click(f"[data-open-dialog=override-{link.pk}]")
    dialog = page.locator(f"#override-{link.pk}")
    assert dialog.locator("[data-field=schema] > label").inner_text() == "Database"
    p = f"link{link.pk}-"
    assert dialog.locator(f"input[name={p}host]").get_attribute("placeholder") == (
        "Workspace value: db.internal"
    )
    assert dialog.locator(f"input[name={p}password]").get_attribute("placeholder") == (
        "Workspace value: set"
    )
    assert dialog.locator(f"input[name={p}schema]").get_attribute("placeholder") == (
        "Workspace value: not set"
    )
    assert "stored-Secret" not in page.content()
    dialog.locator(f"input[name={p}port]").fill("not-a-port")
    dialog.locator(f"textarea[name={p}extra]").fill("{bad")
    dialog.locator("button:has-text('Save override')").click()
    # Checked before sending: the JSON's problem shown; the port's comes from the server.
    assert "Not valid JSON" in dialog.locator("[data-client-error]").inner_text()
    dialog.locator(f"textarea[name={p}extra]").fill('{"sslmode": "disable"}')
    dialog.locator("button:has-text('Save override')").click()
    page.wait_for_load_state()
    dialog = page.locator(f"#override-{link.pk}")
    assert "A port is a whole number." in dialog.inner_text()
    assert dialog.locator(f"input[name={p}port]").input_value() == "not-a-port"
