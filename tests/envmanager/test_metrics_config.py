"""A Deployment's metrics exports as a Prometheus agent configuration: what each auth type,
headers and labels become, what is left out and said so, and `promtool check config --agent`
(Debian's prometheus package) accepting every rendering made here."""

import pytest
import yaml

from envmanager import metrics_config
from envmanager.metrics_config import InvalidScrapeSettings, ScrapeSettings, render
from envmanager.services import environment_object_create, link_create, link_set_overrides
from tests.prometheus_support import promtool_check

BASIC = {
    "endpoint": "https://metrics.example.com/api/v1/write",
    "auth_type": "BASIC",
    "username": "airflow",
    "password": "basic-S3CRET",
    "headers": {"X-Scope-OrgID": "team-a"},
    "labels": {"deployment": "prod", "team": "data"},
}
TOKEN = {
    "endpoint": "https://mimir.example.com/api/v1/push",
    "auth_type": "AUTH_TOKEN",
    "basic_token": "token-S3CRET",
    "labels": {"cost_center": "42$1"},
}
SIGV4 = {
    "endpoint": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
    "auth_type": "SIGV4",
    "sig_v4_assume_arn": "arn:aws:iam::123456789012:role/prometheus-writer",
    "sig_v4_sts_region": "eu-west-1",
}
NO_AUTH = {"endpoint": "http://127.0.0.1:9090/api/v1/write"}


def parsed(text: str) -> dict:
    return yaml.safe_load(text)


def entry(text: str, name: str) -> dict:
    return next(e for e in parsed(text)["remote_write"] if e["name"] == name)


def test_basic_auth_headers_and_labels(tmp_path):
    text = render({"grafana": BASIC}, ScrapeSettings())
    promtool_check(text, tmp_path)
    assert entry(text, "grafana") == {
        "name": "grafana",
        "url": BASIC["endpoint"],
        "basic_auth": {"username": "airflow", "password": "basic-S3CRET"},
        "headers": {"X-Scope-OrgID": "team-a"},
        "write_relabel_configs": [
            {"action": "replace", "target_label": "deployment", "replacement": "prod"},
            {"action": "replace", "target_label": "team", "replacement": "data"},
        ],
    }


def test_auth_token_is_a_bearer_authorization_and_a_dollar_stays_a_dollar(tmp_path):
    text = render({"mimir": TOKEN}, ScrapeSettings())
    promtool_check(text, tmp_path)
    got = entry(text, "mimir")
    assert got["authorization"] == {"type": "Bearer", "credentials": "token-S3CRET"}
    # Prometheus expands $1 in a replacement; $$ is a literal $.
    assert got["write_relabel_configs"] == [
        {"action": "replace", "target_label": "cost_center", "replacement": "42$$1"}
    ]


def test_sigv4_has_its_region_and_role(tmp_path):
    text = render({"amp": SIGV4}, ScrapeSettings())
    promtool_check(text, tmp_path)
    assert entry(text, "amp")["sigv4"] == {
        "region": "eu-west-1",
        "role_arn": "arn:aws:iam::123456789012:role/prometheus-writer",
    }
    assert "basic_auth" not in entry(text, "amp") and "authorization" not in entry(text, "amp")


def test_several_exports_each_get_a_remote_write_and_one_scrape_job(tmp_path):
    scrape = ScrapeSettings.parse("statsd-bridge.internal:9103", "15")
    text = render({"b": TOKEN, "a": BASIC, "c": SIGV4, "d": NO_AUTH}, scrape)
    promtool_check(text, tmp_path)
    config = parsed(text)
    assert [e["name"] for e in config["remote_write"]] == ["a", "b", "c", "d"]
    assert config["global"]["scrape_interval"] == "15s"
    assert config["scrape_configs"] == [
        {"job_name": "airflow", "static_configs": [{"targets": ["statsd-bridge.internal:9103"]}]}
    ]
    assert set(entry(text, "d")) == {"name", "url"}


def test_no_export_is_still_a_valid_agent_configuration(tmp_path):
    text = render({}, ScrapeSettings())
    promtool_check(text, tmp_path)
    assert parsed(text)["remote_write"] == []
    assert "No metrics export" in text


def test_what_prometheus_would_refuse_is_left_out_and_said_without_secrets(tmp_path):
    hostile = {
        **BASIC,
        "headers": {
            "Authorization": "Bearer header-S3CRET",
            "Content-Type": "text/plain",
            "Bad Header": "x",
            "X-Fine": "ok",
            "X-Split": "a\r\nInjected: header-S3CRET",
            "X-Bell": "a\x07b",
            "X-Tab": "a\tb",
        },
        "labels": {"9lives": "x", "__name__": "x", "ok_label": "yes", "a-b": "c"},
    }
    text = render({"grafana": hostile, "broken": {"endpoint": "ftp://x"}}, ScrapeSettings())
    promtool_check(text, tmp_path)
    got = entry(text, "grafana")
    assert got["headers"] == {"X-Fine": "ok", "X-Tab": "a\tb"}
    assert [r["target_label"] for r in got["write_relabel_configs"]] == ["ok_label"]
    assert [e["name"] for e in parsed(text)["remote_write"]] == ["grafana"]
    comments = "".join(line for line in text.splitlines(True) if line.startswith("#"))
    assert "5 header(s) left out" in comments
    assert '"9lives"' in comments and '"a-b"' in comments and '"__name__"' in comments
    assert "Export broken: its endpoint is not" in comments
    assert "S3CRET" not in comments


@pytest.mark.parametrize(
    ("target", "interval"),
    [
        ("localhost", None),
        ("host:0", None),
        ("host:70000", None),
        ("a b:80", None),
        ("host:80\n- evil", None),
        ("host:80", "0"),
        ("host:80", "1.5"),
        ("host:80", "٣"),
        ("host:80", "99999"),
    ],
)
def test_a_bad_scrape_target_or_interval_is_refused(target, interval):
    with pytest.raises(InvalidScrapeSettings):
        ScrapeSettings.parse(target, interval)


def test_scrape_settings_defaults_and_ipv6():
    assert ScrapeSettings.parse(None, None) == ScrapeSettings("127.0.0.1:9103", 30)
    assert ScrapeSettings.parse("[::1]:9103", "5") == ScrapeSettings("[::1]:9103", 5)


@pytest.mark.django_db
def test_a_deployment_renders_its_exports_with_overrides_applied(team, tmp_path):
    grafana = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="METRICS_EXPORT",
        key="grafana",
        values=BASIC,
    )
    link = link_create(user=team.operator, obj=grafana, deployment=team.deployment)
    environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="METRICS_EXPORT",
        key="own",
        values=TOKEN,
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    scrape = ScrapeSettings()
    before = metrics_config.prometheus_config_version(team.deployment.pk, scrape)
    link = link_set_overrides(
        user=team.operator,
        link=link,
        overrides={"password": "override-S3CRET", "labels": {"deployment": "prod-eu"}},
    )
    text = metrics_config.deployment_prometheus_config(team.deployment.pk, scrape)
    promtool_check(text, tmp_path)
    assert [e["name"] for e in parsed(text)["remote_write"]] == ["grafana", "own"]
    assert entry(text, "grafana")["basic_auth"]["password"] == "override-S3CRET"
    assert entry(text, "grafana")["write_relabel_configs"] == [
        {"action": "replace", "target_label": "deployment", "replacement": "prod-eu"}
    ]
    assert metrics_config.prometheus_config_version(team.deployment.pk, scrape) != before
    assert metrics_config.metrics_exports_changed_at(team.deployment.pk) == link.updated_at
