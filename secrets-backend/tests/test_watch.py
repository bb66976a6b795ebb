"""`envmanager-env exec --watch`: a real launcher process supervising a real child against the
loopback fake server. The child says on stdout when it starts (with the REGION it was given)
and when it is asked to stop; every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from fake_lookup_server import FakeLookupServer

TOKEN = "emd_watch-token"
SECRET = "S3CRET-watched-value"
DOCUMENT = {
    "connections": {"warehouse": {"conn_type": "postgres", "password": "conn-pw-S3CRET"}},
    "variables": {"retries": "3"},
    "environmentVariables": {"REGION": "eu-west-1", "API_KEY": SECRET},
    "dotenv": "",
    "metricsExports": {},
}
CHILD = """
import json, os, signal, sys, time
def stop(signum, frame):
    print(json.dumps({"event": "stopping", "pid": os.getpid()}), flush=True)
    sys.exit(int(os.environ.get("STOP_CODE", "0")))
signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("IGNORE_TERM") else stop)
print(json.dumps({"event": "started", "pid": os.getpid(), "REGION": os.environ.get("REGION"),
                  "secret_ok": os.environ.get("API_KEY") == EXPECTED}), flush=True)
if os.environ.get("EXIT_AT_ONCE"):
    sys.exit(int(os.environ["EXIT_AT_ONCE"]))
while True:
    time.sleep(0.05)
""".replace("EXPECTED", repr(SECRET))


@pytest.fixture
def server():
    srv = FakeLookupServer(token=TOKEN).start()
    srv.environment = json.loads(json.dumps(DOCUMENT))
    yield srv
    srv.stop()


class Watched:
    """The launcher with --watch, its child's events read from stdout as they come."""

    def __init__(self, url: str, *options: str, **env: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ENVMANAGER_", "AIRFLOW"))}
        base.update({"ENVMANAGER_URL": url, "ENVMANAGER_TOKEN": TOKEN, **env})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "envmanager_secrets.env", "exec", *options]
            + ["--", sys.executable, "-c", CHILD],
            env=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue = queue.Queue()
        self.children: set[int] = set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            event = json.loads(line)
            self.children.add(event["pid"])
            self.events.put(event)

    def next(self, timeout: float = 10) -> dict:
        return self.events.get(timeout=timeout)

    def quiet_for(self, seconds: float) -> bool:
        try:
            event = self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected {event}")

    def finish(self, timeout: float = 15) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.proc.stderr.read()

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def watched():
    made: list[Watched] = []

    def make(*args, **kwargs) -> Watched:
        made.append(Watched(*args, **kwargs))
        return made[-1]

    yield make
    for w in made:
        w.cleanup()


def test_an_env_var_change_restarts_the_command_and_a_connection_change_does_not(server, watched):
    w = watched(server.base_url, "--watch", "0.2", "--grace", "5", STOP_CODE="3")
    first = w.next()
    assert first["event"] == "started" and first["REGION"] == "eu-west-1" and first["secret_ok"]
    assert first["pid"] != w.proc.pid  # a child, not exec'd in place

    # Connections and Airflow variables reach Airflow through the backend: no restart.
    server.environment["connections"]["warehouse"]["password"] = "rotated-S3CRET"
    server.environment["variables"]["retries"] = "5"
    assert w.quiet_for(1.2)
    polls = [r for r in server.requests if r["path"].endswith("/environment")]
    assert len(polls) >= 4
    assert any("If-None-Match" in r["headers"] for r in polls)  # conditional GETs

    server.environment["environmentVariables"]["REGION"] = "us-east-2"
    started = time.monotonic()
    assert w.next() == {"event": "stopping", "pid": first["pid"]}
    second = w.next()
    assert second["event"] == "started" and second["REGION"] == "us-east-2"
    assert second["pid"] != first["pid"]
    assert time.monotonic() - started < 5

    # A stop request is passed on; the exit code is the child's.
    w.proc.send_signal(signal.SIGTERM)
    assert w.next() == {"event": "stopping", "pid": second["pid"]}
    code, err = w.finish()
    assert code == 3, err
    assert "REGION" in err  # says what changed, never a value
    for secret in (SECRET, "rotated-S3CRET", "us-east-2", TOKEN):
        assert secret not in err


def test_a_command_that_exits_on_its_own_gives_its_exit_code(server, watched):
    w = watched(server.base_url, "--watch", "0.2", EXIT_AT_ONCE="7")
    assert w.next()["event"] == "started"
    code, err = w.finish()
    assert code == 7, err


def test_the_command_keeps_running_while_the_server_cannot_be_read(server, watched):
    w = watched(server.base_url, "--watch", "0.2")
    first = w.next()
    server.status = 503
    assert w.quiet_for(1.2)
    assert w.proc.poll() is None
    server.status = None
    server.environment["environmentVariables"]["REGION"] = "ap-south-1"
    assert w.next()["event"] == "stopping"
    assert w.next()["REGION"] == "ap-south-1"
    w.proc.send_signal(signal.SIGTERM)
    assert w.next()["event"] == "stopping"
    code, err = w.finish()
    assert code == 0, err
    assert err.count("cannot read the environment (HTTP 503)") == 1  # said once, not per poll
    assert "can be read again" in err
    assert first["pid"] in w.children


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace_time(server, watched):
    w = watched(server.base_url, "--watch", "0.2", "--grace", "0.5", IGNORE_TERM="1")
    first = w.next()
    server.environment["environmentVariables"]["REGION"] = "sa-east-1"
    second = w.next(timeout=5)
    assert second["REGION"] == "sa-east-1" and second["pid"] != first["pid"]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.kill(first["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the old child still runs")
    # Ctrl-C reaches the child once, through the launcher: SIGINT ended it, 128 + 2.
    w.proc.send_signal(signal.SIGINT)
    code, err = w.finish()
    assert code == 130, err
    assert "did not stop within 0.5 s" in err


def test_watch_needs_a_number_of_seconds():
    result = subprocess.run(
        [sys.executable, "-m", "envmanager_secrets.env", "exec", "--watch", "soon", "--", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "not a number of seconds" in result.stderr
