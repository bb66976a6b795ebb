"""History in real headless Chromium: compare a version with now, then restore it after the
confirmation that lists what restoring changes."""

import os
from pathlib import Path

import pytest

from envmanager.models import EnvironmentObject
from envmanager.services import environment_object_create, environment_object_update, link_create
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SECRET = "browser-hist-S3cret"
SCREENSHOTS = Path(os.environ.get("ENVMANAGER_SCREENSHOTS", "/tmp/envmanager-screenshots"))


def test_compare_a_version_with_now_and_restore_it_after_confirming(page, team):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "old-db", "password": SECRET},
    )
    link_create(user=team.operator, obj=obj, deployment=team.deployment)
    environment_object_update(
        user=team.operator, obj=obj, values={"host": "new-db", "password": SECRET + "-rotated"}
    )
    log_in(page, team.operator.email)
    page.goto(f"{page.base_url}/workspaces/{team.workspace.pk}/environment/{obj.pk}/history/")
    link_row = page.locator("tr:has-text('Before a link')")
    assert f"Deployment {team.deployment.name}" in link_row.inner_text()
    update_row = page.locator("tr:has-text('Before an update')")
    update_row.locator("a:has-text('Compare with now')").click()
    page.wait_for_load_state()

    host = page.locator("#version-diff tr[data-field=host]")
    assert "old-db" in host.inner_text() and "new-db" in host.inner_text()
    assert "changed" in host.inner_text()
    password = page.locator("#version-diff tr[data-field=password]")
    assert "secret" in password.inner_text() and "changed" in password.inner_text()
    assert "unchanged" in page.locator("#version-diff tr[data-field=conn_type]").inner_text()
    assert SECRET not in page.content()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "version-diff.png"), full_page=True)
    confirmation = page.locator("#restore-confirmation")
    assert "new-db → old-db" in confirmation.inner_text()
    assert "Links and overrides stay as they are now" in confirmation.inner_text()
    obj.refresh_from_db()
    assert obj.values["host"] == "new-db"  # seeing the confirmation changed nothing
    confirmation.locator("button:has-text('Restore this version')").click()
    page.wait_for_load_state()
    assert page.locator("text=Restored connection warehouse.").is_visible()
    restored = EnvironmentObject.objects.get(pk=obj.pk)
    assert restored.values["host"] == "old-db" and restored.values["password"] == SECRET
    assert SECRET not in page.content()
