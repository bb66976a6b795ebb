"""Real headless Chromium (Debian's package) driven by Playwright, against the live server."""

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = os.environ.get("ENVMANAGER_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def page(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(15_000)
        page.base_url = live_server.url
        yield page
        browser.close()


def log_in(page, email: str) -> None:
    page.goto(f"{page.base_url}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()
