"""`GET /api/v1/lookup/prometheus-config` for a Deployment token: the agent configuration of
that Deployment only, an ETag that changes with its exports (not with other objects), 304 for
a matching If-None-Match, 400 for bad scrape settings, 401 without a valid token."""

import pytest
import yaml
from django.test import Client

from deployments.services import deployment_token_create, deployment_token_revoke
from envmanager.services import environment_object_create, environment_object_update, link_create

PATH = "/api/v1/lookup/prometheus-config"


def get(token: str | None, query: str = "", **headers: str):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    extra.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return Client().get(PATH + query, **extra)


@pytest.fixture
def setup(team):
    team.export = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="METRICS_EXPORT",
        key="grafana",
        values={
            "endpoint": "https://prom.example.com/api/v1/write",
            "auth_type": "BASIC",
            "username": "airflow",
            "password": "old-S3CRET",
            "labels": {"env": "prod"},
        },
    )
    link_create(
        user=team.operator,
        obj=team.export,
        deployment=team.deployment,
        overrides={"labels": {"env": "prod-eu"}},
    )
    _, team.plain = deployment_token_create(
        user=team.operator, deployment=team.deployment, name="agent"
    )
    return team


def test_the_config_is_the_deployments_exports_with_overrides(setup):
    response = get(setup.plain, "?scrapeTarget=127.0.0.1:9102&scrapeInterval=5")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert response["Cache-Control"] == "no-store"
    config = yaml.safe_load(response.content)
    (write,) = config["remote_write"]
    assert write["basic_auth"] == {"username": "airflow", "password": "old-S3CRET"}
    assert write["write_relabel_configs"][0]["replacement"] == "prod-eu"
    assert config["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:9102"]}]
    assert config["global"]["scrape_interval"] == "5s"


def test_etag_304_and_a_new_etag_when_the_export_changes(setup):
    etag = get(setup.plain)["ETag"]
    again = get(setup.plain, if_none_match=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    # Another object of the Deployment does not change the agent's configuration.
    environment_object_create(
        user=setup.operator,
        workspace=setup.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="REGION",
        values={"value": "eu"},
        scope="DEPLOYMENT",
        deployment=setup.deployment,
    )
    assert get(setup.plain, if_none_match=etag).status_code == 304
    # Other scrape settings are another configuration.
    assert get(setup.plain, "?scrapeInterval=7", if_none_match=etag).status_code == 200
    environment_object_update(
        user=setup.operator, obj=setup.export, values={"password": "new-S3CRET"}
    )
    changed = get(setup.plain, if_none_match=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert b"new-S3CRET" in changed.content and b"old-S3CRET" not in changed.content


def test_another_deployments_token_gets_none_of_these_exports(setup):
    _, other = deployment_token_create(
        user=setup.owner, deployment=setup.other_deployment, name="staging"
    )
    config = yaml.safe_load(get(other).content)
    assert config["remote_write"] == []


def test_bad_scrape_settings_are_a_400_that_names_no_secret(setup):
    response = get(setup.plain, "?scrapeTarget=evil%0A-%20x:80")
    assert response.status_code == 400
    assert "scrape target" in response.json()["message"]
    assert get(setup.plain, "?scrapeInterval=0").status_code == 400


def test_no_token_or_a_revoked_one_is_401(setup):
    assert get(None).status_code == 401
    assert get("emd_not-a-token").status_code == 401
    token = setup.deployment.tokens.get()
    deployment_token_revoke(user=setup.owner, token=token)
    response = get(setup.plain)
    assert response.status_code == 401 and b"S3CRET" not in response.content


def test_only_get_and_head(setup):
    head = Client().head(PATH, HTTP_AUTHORIZATION=f"Bearer {setup.plain}")
    assert head.status_code == 200 and head.content == b""
    assert Client().post(PATH, HTTP_AUTHORIZATION=f"Bearer {setup.plain}").status_code == 405
