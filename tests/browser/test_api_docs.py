"""The interactive API docs work with the network closed and under our CSP."""

import pytest

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_from_our_own_files_under_our_csp(page, team):
    log_in(page, team.owner.email)
    foreign, errors = [], []
    page.on(
        "request",
        lambda r: foreign.append(r.url) if not r.url.startswith(page.base_url) else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    response = page.goto(f"{page.base_url}/api/v1/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/workspaces/{workspace_id}/environment-objects" in paths
    assert len(paths) > 20  # the operations of our schema
    assert foreign == [] and errors == []
