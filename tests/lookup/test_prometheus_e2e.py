"""A metrics export ships Airflow's metrics, with real parts on loopback: StatsD lines as
Airflow's client sends them reach collectd (Debian's collectd-core: its statsd plugin, served
for Prometheus by its write_prometheus plugin); a real Prometheus in agent mode, configured only
by our rendering (written and kept current by `envmanager-env prometheus-config --watch`
against the app), scrapes collectd and remote-writes to a second real Prometheus that runs the
remote-write receiver behind basic auth (its web config, a bcrypt hash made by `htpasswd` of
apache2-utils). The series arrive with the export's labels; after the receiver's password is
rotated, the agent's writes with the old one are refused; the export's password is changed in
envmanager, the agent reloads, and new samples arrive with the new one.

One test, bounded (about 25 s here), every process stopped at the end."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from deployments.services import deployment_token_create
from envmanager.services import environment_object_create, environment_object_update, link_create
from tests.gunicorn_server import free_port
from tests.lookup.test_airflow_e2e import app_server  # noqa: F401 (a fixture)
from tests.prometheus_support import require_binary

# Once, in the PostgreSQL pass (the database the app runs on in production): it takes seconds.
pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

USER = "airflow-writer"
OLD_PASSWORD = "old-S3CRET-pw"
NEW_PASSWORD = "new-S3CRET-pw"
LABELS = {"deployment": "production", "team": "data"}
# Airflow's StatsD client sends `<prefix>.<name>:<value>|g` (AIRFLOW__METRICS__STATSD_PREFIX).
STATSD_LINE = b"airflow.dagbag_size:3|g"
SERIES = (
    'collectd_statsd_gauge{job="airflow",statsd="airflow.dagbag_size",'
    'deployment="production",team="data"}'
)
COLLECTD = """Interval 1
Hostname "airflow-host"
FQDNLookup false
BaseDir "%(dir)s"
PIDFile "%(dir)s/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin statsd
<Plugin statsd>
  Host "127.0.0.1"
  Port "%(statsd)d"
</Plugin>
LoadPlugin write_prometheus
<Plugin write_prometheus>
  Host "127.0.0.1"
  Port "%(prometheus)d"
</Plugin>
"""
DEADLINE = 60


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_hash(password: str) -> str:
    htpasswd = require_binary("htpasswd")
    # Cost 4, the least bcrypt allows: the receiver checks it on every request.
    out = subprocess.run(
        [htpasswd, "-niBC", "4", USER],
        input=password,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    return out.strip().split(":", 1)[1]


def web_config(path: Path, password: str) -> None:
    # The receiver reads its web config on every request: a rotation applies at once.
    path.write_text(f"basic_auth_users:\n  {USER}: '{bcrypt_hash(password)}'\n")


def wait_for(what: str, condition, logs: list[Path], timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in logs if p.exists())
            pytest.fail(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.25)


def query(base: str, promql: str, password: str) -> list[dict]:
    try:
        resp = requests.get(
            f"{base}/api/v1/query", params={"query": promql}, auth=(USER, password), timeout=5
        )
    except requests.ConnectionError:
        return []
    return resp.json()["data"]["result"] if resp.status_code == 200 else []


def agent_metric(base: str, name: str) -> float:
    try:
        text = requests.get(f"{base}/metrics", timeout=5).text
    except requests.ConnectionError:
        return 0.0
    values = [float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
    return sum(values)


def test_an_export_ships_metrics_through_a_real_prometheus_agent(
    team,
    app_server,  # noqa: F811 - the fixture
    tmp_path,
):
    started = time.monotonic()
    prometheus = require_binary("prometheus")
    collectd = require_binary("collectd")
    receiver_port, agent_port, bridge_port = free_port(), free_port(), free_port()
    statsd_port = free_udp_port()
    receiver = f"http://127.0.0.1:{receiver_port}"
    agent = f"http://127.0.0.1:{agent_port}"

    export = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="METRICS_EXPORT",
        key="central",
        values={
            "endpoint": f"{receiver}/api/v1/write",
            "auth_type": "BASIC",
            "username": USER,
            "password": OLD_PASSWORD,
            "labels": {"team": "data", "deployment": "all"},
        },
    )
    link_create(
        user=team.operator,
        obj=export,
        deployment=team.deployment,
        overrides={"labels": LABELS},
    )
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="agent")

    web = tmp_path / "web.yml"
    web_config(web, OLD_PASSWORD)
    (tmp_path / "receiver.yml").write_text("global:\n  scrape_interval: 1m\n")
    config = tmp_path / "agent.yml"
    bridge = tmp_path / "collectd"
    bridge.mkdir()
    (bridge / "collectd.conf").write_text(
        COLLECTD % {"dir": bridge, "statsd": statsd_port, "prometheus": bridge_port}
    )
    logs = [tmp_path / n for n in ("receiver.log", "watcher.log", "agent.log", "collectd.log")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVMANAGER_")}
    env.update(ENVMANAGER_URL=app_server, ENVMANAGER_TOKEN=token)
    processes: list[subprocess.Popen] = []

    def start(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
        with log.open("w") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        processes.append(proc)
        return proc

    try:
        start([collectd, "-f", "-C", str(bridge / "collectd.conf")], logs[3])
        start(
            [
                prometheus,
                f"--config.file={tmp_path / 'receiver.yml'}",
                f"--storage.tsdb.path={tmp_path / 'receiver-data'}",
                f"--web.listen-address=127.0.0.1:{receiver_port}",
                f"--web.config.file={web}",
                "--web.enable-remote-write-receiver",
            ],
            logs[0],
        )
        start(
            [
                sys.executable,
                "-m",
                "envmanager_secrets.env",
                "prometheus-config",
                str(config),
                "--scrape-target",
                f"127.0.0.1:{bridge_port}",
                "--scrape-interval",
                "1",
                "--watch",
                "0.5",
                "--reload-url",
                f"{agent}/-/reload",
            ],
            logs[1],
            env=env,
        )
        wait_for("the configuration file", config.exists, logs)
        assert config.stat().st_mode & 0o777 == 0o600
        start(
            [
                prometheus,
                "--enable-feature=agent",  # Debian's 2.42; Prometheus 3 calls it --agent
                f"--config.file={config}",
                f"--storage.agent.path={tmp_path / 'agent-data'}",
                f"--web.listen-address=127.0.0.1:{agent_port}",
                "--web.enable-lifecycle",
            ],
            logs[2],
        )

        # Airflow's metric, through the bridge and the agent, arrives at the receiver with the
        # export's labels (overridden for this Deployment).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:

            def arrived():
                udp.sendto(STATSD_LINE, ("127.0.0.1", statsd_port))
                return query(receiver, SERIES, OLD_PASSWORD)

            (series,) = wait_for("the series at the receiver", arrived, logs)
        assert series["value"][1] == "3"
        assert series["metric"]["instance"] == f"127.0.0.1:{bridge_port}"

        # The receiver's password is rotated: the agent's writes with the old one are refused.
        web_config(web, NEW_PASSWORD)
        old = requests.post(f"{receiver}/api/v1/write", data=b"", auth=(USER, OLD_PASSWORD))
        assert old.status_code == 401
        new = requests.post(f"{receiver}/api/v1/write", data=b"", auth=(USER, NEW_PASSWORD))
        assert new.status_code != 401  # past auth (an empty body is then a bad request)
        failed_before = agent_metric(agent, "prometheus_remote_storage_samples_failed_total")
        wait_for(
            "the agent's writes refused",
            lambda: (
                agent_metric(agent, "prometheus_remote_storage_samples_failed_total")
                > failed_before
            ),
            logs,
        )

        # The export's password changes in envmanager: the watcher rewrites the file, the
        # agent reloads, and new samples arrive with the new password.
        changed_at = time.time()
        environment_object_update(user=team.operator, obj=export, values={"password": NEW_PASSWORD})
        wait_for(
            "the agent's reload",
            lambda: (
                agent_metric(agent, "prometheus_config_last_reload_success_timestamp_seconds")
                > changed_at
            ),
            logs,
        )
        assert NEW_PASSWORD in config.read_text()
        reloaded_at = agent_metric(agent, "prometheus_config_last_reload_success_timestamp_seconds")

        def newest_sample() -> float:
            found = query(receiver, f"timestamp({SERIES})", NEW_PASSWORD)
            return float(found[0]["value"][1]) if found else 0.0

        wait_for("samples written after the reload", lambda: newest_sample() > reloaded_at, logs)
    finally:
        for proc in reversed(processes):
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    output = "".join(p.read_text() for p in logs)
    assert OLD_PASSWORD not in output and NEW_PASSWORD not in output and token not in output
    assert "asked Prometheus to reload" in logs[1].read_text()
    assert time.monotonic() - started < DEADLINE
