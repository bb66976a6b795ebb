"""The migration pages and API, on the embedded default, against a real Airflow SQLite DB."""

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from deployments.services import deployment_update
from envmanager.models import EnvironmentObject, MigrationRun
from tests.airflow_support import make_metadata_db

pytestmark = pytest.mark.airflow
KEY = Fernet.generate_key().decode()
CONNECTIONS = {
    "warehouse": {"conn_type": "postgres", "host": "db", "password": "pw-123456"},
    "api": {"conn_type": "http", "host": "api.example.com"},
}


@pytest.fixture
def source(team, tmp_path):
    url = make_metadata_db(
        tmp_path, fernet_key=KEY, connections=CONNECTIONS, variables={"mode": "prod"}
    )
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=KEY
    )
    return team


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_tab_offers_migration_to_owners_only_with_reasons(source):
    url = f"/deployments/{source.deployment.pk}/environment/?type=connections"
    owner_page = browser(source.owner).get(url).content.decode()
    assert f'href="/deployments/{source.deployment.pk}/migrate/connections/"' in owner_page
    operator_page = browser(source.operator).get(url).content.decode()
    assert "Only Workspace Owners can migrate from Airflow." in operator_page
    metrics = browser(source.owner).get(url.replace("connections", "metrics-exports"))
    assert b"Migrate from Airflow" not in metrics.content


def test_migrate_is_disabled_when_the_database_holds_none(source, tmp_path):
    empty = make_metadata_db(tmp_path, fernet_key=KEY)
    deployment_update(user=source.owner, deployment=source.deployment, metadata_db_url=empty)
    page = (
        browser(source.owner)
        .get(f"/deployments/{source.deployment.pk}/environment/?type=connections")
        .content.decode()
    )
    assert 'disabled title="The metadata database holds none."' in page


def test_selection_page_confirm_and_results(source, django_capture_on_commit_callbacks):
    client = browser(source.owner)
    page = client.get(f"/deployments/{source.deployment.pk}/migrate/connections/").content
    assert b"New to the Workspace" in page and b"will be removed from the Deployment" in page
    assert b"pw-123456" not in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/deployments/{source.deployment.pk}/migrate/connections/start/",
            {"keys": ["warehouse", "api"]},
        )
    run = MigrationRun.objects.get()
    assert response.url == f"/migrations/{run.pk}/"
    result = client.get(response.url).content.decode()
    assert "Succeeded" in result and "Moved (source row deleted)" in result
    assert EnvironmentObject.objects.count() == 2


def test_the_api_flow(source, api, django_capture_on_commit_callbacks):
    client = api.as_user(source.owner)
    base = f"/api/v1/deployments/{source.deployment.pk}"
    candidates = client.get(f"{base}/migration-candidates", {"objectType": "CONNECTION"}).json()
    assert {c["objectKey"]: c["status"] for c in candidates["candidates"]} == {
        "api": "NEW",
        "warehouse": "NEW",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{base}/migrations",
            {"objectType": "AIRFLOW_VARIABLE", "objectKeys": ["mode"]},
            format="json",
        )
    assert response.status_code == 202
    run = client.get(f"/api/v1/migrations/{response.json()['id']}").json()
    assert run["status"] == "SUCCEEDED" and run["progress"]["deleted"] == 1
    assert run["items"][0]["state"] == "DELETED"
    with django_capture_on_commit_callbacks(execute=True):
        undo = client.post(f"/api/v1/migrations/{run['id']}/undo")
    assert undo.status_code == 202
    assert client.get(f"/api/v1/migrations/{run['id']}").json()["status"] == "UNDONE"


@pytest.mark.parametrize("role", ["OPERATOR", "AUTHOR", "MEMBER"])
def test_the_api_refuses_non_owners(source, api, role):
    client = api.as_user(source.user(role))
    base = f"/api/v1/deployments/{source.deployment.pk}"
    assert client.get(f"{base}/migration-candidates").status_code == 403
    response = client.post(
        f"{base}/migrations", {"objectType": "CONNECTION", "objectKeys": ["api"]}, format="json"
    )
    assert response.status_code == 403


def test_bad_requests_are_400(source, api):
    client = api.as_user(source.owner)
    base = f"/api/v1/deployments/{source.deployment.pk}"
    assert (
        client.post(
            f"{base}/migrations",
            {"objectType": "METRICS_EXPORT", "objectKeys": ["x"]},
            format="json",
        ).status_code
        == 400
    )
    assert (
        client.post(
            f"{base}/migrations", {"objectType": "CONNECTION", "objectKeys": []}, format="json"
        ).status_code
        == 400
    )
    response = client.post(
        f"{base}/migrations", {"objectType": "CONNECTION", "objectKeys": ["nope"]}, format="json"
    )
    assert response.status_code == 400 and "nope" in response.json()["message"]


def test_other_tenants_get_404(source, api, other_team):
    client = api.as_user(other_team.owner)
    assert (
        client.get(f"/api/v1/deployments/{source.deployment.pk}/migration-candidates").status_code
        == 404
    )
    run = MigrationRun.objects.create(
        workspace=source.workspace,
        deployment=source.deployment,
        object_type="CONNECTION",
        status="SUCCEEDED",
    )
    assert client.get(f"/api/v1/migrations/{run.pk}").status_code == 404


def test_migration_pages_lead_back_to_the_deployments_environment_tab(source):
    client = browser(source.owner)
    back = f'href="/deployments/{source.deployment.pk}/environment/?type=airflow-variables"'
    page = client.get(f"/deployments/{source.deployment.pk}/migrate/variables/").content.decode()
    assert back in page and f'href="/workspaces/{source.workspace.pk}/"' in page
    tab = client.get(f"/deployments/{source.deployment.pk}/environment/?type=airflow-variables")
    assert tab.status_code == 200
