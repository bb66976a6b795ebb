"""`envmanager-env exec --watch` against the real app: the child restarts with the new value when
an environment variable of its Deployment changes, and keeps running when only a connection
does (the secrets backend reads those live)."""

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

from deployments.services import deployment_token_create
from envmanager.services import environment_object_create, environment_object_update, link_create
from tests.lookup.test_airflow_e2e import app_server  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

CHILD = """
import json, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
print(json.dumps({"pid": os.getpid(), "REGION": os.environ.get("REGION")}), flush=True)
while True:
    time.sleep(0.05)
"""


def test_an_env_var_change_restarts_the_child_and_a_connection_change_does_not(
    team,
    app_server,  # noqa: F811 - the fixture
):
    region = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="REGION",
        values={"value": "eu-west-1"},
    )
    link_create(user=team.operator, obj=region, deployment=team.deployment)
    conn = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={"conn_type": "postgres", "host": "db.internal", "password": "pw-S3CRET-1"},
    )
    link_create(user=team.operator, obj=conn, deployment=team.deployment)
    _, token = deployment_token_create(user=team.owner, deployment=team.deployment, name="w")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVMANAGER_", "AIRFLOW"))}
    env.update({"ENVMANAGER_URL": app_server, "ENVMANAGER_TOKEN": token})
    proc = subprocess.Popen(
        [sys.executable, "-m", "envmanager_secrets.env", "exec", "--watch", "0.3", "--"]
        + [sys.executable, "-c", CHILD],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    starts: queue.Queue = queue.Queue()
    pids: list[int] = []

    def read() -> None:
        for line in proc.stdout:
            pids.append(json.loads(line)["pid"])
            starts.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    try:
        first = starts.get(timeout=15)
        assert first["REGION"] == "eu-west-1"

        environment_object_update(
            user=team.operator, obj=conn, values={"host": "moved", "password": "pw-S3CRET-2"}
        )
        with pytest.raises(queue.Empty):
            starts.get(timeout=1.5)  # five polls or so, no restart

        environment_object_update(user=team.operator, obj=region, values={"value": "us-east-2"})
        changed = time.monotonic()
        second = starts.get(timeout=10)
        assert second["REGION"] == "us-east-2"
        assert second["pid"] != first["pid"]
        assert time.monotonic() - changed < 5

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assert proc.returncode == 0
        err = proc.stderr.read()
        for secret in ("pw-S3CRET-1", "pw-S3CRET-2", token, "us-east-2"):
            assert secret not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
