"""The main pages at 1280, 800 and 390 px wide in real Chromium: nothing is wider than the
window (wide tables scroll inside their box) and the header keeps to the window. Screenshots
of each are left to look at."""

import os
from pathlib import Path

import pytest

from envmanager.models import EnvironmentObject, MigrationRun
from tests.browser.conftest import log_in
from tests.browser.test_browser import seed_a_realistic_workspace
from tests.pages.test_link_crawl import walked  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(os.environ.get("ENVMANAGER_SCREENSHOTS", "/tmp/envmanager-screenshots"))
WIDTHS = (1280, 800, 390)

# What sticks out of the window, for the failure message.
OVERFLOWING = """() => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5
    && !e.closest("dialog:not([open]), details:not([open]) > :not(summary), .table-scroll"))
  .slice(0, 5)
  .map((e) => e.tagName + "." + e.className + " " + (e.textContent || "").trim().slice(0, 40))"""


def main_pages(team) -> dict[str, str]:
    w, d = team.workspace.pk, team.deployment.pk
    warehouse = EnvironmentObject.objects.get(key="warehouse", scope="WORKSPACE")
    local = EnvironmentObject.objects.get(key="local_scratch")
    run = MigrationRun.objects.filter(deployment=team.deployment).order_by("pk").first()
    return {
        "workspace": f"/workspaces/{w}/",
        "workspace-environment": f"/workspaces/{w}/environment/?type=connections",
        "workspace-object": f"/workspaces/{w}/environment/{warehouse.pk}/",
        "deployment-environment": f"/deployments/{d}/environment/?type=connections",
        "deployment-metrics": f"/deployments/{d}/environment/?type=metrics-exports",
        "deployment-object": f"/deployments/{d}/environment/{local.pk}/",
        "deployment-settings": f"/deployments/{d}/settings/",
        "deployment-tokens": f"/deployments/{d}/tokens/",
        "migrate": f"/deployments/{d}/migrate/connections/",
        "migration-run": f"/migrations/{run.pk}/",
        "audit-log": f"/workspaces/{w}/audit/",
        "history": f"/workspaces/{w}/environment/{warehouse.pk}/history/",
        "api-tokens": "/account/tokens/",
    }


def test_the_main_pages_fit_the_window_at_every_width(page, walked):  # noqa: F811
    walked.workspace.deployments.filter(pk=walked.deployment.pk).update(
        description="The production Airflow of the data platform team"
    )
    EnvironmentObject.objects.filter(key="warehouse").delete()
    seed_a_realistic_workspace(walked)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, walked.owner.email)
    too_wide = {}
    too_tall = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in main_pages(walked).items():
            page.goto(f"{page.base_url}{path}")
            page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            header = page.evaluate(
                "(() => { const h = document.querySelector('header.topbar');"
                " return h.scrollWidth <= h.clientWidth; })()"
            )
            if scroll > inner or not header:
                too_wide[f"{name} at {width}"] = page.evaluate(OVERFLOWING)
            height = page.evaluate(
                "document.querySelector('header.topbar').getBoundingClientRect().height"
            )
            if width == 390 and height > 100:  # three short rows (was five, 157 px)
                too_tall[name] = height
    assert too_wide == {}
    assert too_tall == {}


def test_a_wide_table_scrolls_inside_its_box_at_390(page, walked):  # noqa: F811
    log_in(page, walked.owner.email)
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{page.base_url}/workspaces/{walked.workspace.pk}/audit/")
    box = page.locator(".table-scroll:has(table.table)").first
    scroll, client = box.evaluate("(t) => [t.scrollWidth, t.clientWidth]")
    assert scroll > client  # wider than the window: it scrolls in its box
    # A table narrower than its box still fills it (at 800 the migration run's table fits).
    page.set_viewport_size({"width": 800, "height": 900})
    run = walked.deployment.migration_runs.order_by("pk").first()
    page.goto(f"{page.base_url}/migrations/{run.pk}/")
    box = page.locator(".table-scroll").first
    assert box.evaluate("(b) => b.querySelector('table').offsetWidth === b.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
