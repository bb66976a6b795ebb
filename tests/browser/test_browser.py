"""End to end in real headless Chromium (Debian's package), driven by Playwright."""

import os
from pathlib import Path

import pytest

from envmanager.models import EnvironmentObject, Link
from envmanager.services import environment_object_create, link_create
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Screenshots of the main pages, to look at after a run.
SCREENSHOTS = Path(os.environ.get("ENVMANAGER_SCREENSHOTS", "/tmp/envmanager-screenshots"))


def open_new_object_form(page, team, slug: str, label: str) -> None:
    """As an Operator, the Workspace Environment's "New …" form of one type, opened."""
    log_in(page, team.operator.email)
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/environment/?type={slug}")
    page.click(f"summary:has-text('New {label}')")


def test_create_link_with_override_and_see_it_on_the_deployment_tab(page, team):
    open_new_object_form(page, team, "connections", "connection")
    page.fill("input[name=new-key]", "warehouse")
    page.fill("input[name=new-conn_type]", "postgres")
    page.fill("input[name=new-host]", "db.internal")
    page.fill("input[name=new-password]", "s3cret-pw")
    page.fill("textarea[name=new-extra]", '{"sslmode": "require"}')
    page.click("form button:has-text('Create')")
    page.wait_for_load_state()
    assert page.locator("text=Created warehouse.").is_visible()

    page.click("a:has-text('Edit and link')")
    page.click("summary:has-text('Link to a Deployment')")
    page.select_option("select[name=target]", label=f"Deployment {team.deployment.name}")
    page.fill("input[name=link-host]", "prod-db.internal")
    page.click("form button:has-text('Link')")
    page.wait_for_load_state()
    assert page.locator("text=Linked.").is_visible()

    page.goto(f"{page.base_url}/deployments/{team.deployment.pk}/environment/?type=connections")
    row = page.locator("tr:has-text('warehouse')")
    assert row.locator(".badge-override").is_visible()
    assert "prod-db.internal" in row.inner_text()
    assert "s3cret-pw" not in page.content()
    link = Link.objects.get(deployment=team.deployment, object_key="warehouse")
    assert link.overrides == {"host": "prod-db.internal"}


def test_screenshots_of_the_environment_pages(page, team):
    """Not an assertion of looks: it leaves pictures of the two main pages to look at."""
    seed_a_realistic_workspace(team)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, team.operator.email)
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/environment/?type=connections")
    page.screenshot(path=SCREENSHOTS / "workspace-environment.png", full_page=True)
    page.click("summary:has-text('New connection')")
    page.fill("input[name=new-conn_type]", "postgres")
    page.screenshot(path=SCREENSHOTS / "workspace-environment-new.png", full_page=True)
    page.goto(f"{page.base_url}/deployments/{team.deployment.pk}/environment/?type=connections")
    page.locator("tr:has-text('local_scratch') summary").click()
    page.screenshot(path=SCREENSHOTS / "deployment-environment.png", full_page=True)
    obj = EnvironmentObject.objects.get(key="warehouse")
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/environment/{obj.pk}/")
    page.screenshot(path=SCREENSHOTS / "environment-object.png", full_page=True)
    page.click("button:has-text('Edit override')")
    page.screenshot(path=SCREENSHOTS / "override-dialog.png")
    assert "s3cret" not in page.content()


def seed_a_realistic_workspace(team) -> None:
    owner, workspace = team.owner, team.workspace
    connections = {
        "warehouse": {
            "conn_type": "postgres",
            "host": "warehouse.internal",
            "schema": "analytics",
            "login": "etl",
            "password": "s3cret-1",
            "port": 5432,
        },
        "aws_default": {"conn_type": "aws", "login": "AKIAEXAMPLE", "password": "s3cret-2"},
        "slack_alerts": {"conn_type": "slack", "password": "s3cret-3"},
        "payments_api": {"conn_type": "http", "host": "https://api.payments.example.com"},
    }
    for key, values in connections.items():
        obj = environment_object_create(
            user=owner,
            workspace=workspace,
            object_type="CONNECTION",
            key=key,
            values=values,
            auto_link_deployments=key == "aws_default",
        )
        if key == "warehouse":
            link_create(
                user=owner,
                obj=obj,
                deployment=team.deployment,
                overrides={"host": "warehouse-prod.internal", "password": "s3cret-4"},
            )
            link_create(user=owner, obj=obj, deployment=team.other_deployment)
        if key == "slack_alerts":
            link_create(user=owner, obj=obj, deployment=team.deployment)
    environment_object_create(
        user=owner,
        workspace=workspace,
        object_type="CONNECTION",
        key="local_scratch",
        values={"conn_type": "sqlite", "host": "/tmp/scratch.db"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )


def own_api_mode(team) -> EnvironmentObject:
    """An environment variable of the Deployment's own (promoting it asks for its key)."""
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="API_MODE",
        values={"value": "live"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )


def test_promote_an_environment_variable_by_typing_its_key(page, team):
    obj = own_api_mode(team)
    log_in(page, team.operator.email)
    page.goto(
        f"{page.base_url}/deployments/{team.deployment.pk}/environment/?type=environment-variables"
    )
    page.click("tr:has-text('API_MODE') summary")
    page.click("button:has-text('Promote to Workspace Environment')")
    dialog = page.locator(f"dialog#promote-{obj.pk}")
    assert dialog.is_visible()
    submit = dialog.locator("button[type=submit]")
    assert submit.is_disabled()
    dialog.locator("input[name=confirm_key]").fill("API_MOD")
    assert submit.is_disabled()
    dialog.locator("input[name=confirm_key]").fill("API_MODE")
    assert submit.is_enabled()
    submit.click()
    page.wait_for_load_state()
    assert "now a Workspace object" in page.content()
    assert EnvironmentObject.objects.get(pk=obj.pk).scope == "WORKSPACE"


def assert_centred_and_wrapped(page, dialog) -> None:
    """The open dialog sits in the middle of the window and its text wraps inside it."""
    assert dialog.is_visible()
    box = dialog.bounding_box()
    width = page.viewport_size["width"]
    assert abs(box["x"] - (width - box["x"] - box["width"])) <= 2, box
    style = dialog.evaluate(
        "d => [getComputedStyle(d).whiteSpace, getComputedStyle(d).textAlign,"
        " d.scrollWidth <= d.clientWidth]"
    )
    assert style == ["normal", "left", True], style


def test_confirmation_dialogs_in_table_rows_are_centred_and_wrap(page, team):
    own = own_api_mode(team)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, team.owner.email)
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/")
    page.click(f"[data-open-dialog='remove-member-{team.member.pk}']")
    dialog = page.locator(f"dialog#remove-member-{team.member.pk}")
    assert_centred_and_wrapped(page, dialog)
    page.screenshot(path=SCREENSHOTS / "remove-member-dialog.png")
    dialog.locator("[data-close]").click()

    page.goto(
        f"{page.base_url}/deployments/{team.deployment.pk}/environment/?type=environment-variables"
    )
    for opener in (f"promote-{own.pk}", f"delete-{own.pk}"):
        page.click("tr:has-text('API_MODE') summary")
        page.click(f"[data-open-dialog='{opener}']")
        dialog = page.locator(f"dialog#{opener}")
        assert_centred_and_wrapped(page, dialog)
        page.screenshot(path=SCREENSHOTS / f"deployment-tab-{opener.split('-')[0]}-dialog.png")
        dialog.locator("[data-close]").click()


def test_the_metrics_form_shows_the_fields_of_the_chosen_auth_type(page, team):
    open_new_object_form(page, team, "metrics-exports", "metrics export")
    auth = ["username", "password", "basic_token", "sig_v4_assume_arn", "sig_v4_sts_region"]

    def shown() -> list[str]:
        return [n for n in auth if page.locator(f"[data-field={n}]").is_visible()]

    assert shown() == []
    page.select_option("select[name=new-auth_type]", "BASIC")
    assert shown() == ["username", "password"]
    page.select_option("select[name=new-auth_type]", "AUTH_TOKEN")
    assert shown() == ["basic_token"]
    page.select_option("select[name=new-auth_type]", "SIGV4")
    assert shown() == ["sig_v4_assume_arn", "sig_v4_sts_region"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "metrics-export-sigv4.png", full_page=True)
    page.fill("input[name=new-key]", "prom")
    page.fill("input[name=new-endpoint]", "https://prom.example.com/api/v1/write")
    page.fill("input[name=new-sig_v4_assume_arn]", "arn:aws:iam::1:role/w")
    page.click("form button:has-text('Create')")
    page.wait_for_load_state()
    assert page.locator("text=Created prom.").is_visible()
    values = EnvironmentObject.objects.get(key="prom").values
    assert (values["auth_type"], values["exporter_type"]) == ("SIGV4", "PROMETHEUS")


def test_a_secret_typed_before_an_error_is_not_in_the_page_and_the_form_says_so(page, team):
    open_new_object_form(page, team, "connections", "connection")
    page.fill("input[name=new-key]", "my key")
    page.fill("input[name=new-uri]", "mysql://u:UriEcho-2323@h:3306/db")
    page.fill("textarea[name=new-extra]", '{"token": "UriEcho-2323"}')
    page.click("form button:has-text('Create')")
    page.wait_for_load_state()
    assert "UriEcho-2323" not in page.content()
    assert page.input_value("input[name=new-uri]") == ""
    assert page.locator("text=secrets are never sent back to your browser").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "connection-error-secrets-cleared.png", full_page=True)
