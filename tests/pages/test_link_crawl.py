"""A walk through every page: for each role, every link a page shows opens (no 4xx or 5xx).
What a role may not open is dimmed text with the reason, never a link to an error page."""

from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from django.test import Client

from deployments.services import deployment_token_create, deployment_update
from envmanager.models import EnvironmentObject
from envmanager.services import (
    environment_object_create,
    environment_object_delete,
    link_create,
)
from envmanager.services.migration import migration_start, migration_undo

# Where a crawl does not go: leaving the session, and pages outside the product's own.
SKIPPED_PREFIXES = ("/logout/", "/static/", "/admin/")
MAX_PAGES = 600


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def hrefs(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.hrefs


@pytest.fixture
def walked(team, airflow_sqlite, django_capture_on_commit_callbacks):
    """A Workspace with something on every page: objects of each scope, links, a token, a
    finished migration run, an undone one, a deleted object (history and audit)."""
    url, key = airflow_sqlite(
        "walk.db",
        {"legacy": {"conn_type": "ftp", "host": "ftp.old"}, "kept": {"conn_type": "http"}},
        {"mode": "prod"},
    )
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=key
    )
    team.deployment.refresh_from_db()
    shared = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "db", "password": "pw-walk-1"},
    )
    link_create(user=team.owner, obj=shared, deployment=team.deployment)
    environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="own_var",
        values={"value": "x"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    gone = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="GONE",
        values={"value": "1"},
    )
    environment_object_delete(user=team.owner, obj=gone)
    deployment_token_create(user=team.owner, deployment=team.deployment, name="airflow-prod")
    with django_capture_on_commit_callbacks(execute=True):
        migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="CONNECTION",
            object_keys=["legacy"],
        )
    with django_capture_on_commit_callbacks(execute=True):
        run = migration_start(
            user=team.owner,
            deployment=team.deployment,
            object_type="AIRFLOW_VARIABLE",
            object_keys=["mode"],
        )
    run.refresh_from_db()
    # Undone to the end here: a run page opened during the walk would otherwise finish the undo
    # and remove objects whose links an earlier page showed.
    with django_capture_on_commit_callbacks(execute=True):
        migration_undo(user=team.owner, run=run)
    run.refresh_from_db()
    assert run.status == "UNDONE"
    assert EnvironmentObject.objects.filter(key="legacy").exists()
    return team


def crawl(user, start: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Every page reachable from `start` by following the links shown: url → status, and the
    page each was found on."""
    client = Client()
    client.force_login(user)
    seen: dict[str, int] = {}
    found_on: dict[str, str] = {}
    queue = list(start)
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code in (301, 302):
            location = urljoin(url, response["Location"])
            found_on.setdefault(location, url)
            queue.append(location)
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        for href in hrefs(response.content.decode()):
            target, _ = urldefrag(urljoin(url, href))
            parts = urlsplit(target)
            if parts.scheme not in ("", "http") or parts.netloc not in ("", "testserver"):
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if path and not path.startswith(SKIPPED_PREFIXES) and path not in seen:
                found_on.setdefault(path, url)
                queue.append(path)
    return seen, found_on


@pytest.mark.parametrize("role", ["member", "author", "operator", "owner"])
def test_every_link_a_role_is_shown_opens(walked, role):
    # The home page, and the migrate pages, which answer every role (a bookmark, a shared URL).
    migrate = [
        f"/deployments/{walked.deployment.pk}/migrate/{t}/" for t in ("connections", "variables")
    ]
    seen, found_on = crawl(walked.user(role), ["/?all=1", *migrate])
    broken = {
        url: f"{status} (linked from {found_on.get(url)})"
        for url, status in seen.items()
        if status >= 400
    }
    assert broken == {}
    assert len(seen) < MAX_PAGES  # the walk ended by itself: every page was reached
    # The walk reached the pages a role is meant to see.
    deployment = walked.deployment.pk
    assert any(url.startswith(f"/deployments/{deployment}/tokens/") for url in seen)
    if role != "member":
        assert any(url.startswith(f"/deployments/{deployment}/environment/") for url in seen)
    if role == "owner":
        assert any(url.startswith("/migrations/") for url in seen)
        assert any(url.startswith(f"/workspaces/{walked.workspace.pk}/audit/") for url in seen)
