"""In real Chromium: the New-object button stays put when its panel opens, Cancel closes the
panel, and Copy puts a new token and its configuration on the clipboard."""

import pytest

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_the_new_object_button_stays_put_and_cancel_closes_its_panel(page, team, width):
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, team.operator.email)
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/environment/?type=connections")
    button = page.locator("summary:has-text('New connection')")
    before = button.bounding_box()
    button.click()
    assert page.locator("input[name=new-key]").is_visible()
    assert button.bounding_box() == before
    page.click("details.create button:has-text('Cancel')")
    assert not page.locator("input[name=new-key]").is_visible()
    assert button.bounding_box() == before


def test_copy_puts_the_new_token_and_its_configuration_on_the_clipboard(page, team):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=page.base_url)
    log_in(page, team.operator.email)
    page.goto(f"{page.base_url}/deployments/{team.deployment.pk}/tokens/")
    page.fill("input[name=name]", "airflow-prod")
    page.click("button:has-text('Create token')")
    page.wait_for_load_state()
    token = page.locator("pre.copy").first.inner_text().strip()
    page.click("button[aria-label='Copy the token']")
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert page.locator("button[aria-label='Copy the token']").inner_text() == "Copied"
    page.click("button[aria-label='Copy the secrets backend configuration']")
    backend = page.evaluate("navigator.clipboard.readText()")
    assert backend.startswith(
        "AIRFLOW__SECRETS__BACKEND=envmanager_secrets.EnvManagerSecretsBackend"
    )
    assert token in backend and "Copy" not in backend
    page.click("button[aria-label='Copy the launcher command']")
    launcher = page.evaluate("navigator.clipboard.readText()")
    assert f"ENVMANAGER_TOKEN={token} envmanager-env exec --" in launcher
