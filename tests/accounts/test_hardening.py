import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.cache.backends.filebased import FileBasedCache
from django.test import Client

from accounts.forms import MAX_FAILED_LOGINS, MAX_FAILED_LOGINS_PER_ADDRESS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clear_throttle():
    cache.clear()
    yield
    cache.clear()


def login(client: Client, email: str, password: str):
    return client.post("/login/", {"username": email, "password": password})


def test_login_works_with_the_right_password(team):
    response = login(Client(), team.owner.email, "pw-for-tests-123")
    assert response.status_code == 302


def test_repeated_failed_logins_are_throttled_even_with_the_right_password(team):
    client = Client()
    for _ in range(MAX_FAILED_LOGINS):
        assert login(client, team.owner.email, "wrong").status_code == 200
    response = login(client, team.owner.email, "pw-for-tests-123")
    assert response.status_code == 200
    assert b"Too many failed attempts" in response.content


def admin_login(client: Client, email: str, password: str):
    return client.post(
        "/admin/login/?next=/admin/", {"username": email, "password": password, "next": "/admin/"}
    )


@pytest.fixture
def staff(team):
    team.owner.is_staff = True
    team.owner.is_superuser = True
    team.owner.save()
    return team.owner


def test_admin_login_works_with_the_right_password(staff):
    response = admin_login(Client(), staff.email, "pw-for-tests-123")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_repeated_failed_admin_logins_are_throttled_even_with_the_right_password(staff):
    client = Client()
    for _ in range(MAX_FAILED_LOGINS):
        response = admin_login(client, staff.email, "wrong")
        assert response.status_code == 200
        assert b"Too many failed attempts" not in response.content
    response = admin_login(client, staff.email, "pw-for-tests-123")
    assert response.status_code == 200
    assert b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_and_app_logins_count_the_same_failures(staff):
    for _ in range(MAX_FAILED_LOGINS):
        admin_login(Client(), staff.email, "wrong")
    assert b"Too many failed attempts" in login(Client(), staff.email, "pw-for-tests-123").content


def test_failures_for_one_email_do_not_lock_out_others_at_the_same_address(team):
    client = Client()
    for _ in range(MAX_FAILED_LOGINS + 3):
        login(client, team.author.email, "wrong")
    assert login(Client(), team.member.email, "pw-for-tests-123").status_code == 302


def test_one_address_is_throttled_after_many_failures_across_emails(team):
    client = Client()
    for index in range(MAX_FAILED_LOGINS_PER_ADDRESS):
        login(client, f"guess-{index}@example.com", "wrong")
    response = login(client, team.owner.email, "pw-for-tests-123")
    assert b"Too many failed attempts" in response.content


def test_every_web_worker_process_counts_the_same_failures(team, settings):
    """The embedded default keeps counts in files, so a second process (here: a second cache
    object on the same folder, as another gunicorn worker has) sees them."""
    if "REDIS_URL" in os.environ:
        pytest.skip("the cache is Redis here")
    assert settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache")
    for _ in range(MAX_FAILED_LOGINS):
        login(Client(), team.owner.email, "wrong")
    other_process = FileBasedCache(settings.CACHES["default"]["LOCATION"], {})
    assert other_process.get(f"login-fail:email:{team.owner.email}") == MAX_FAILED_LOGINS


def test_pages_carry_a_content_security_policy_without_inline_script(team):
    client = Client()
    client.force_login(team.owner)
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_api_responses_are_not_cached(api, team):
    response = api.as_user(team.owner).get("/api/v1/workspaces")
    assert response["Cache-Control"] == "no-store"


def test_oversized_request_bodies_are_refused(api, team, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api.as_user(team.owner).post(
        "/api/v1/workspaces", {"name": "x" * 5000}, format="json"
    )
    assert response.status_code == 400  # Django refuses a body over the limit as bad input


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "ENVMANAGER_HTTPS": "true",
        "DEBUG": "false",
        "SECRET_KEY": "a-production-secret-key-" + "x" * 50,
        "ALLOWED_HOSTS": "envmanager.example.com",
        "ENVMANAGER_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "check",
            "--deploy",
            "--fail-level",
            "WARNING",
            "--tag",
            "security",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_admin_shows_but_never_changes_what_the_apps_rules_guard(staff, team):
    """Deleting a Deployment, removing a member, revoking a token or deleting an object has rules
    (an active run refuses, tokens are revoked, grants go, versions and audit are written): the
    admin, which would skip them, offers none of those changes, even to a superuser."""
    from accounts.models import AuditEvent, Membership
    from deployments.models import DeploymentToken
    from deployments.services import deployment_token_create
    from envmanager.models import EnvironmentObject
    from envmanager.services.environment_objects import environment_object_create

    deployment_token_create(user=team.owner, deployment=team.deployment, name="ci")
    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="region",
        values={"value": "eu"},
    )
    client = Client()
    client.force_login(staff)
    events = AuditEvent.objects.count()
    token = DeploymentToken.objects.get(deployment=team.deployment)
    member = Membership.objects.get(workspace=team.workspace, user=team.author)
    pages = {
        "deployments/deployment": team.deployment.pk,
        "deployments/ideproject": None,
        "deployments/deploymenttoken": token.pk,
        "envmanager/environmentobject": obj.pk,
        "accounts/workspace": team.workspace.pk,
        "accounts/apitoken": None,
    }
    for model, pk in pages.items():
        assert client.get(f"/admin/{model}/").status_code == 200  # it still shows
        assert client.get(f"/admin/{model}/add/").status_code == 403
        if pk is None:
            continue
        assert client.get(f"/admin/{model}/{pk}/change/").status_code == 200  # read-only view
        assert client.post(f"/admin/{model}/{pk}/change/", {"name": "renamed"}).status_code == 403
        assert client.get(f"/admin/{model}/{pk}/delete/").status_code == 403
        assert client.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
        bulk = client.post(
            f"/admin/{model}/",
            {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
        )
        assert bulk.status_code in (200, 302)  # the action is not offered: nothing happens
    grants = f"/admin/deployments/deployment/{team.deployment.pk}/permissions/"
    assert b"Object permissions" not in client.get(grants, follow=True).content  # roles give them
    team.deployment.refresh_from_db()
    assert team.deployment.name == "production"
    assert EnvironmentObject.objects.filter(pk=obj.pk).exists()
    assert DeploymentToken.objects.get(pk=token.pk).revoked_at is None
    assert Membership.objects.filter(pk=member.pk).exists()
    page = client.get(f"/admin/accounts/workspace/{team.workspace.pk}/change/").content.decode()
    assert "memberships-0-DELETE" not in page and team.author.email in page
    assert AuditEvent.objects.count() == events
