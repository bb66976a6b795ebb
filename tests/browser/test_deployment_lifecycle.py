"""Renaming and deleting a Deployment through its settings page, in real headless Chromium."""

import pytest

from accounts.models import AuditEvent
from deployments.models import Deployment
from deployments.services import deployment_token_create
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_renames_then_deletes_a_deployment_through_its_confirmation(page, team, client):
    _, plain = deployment_token_create(user=team.owner, deployment=team.deployment, name="af")
    log_in(page, team.owner.email)
    page.goto(f"{page.base_url}/deployments/{team.deployment.pk}/settings/")

    # Rename: the name field of the settings form.
    page.fill("input[name=name]", "prod-eu")
    page.click("form button:has-text('Save')")
    page.wait_for_load_state()
    assert page.locator("text=Deployment saved.").is_visible()
    assert Deployment.objects.get(pk=team.deployment.pk).name == "prod-eu"

    # Delete: the dialog says what goes and waits for the name, typed exactly.
    page.click("button:has-text('Delete Deployment…')")
    dialog = page.locator("dialog#delete-deployment")
    assert dialog.is_visible()
    assert "revokes its 1 Deployment token" in dialog.inner_text()
    confirm = dialog.locator("button[type=submit]")
    assert confirm.is_disabled()
    dialog.locator("input[name=confirm_name]").fill("production")  # the old name
    assert confirm.is_disabled()
    dialog.locator("input[name=confirm_name]").fill("prod-eu")
    assert confirm.is_enabled()
    confirm.click()
    page.wait_for_load_state()

    assert page.url.rstrip("/").endswith(f"/workspaces/{team.workspace.pk}")
    assert page.locator("text=Deleted Deployment prod-eu").is_visible()
    assert page.locator("table >> text=prod-eu").count() == 0
    assert not Deployment.objects.filter(pk=team.deployment.pk).exists()
    assert AuditEvent.objects.filter(action="deployment.delete", detail__name="prod-eu").exists()
    lookup = client.get("/api/v1/lookup/variables/x", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert lookup.status_code == 401
