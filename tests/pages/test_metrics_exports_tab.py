"""The Deployment's Metrics Exports tab says what an export does, the commands that run it, and
when the configuration last changed; it never shows an export's secret."""

import pytest
from django.test import Client
from django.utils import timezone

from envmanager.services import environment_object_create, link_create

SECRET = "tab-S3CRET-password"


def page(team) -> str:
    client = Client()
    client.force_login(team.author)
    response = client.get(f"/deployments/{team.deployment.pk}/environment/?type=metrics-exports")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_the_tab_says_how_to_run_the_export_and_when_it_last_changed(team):
    assert "No export yet" in page(team)
    export = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="METRICS_EXPORT",
        key="grafana",
        values={
            "endpoint": "https://prom.example.com/api/v1/write",
            "auth_type": "BASIC",
            "username": "airflow",
            "password": SECRET,
        },
    )
    link = link_create(user=team.operator, obj=export, deployment=team.deployment)
    content = page(team)
    assert "remote write of a Prometheus running in agent mode" in content
    assert "envmanager-env prometheus-config /etc/prometheus/envmanager.yml --watch 30" in content
    assert "ENVMANAGER_URL=http://testserver " in content
    assert "prometheus --enable-feature=agent" in content
    changed = timezone.localtime(max(link.updated_at, export.updated_at))
    assert f'last changed <time datetime="{changed.isoformat()}"' in content
    assert SECRET not in content


@pytest.mark.django_db
def test_other_tabs_do_not_show_it(team):
    client = Client()
    client.force_login(team.author)
    response = client.get(f"/deployments/{team.deployment.pk}/environment/?type=connections")
    assert b"data-metrics-pipeline" not in response.content
