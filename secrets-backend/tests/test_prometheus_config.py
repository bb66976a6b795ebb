"""`envmanager-env prometheus-config FILE` as a user runs it: a real process against a small
HTTP server on loopback that serves a configuration with an ETag (as envmanager does) and a
`/-/reload` endpoint (as Prometheus does). FILE is written whole with mode 0600; --watch asks
with If-None-Match, rewrites FILE on a change and reloads; nothing secret is printed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

TOKEN = "emd_agent-token"
SECRET = "remote-write-S3CRET"
PATH = "/api/v1/lookup/prometheus-config"


def config(password: str) -> str:
    return (
        "# made by the test\n"
        '{"remote_write": [{"name": "grafana", "url": "https://x/api/v1/write", '
        f'"basic_auth": {{"username": "u", "password": "{password}"}}}}]}}\n'
    )


class ConfigServer:
    """Serves `text` at PATH with an ETag, 304 on a matching If-None-Match; counts POST
    /-/reload. `status` forces an answer."""

    def __init__(self) -> None:
        self.text = config(SECRET)
        self.status: int | None = None
        self.requests: list[dict[str, Any]] = []
        self.reloads = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append({"path": self.path, "headers": dict(self.headers)})
                if server.status is not None:
                    body = b'{"message": "The scrape target must be HOST:PORT."}'
                    self._send(server.status, body, {"Content-Type": "application/json"})
                    return
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, b'{"message": "no"}', {"Content-Type": "application/json"})
                    return
                etag = '"' + hashlib.sha256(server.text.encode()).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", {"ETag": etag})
                    return
                headers = {"Content-Type": "application/yaml; charset=utf-8", "ETag": etag}
                self._send(200, server.text.encode(), headers)

            def do_POST(self) -> None:  # noqa: N802
                if self.path == "/-/reload":
                    server.reloads += 1
                self._send(200, b"", {})

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server():
    srv = ConfigServer()
    yield srv
    srv.stop()


def command(*args: str, url: str, token: str = TOKEN) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVMANAGER_")}
    env.update(ENVMANAGER_URL=url, ENVMANAGER_TOKEN=token)
    return subprocess.Popen(
        [sys.executable, "-m", "envmanager_secrets.env", "--wait", "1", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen, timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_the_file_whole_and_private_and_prints_no_secret(server, tmp_path):
    target = tmp_path / "prometheus.yml"
    target.write_text("old, readable by all")
    target.chmod(0o644)
    code, out, err = finished(
        command(
            "prometheus-config",
            str(target),
            "--scrape-target",
            "10.0.0.5:9103",
            "--scrape-interval",
            "15",
            url=server.base_url,
        )
    )
    assert code == 0, err
    assert target.read_text() == server.text
    assert mode(target) == 0o600
    assert SECRET not in out + err and TOKEN not in out + err
    assert "wrote" in err
    assert server.requests[-1]["path"] == f"{PATH}?scrapeTarget=10.0.0.5%3A9103&scrapeInterval=15"
    assert [p.name for p in tmp_path.iterdir()] == ["prometheus.yml"]  # no temporary left


def test_watch_rewrites_on_a_change_and_reloads_prometheus(server, tmp_path):
    target = tmp_path / "prometheus.yml"
    proc = command(
        "prometheus-config",
        str(target),
        "--watch",
        "0.2",
        "--reload-url",
        f"{server.base_url}/-/reload",
        url=server.base_url,
    )
    try:
        wait_for(lambda: target.exists())
        first = target.stat().st_ino
        wait_for(lambda: len(server.requests) >= 4)
        # A new file was read by no Prometheus yet: no reload. Unchanged: conditional GETs
        # answered 304, no rewrite, no reload.
        assert all(r["headers"].get("If-None-Match") for r in server.requests[1:])
        assert server.reloads == 0 and target.stat().st_ino == first
        server.text = config("rotated-S3CRET")
        wait_for(lambda: target.read_text() == server.text)
        wait_for(lambda: server.reloads == 1)
        assert mode(target) == 0o600 and target.stat().st_ino != first
    finally:
        proc.terminate()
        code, out, err = finished(proc)
    assert "S3CRET" not in out + err


def test_watch_sends_sighup_to_a_pid_and_keeps_the_file_while_the_server_is_down(server, tmp_path):
    target = tmp_path / "prometheus.yml"
    hups = tmp_path / "hups"
    # Stands in for Prometheus: counts SIGHUPs.
    catcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time, pathlib\n"
            f"p = pathlib.Path({str(hups)!r})\n"
            "signal.signal(signal.SIGHUP, lambda *a: p.write_text(str(int(p.read_text() "
            "if p.exists() else '0') + 1)))\n"
            "open(str(p) + '.ready', 'w').close()\n"
            "while True: time.sleep(0.05)\n",
        ]
    )
    proc = None
    # An older configuration that Prometheus runs with: the first write reloads it.
    target.write_text(config("older-S3CRET"))
    try:
        wait_for(lambda: Path(str(hups) + ".ready").exists())
        proc = command(
            "prometheus-config",
            str(target),
            "--watch",
            "0.2",
            "--reload-pid",
            str(catcher.pid),
            url=server.base_url,
        )
        wait_for(lambda: hups.exists() and hups.read_text() == "1")
        server.status = 503
        time.sleep(0.6)
        assert target.read_text() == config(SECRET)
        server.status = None
        server.text = config("next-S3CRET")
        wait_for(lambda: hups.read_text() == "2")
        assert target.read_text() == server.text
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            code, out, err = finished(proc)
            assert "HTTP 503" in err and "S3CRET" not in out + err
        catcher.kill()
        catcher.wait()


def test_a_refused_token_bad_settings_or_an_unwritable_file_fail_with_their_codes(server, tmp_path):
    target = tmp_path / "prometheus.yml"
    code, _, err = finished(
        command("prometheus-config", str(target), url=server.base_url, token="x")
    )
    assert code == 4 and "refused the token" in err and not target.exists()

    server.status = 400
    code, _, err = finished(command("prometheus-config", str(target), url=server.base_url))
    assert code == 2 and "HOST:PORT" in err and not target.exists()
    server.status = None

    missing = tmp_path / "no-such-folder" / "prometheus.yml"
    code, _, err = finished(command("prometheus-config", str(missing), url=server.base_url))
    assert code == 6 and "Cannot write" in err

    code, _, err = finished(command("prometheus-config", str(target), url="http://127.0.0.1:9"))
    assert code == 5 and "nothing was written" in err and not target.exists()

    code, _, err = finished(
        command("prometheus-config", str(target), "--watch", "0", url=server.base_url)
    )
    assert code == 2


STATSD = (
    "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith('AIRFLOW__METRICS__')}))"
)


def test_exec_turns_on_airflows_statsd_for_a_deployment_with_an_export(tmp_path):
    from fake_lookup_server import FakeLookupServer

    srv = FakeLookupServer(token=TOKEN).start()
    try:
        srv.environment["metricsExports"] = {"grafana": {"endpoint": "https://x"}}
        stub = tmp_path / "site"
        stub.mkdir()
        (stub / "statsd.py").write_text("")  # Airflow's StatsD client is installed

        def seen(**env: str) -> dict:
            base = {
                k: v for k, v in os.environ.items() if not k.startswith(("ENVMANAGER_", "AIRFLOW"))
            }
            base.update(ENVMANAGER_URL=srv.base_url, ENVMANAGER_TOKEN=TOKEN, **env)
            out = subprocess.run(
                [sys.executable, "-m", "envmanager_secrets.env", "exec", "--"]
                + [sys.executable, "-c", STATSD],
                env=base,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        assert seen(PYTHONPATH=str(stub)) == {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": "8125",
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        }
        # What the operator set stays; without the client, Airflow would not start: nothing.
        mine = seen(PYTHONPATH=str(stub), AIRFLOW__METRICS__STATSD_HOST="bridge.internal")
        assert mine["AIRFLOW__METRICS__STATSD_HOST"] == "bridge.internal"
        assert seen() == {}
        srv.environment["metricsExports"] = {}
        assert seen(PYTHONPATH=str(stub)) == {}
    finally:
        srv.stop()
