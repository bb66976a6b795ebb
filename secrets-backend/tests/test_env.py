"""`envmanager-env` as a user runs it: a real process against a real HTTP server on loopback
(the fake lookup server serving an environment document), its exit codes, and what it prints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from fake_lookup_server import FakeLookupServer

TOKEN = "emd_launcher-token"
SECRET = "S3CRET-env-value"
DOCUMENT = {
    "connections": {"warehouse": {"conn_type": "postgres", "password": "conn-pw-S3CRET"}},
    "variables": {"retries": "3"},
    "environmentVariables": {"REGION": "eu-west-1", "API_KEY": SECRET, "EMPTY": ""},
    "dotenv": "REGION='eu-west-1'\nAPI_KEY='S3CRET-env-value'\nEMPTY=''\n",
    "metricsExports": {},
}
# The child prints what it was given, so the test can see it (the launcher itself never does).
SHOW = (
    "import json, os; print(json.dumps({'pid': os.getpid(), "
    "**{k: os.environ.get(k) for k in ('REGION', 'API_KEY', 'EMPTY', 'KEPT', "
    "'AIRFLOW__SECRETS__BACKEND', 'AIRFLOW__SECRETS__BACKEND_KWARGS')}}))"
)


@pytest.fixture
def server():
    srv = FakeLookupServer(token=TOKEN).start()
    srv.environment = json.loads(json.dumps(DOCUMENT))
    yield srv
    srv.stop()


def launcher(*args: str, url: str | None, token: str | None = TOKEN, **env: str):
    """`envmanager-env ARGS` in a process of its own, with only these settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ENVMANAGER_", "AIRFLOW"))}
    if url is not None:
        base["ENVMANAGER_URL"] = url
    if token is not None:
        base["ENVMANAGER_TOKEN"] = token
    base.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "envmanager_secrets.env", *args],
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen, timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_exec_gives_the_command_the_whole_environment_and_the_backend(server):
    proc = launcher("exec", "--", sys.executable, "-c", SHOW, url=server.base_url, KEPT="mine")
    code, out, err = finished(proc)
    assert code == 0, err
    seen = json.loads(out)
    assert seen["pid"] == proc.pid  # exec'd in place: same process, its signals and exit code
    assert (seen["REGION"], seen["API_KEY"], seen["EMPTY"], seen["KEPT"]) == (
        "eu-west-1",
        SECRET,
        "",
        "mine",
    )
    assert seen["AIRFLOW__SECRETS__BACKEND"] == "envmanager_secrets.EnvManagerSecretsBackend"
    assert json.loads(seen["AIRFLOW__SECRETS__BACKEND_KWARGS"]) == {
        "base_url": server.base_url,
        "token": TOKEN,
    }
    assert SECRET not in err and TOKEN not in err
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_exec_keeps_a_secrets_backend_the_caller_configured(server):
    proc = launcher(
        "exec",
        "--",
        sys.executable,
        "-c",
        SHOW,
        url=server.base_url,
        AIRFLOW__SECRETS__BACKEND="my.Backend",
        AIRFLOW__SECRETS__BACKEND_KWARGS="{}",
    )
    code, out, err = finished(proc)
    assert code == 0, err
    seen = json.loads(out)
    assert (seen["AIRFLOW__SECRETS__BACKEND"], seen["AIRFLOW__SECRETS__BACKEND_KWARGS"]) == (
        "my.Backend",
        "{}",
    )


def test_the_commands_exit_code_is_the_launchers(server):
    code, _, _ = finished(
        launcher("exec", "--", sys.executable, "-c", "raise SystemExit(7)", url=server.base_url)
    )
    assert code == 7


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_starts_nothing_and_fails_within_the_wait(tmp_path):
    marker = tmp_path / "started"
    started = time.monotonic()
    code, _, err = finished(
        launcher(
            "--wait",
            "1.5",
            "exec",
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w')",
            url=f"http://127.0.0.1:{_closed_port()}",
        )
    )
    took = time.monotonic() - started
    assert code == 5 and not marker.exists()
    assert "did not answer within 1.5 s" in err and "nothing was started" in err
    assert took < 6, took


def test_a_server_that_comes_up_during_the_wait_is_used(server):
    server.status = 503
    threading.Timer(1.0, lambda: setattr(server, "status", None)).start()
    code, out, err = finished(
        launcher("--wait", "10", "exec", "--", sys.executable, "-c", SHOW, url=server.base_url)
    )
    assert code == 0, err
    assert json.loads(out)["API_KEY"] == SECRET
    assert "HTTP 503; trying again" in err and SECRET not in err


@pytest.mark.parametrize(
    ("token", "url_suffix", "code", "says"),
    [
        ("emd_wrong", "", 4, "refused the token (HTTP 401)"),
        (TOKEN, "/not-envmanager", 5, "is ENVMANAGER_URL the envmanager server's base URL?"),
    ],
)
def test_a_refused_token_or_a_wrong_url_fails_at_once(
    server, tmp_path, token, url_suffix, code, says
):
    marker = tmp_path / "started"
    started = time.monotonic()
    result = finished(
        launcher(
            "exec",
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w')",
            url=server.base_url + url_suffix,
            token=token,
        )
    )
    assert result[0] == code and says in result[2] and not marker.exists()
    assert time.monotonic() - started < 5  # no retrying what cannot get better
    assert token not in result[2]


def test_missing_settings_are_named():
    code, _, err = finished(launcher("check", url=None, token=None))
    assert code == 3 and "ENVMANAGER_URL" in err and "ENVMANAGER_TOKEN" in err


def test_a_document_without_environment_variables_starts_nothing(server, tmp_path):
    server.environment = {"connections": {}}
    marker = tmp_path / "started"
    code, _, err = finished(
        launcher(
            "exec", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')", url=server.base_url
        )
    )
    assert code == 5 and not marker.exists() and "no environment variables" in err


def test_a_command_that_does_not_exist_is_127(server):
    code, _, err = finished(launcher("exec", "--", "no-such-command-here", url=server.base_url))
    assert code == 127 and "Command not found: no-such-command-here" in err


def test_dotenv_prints_the_servers_dotenv(server):
    code, out, _ = finished(launcher("dotenv", url=server.base_url))
    assert code == 0 and out == DOCUMENT["dotenv"]


def test_check_names_counts_and_keys_and_no_value(server):
    code, out, err = finished(launcher("check", url=server.base_url))
    assert code == 0, err
    assert f"OK: {server.base_url} answers for this token." in out
    assert "3 environment variables: API_KEY, EMPTY, REGION" in out
    assert "1 connections: warehouse" in out and "1 Airflow variables: retries" in out
    for secret in (SECRET, "conn-pw-S3CRET", TOKEN, "eu-west-1"):
        assert secret not in out + err


def test_help_names_the_exit_codes():
    proc = subprocess.run(
        [sys.executable, "-m", "envmanager_secrets.env", "--help"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0
    assert "Exit codes" in proc.stdout and "exec" in proc.stdout and "127" in proc.stdout
