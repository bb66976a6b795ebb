"""Lookup benchmark: connection lookups (90 % hits, 10 % misses) against the app under
gunicorn with 2 workers on loopback, at a fixed 500 lookups/s and at the highest rate a
closed-loop client reaches; and, side by side, what Airflow pays per
`Connection.get_connection_from_secrets` through our backend and straight from its own
PostgreSQL metastore (no backend); and what a real task pays per `Connection.get` through our
backend and through Airflow's own Execution API on a real `airflow api-server` (no backend:
what a Dag pays today without envmanager).

    .venv/bin/python bench/lookup_bench.py [--seconds 10] [--connections 1000]

Everything runs on this machine (127.0.0.1) and stops by itself.
"""

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# One database per run, so two runs on one machine do not drop each other's data.
DB = f"envmanager_lookup_bench_{os.getpid()}"
PG = "postgresql://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recreate_database(name: str, create: bool = True) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            c.execute(f'CREATE DATABASE "{name}"')


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def seed(n: int) -> str:
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import User
    from accounts.services import workspace_create
    from deployments.services import deployment_create, deployment_token_create
    from envmanager.models import EnvironmentObject, Link

    call_command("migrate", verbosity=0)
    owner = User.objects.create_user(email="bench@example.com", password="bench-password-1")
    workspace = workspace_create(user=owner, name="Bench")
    deployment = deployment_create(user=owner, workspace=workspace, name="prod")
    objects = EnvironmentObject.objects.bulk_create(
        EnvironmentObject(
            workspace=workspace,
            scope="WORKSPACE",
            object_type="CONNECTION",
            key=f"c{i:05d}",
            values={
                "conn_type": "postgres",
                "host": f"db{i}.internal",
                "login": "etl",
                "password": f"pw-{i}",
                "schema": "dwh",
                "port": 5432,
                "extra": {"sslmode": "require"},
                "description": "",
            },
        )
        for i in range(n)
    )
    Link.objects.bulk_create(
        Link(
            environment_object=o,
            deployment=deployment,
            object_type="CONNECTION",
            object_key=o.key,
            overrides={"password": "prod-pw"} if i % 2 else {},
        )
        for i, o in enumerate(objects)
    )
    _, token = deployment_token_create(user=owner, deployment=deployment, name="bench")
    # What autovacuum does soon after a bulk load in production: without statistics the
    # planner may scan a Deployment's links instead of using the (type, key) unique index.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return token


def start_server(port: int, env: dict, worker_args: tuple[str, ...] = ()) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "envmanager.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
            *worker_args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe nobody reads: a full pipe would block the workers.
        stderr=open(Path(env["ENVMANAGER_DATA_DIR"]) / "gunicorn.log", "w"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def load(port: int, token: str, n: int, seconds: float, rate: float | None, threads: int) -> dict:
    """Send lookups for `seconds`; at `rate` per second in all (open loop, each thread on its
    own schedule), or as fast as each thread can (closed loop) when rate is None."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        mine, i = [], index
        interval = threads / rate if rate else 0
        next_at = time.monotonic() + index * (interval / threads if rate else 0)
        while True:
            now = time.monotonic()
            if now >= stop_at:
                break
            if rate:
                if now < next_at:
                    time.sleep(next_at - now)
                next_at += interval
            key = f"c{i % n:05d}" if i % 10 else "missing-key"
            i += threads
            started = time.perf_counter()
            try:
                conn.request("GET", f"/api/v1/lookup/connections/{key}", headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status in (200, 404)
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            mine.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    began = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "lookups": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "errors": errors[0],
    }


AIRFLOW_TIMING = """
import json, os, time
from airflow.models.connection import Connection
keys = ["c%05d" % i for i in range(200)]
for k in keys[:20]:
    Connection.get_connection_from_secrets(k)  # warm up
start = time.perf_counter()
rounds = 0
while time.perf_counter() - start < 5:
    for k in keys:
        Connection.get_connection_from_secrets(k)
    rounds += 1
print(json.dumps({"ms": 1000 * (time.perf_counter() - start) / (rounds * len(keys))}))
"""


def airflow_costs(port: int, token: str, n: int) -> dict:
    """Per-lookup cost inside Airflow: through our backend vs. its own PostgreSQL metastore."""
    from cryptography.fernet import Fernet

    from bench.migration_bench import seed_rows
    from tests.airflow_support import airflow_python, drop_metadata_db, make_metadata_db

    key = Fernet.generate_key().decode()
    tmp = Path(tempfile.mkdtemp(prefix="envmanager-lookup-bench-"))
    url = make_metadata_db(tmp, backend="postgresql", fernet_key=key)
    try:
        seed_rows(
            url,
            key,
            {
                f"c{i:05d}": {
                    "conn_type": "postgres",
                    "host": f"db{i}",
                    "schema": "dwh",
                    "login": "etl",
                    "port": 5432,
                    "password": f"pw-{i}",
                    "extra": {"sslmode": "x"},
                }
                for i in range(min(n, 200))
            },
            {},
        )
        base = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url.replace(
                "postgresql://", "postgresql+psycopg2://"
            ),
            "AIRFLOW__CORE__FERNET_KEY": key,
        }
        metastore = airflow_python(AIRFLOW_TIMING, base, tmp / "home1")
        ours = airflow_python(
            AIRFLOW_TIMING,
            {
                **base,
                "AIRFLOW__SECRETS__BACKEND": "envmanager_secrets.EnvManagerSecretsBackend",
                "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
                    {"base_url": f"http://127.0.0.1:{port}", "token": token, "cache_ttl": 0}
                ),
            },
            tmp / "home2",
        )
        for result in (metastore, ours):
            if result.returncode:
                raise RuntimeError(result.stderr[-2000:])
        return {
            "metastore_ms": json.loads(metastore.stdout.splitlines()[-1])["ms"],
            "backend_ms": json.loads(ours.stdout.splitlines()[-1])["ms"],
        }
    finally:
        drop_metadata_db(url)


TASK_DAG = """
import json, time
from airflow.sdk import Connection, dag, task


@dag(schedule=None, catchup=False)
def lookup_timing():
    @task
    def time_lookups():
        keys = ["c%05d" % i for i in range(200)]
        for k in keys[:20]:
            Connection.get(k)  # warm up
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < 5:
            for k in keys:
                Connection.get(k)
            n += len(keys)
        with open(OUT, "w") as f:
            json.dump({"ms": 1000 * (time.perf_counter() - start) / n, "lookups": n}, f)

    time_lookups()


lookup_timing()
"""


def _timed_dag_run(venv: Path, home: Path, settings: dict, out: Path, log_path: Path) -> float:
    """Run the timing Dag once and return its figure. `airflow dags test --use-executor` does
    not always exit after the run has finished (seen twice on this machine), so the figure is
    taken as soon as the task has written it and the command is then stopped."""
    from tests.airflow_support import airflow_env

    out.unlink(missing_ok=True)
    with open(log_path, "wb") as log:
        run = subprocess.Popen(
            [str(venv / "bin" / "airflow"), "dags", "test", "lookup_timing", "--use-executor"],
            env=airflow_env(home, settings),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + 300
    try:
        while run.poll() is None and not out.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(0.5)  # the task closes the file right after creating it
        if not out.exists():
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the timing task did not finish:\n{tail}")
        return json.loads(out.read_text())["ms"]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            try:
                run.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()


def task_costs(port: int, token: str) -> dict:
    """Per `Connection.get` inside a real Airflow task (Task SDK; `airflow dags test
    --use-executor`, so the LocalExecutor runs the task as a deployment does, against a real
    `airflow api-server`): through our backend, and through Airflow's Execution API with no
    backend (the API server reads its PostgreSQL metastore)."""
    from cryptography.fernet import Fernet

    from bench.migration_bench import seed_rows
    from tests.airflow_support import (
        airflow_env,
        drop_metadata_db,
        ensure_airflow,
        make_metadata_db,
    )

    venv = ensure_airflow()
    key = Fernet.generate_key().decode()
    tmp = Path(tempfile.mkdtemp(prefix="envmanager-task-bench-"))
    url = make_metadata_db(tmp, backend="postgresql", fernet_key=key)
    api_port = free_port()
    home = tmp / "home"
    (home / "dags").mkdir(parents=True)
    out = tmp / "result.json"
    (home / "dags" / "lookup_timing.py").write_text(TASK_DAG.replace("OUT", repr(str(out))))
    settings = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url.replace(
            "postgresql://", "postgresql+psycopg2://"
        ),
        "AIRFLOW__CORE__FERNET_KEY": key,
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
    }
    api = None
    try:
        seed_rows(
            url,
            key,
            {
                f"c{i:05d}": {
                    "conn_type": "postgres",
                    "host": f"db{i}",
                    "schema": "dwh",
                    "login": "etl",
                    "port": 5432,
                    "password": f"pw-{i}",
                    "extra": {"sslmode": "x"},
                }
                for i in range(200)
            },
            {},
        )
        log = open(tmp / "api-server.log", "wb")  # noqa: SIM115 - the server's whole life
        api = subprocess.Popen(
            [str(venv / "bin" / "airflow"), "api-server", "-H", "127.0.0.1"]
            + ["-p", str(api_port), "-w", "1"],
            env=airflow_env(home, settings),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v2/monitor/health")
                break
            except OSError:
                if time.monotonic() > deadline or api.poll() is not None:
                    raise RuntimeError("airflow api-server did not start") from None
                time.sleep(0.5)
        backend = {
            "AIRFLOW__SECRETS__BACKEND": "envmanager_secrets.EnvManagerSecretsBackend",
            "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
                {"base_url": f"http://127.0.0.1:{port}", "token": token, "cache_ttl": 0}
            ),
        }
        costs = {}
        for name, extra in (("execution_api_ms", {}), ("backend_ms", backend)):
            costs[name] = _timed_dag_run(venv, home, {**settings, **extra}, out, tmp / name)
        return costs
    finally:
        if api is not None:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait(timeout=15)
        drop_metadata_db(url)


def report(fixed: dict, peak: dict, costs: dict) -> None:
    print(
        f"at 500/s offered: {fixed['per_second']:,.0f} lookups/s, p50 {fixed['p50_ms']:.2f} ms, "
        f"p99 {fixed['p99_ms']:.2f} ms, errors {fixed['errors']} (target p99 < 10 ms)"
    )
    print(
        f"closed loop, 8 clients: {peak['per_second']:,.0f} lookups/s, p50 "
        f"{peak['p50_ms']:.2f} ms, p99 {peak['p99_ms']:.2f} ms, errors {peak['errors']} "
        f"(target >= 1,000/s)"
    )
    ratio = costs["backend_ms"] / costs["metastore_ms"]
    print(
        f"inside Airflow, per Connection.get_connection_from_secrets: through envmanager "
        f"{costs['backend_ms']:.2f} ms, from its own PostgreSQL metastore "
        f"{costs['metastore_ms']:.2f} ms, ratio {ratio:.2f} (target <= 1)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="gunicorn gthread workers with this many threads each (keep-alive); 0: sync",
    )
    args = parser.parse_args()
    recreate_database(DB)
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB}",
        "DJANGO_SETTINGS_MODULE": "envmanager.settings",
        "LOG_LEVEL": "WARNING",
        "ENVMANAGER_DATA_DIR": tempfile.mkdtemp(prefix="envmanager-bench-data-"),
    }
    os.environ.update(env)
    token = seed(args.connections)
    port = free_port()
    threads = ("--worker-class", "gthread", "--threads", str(args.threads))
    server = start_server(port, env, threads if args.threads else ())
    try:
        load(port, token, args.connections, 2, None, 4)  # warm up
        fixed = load(port, token, args.connections, args.seconds, 500, 8)
        peak = load(port, token, args.connections, args.seconds, None, 8)
        costs = airflow_costs(port, token, args.connections)
        report(fixed, peak, costs)
        in_task = task_costs(port, token)
    finally:
        stop(server)
        from django.db import connections

        connections.close_all()
        recreate_database(DB, create=False)
    task_ratio = in_task["backend_ms"] / in_task["execution_api_ms"]
    print(
        f"inside a real task, per Connection.get: through envmanager "
        f"{in_task['backend_ms']:.2f} ms, through Airflow's Execution API on a real api-server "
        f"{in_task['execution_api_ms']:.2f} ms, ratio {task_ratio:.2f}"
    )


if __name__ == "__main__":
    main()
