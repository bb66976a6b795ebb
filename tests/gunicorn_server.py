"""The app as it runs in production, for tests that need the real thing: real gunicorn (two sync
workers, as scripts/start runs it) on a free loopback port, against a PostgreSQL database of
its own that is created, migrated and seeded first and dropped with force at the end.

The seed runs in a process of its own (`python -m tests.gunicorn_server seed`), configured for
that database, so it never touches the database pytest-django set up for the suite.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
# Variables of the suite's own run that must not reach the server: it gets its own database and
# no broker or cache (Celery eager, in-process cache), so it shares nothing with other work.
NOT_PASSED_ON = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}


def postgres_server_url() -> str:
    """The PostgreSQL server (no database): ENVMANAGER_TEST_POSTGRES_URL, else the suite's own
    server when it runs on PostgreSQL, else the local default."""
    url = os.environ.get("ENVMANAGER_TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = DEFAULT_POSTGRES_SERVER
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, "", "", ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Seeded:
    """What the seed made, as a client of the running app needs it."""

    workspace_id: int
    deployment_id: int
    connection_key: str
    connection_password: str
    user_email: str
    user_password: str
    api_token: str
    deployment_token: str
    session_key: str

    @property
    def secrets(self) -> list[str]:
        return [
            self.connection_password,
            self.user_password,
            self.api_token,
            self.deployment_token,
            self.session_key,
        ]


class AppDatabase:
    """A fresh PostgreSQL database, migrated and seeded; `drop()` removes it with force."""

    def __init__(self, name: str, server_url: str | None = None) -> None:
        self.name = name
        self.server_url = server_url or postgres_server_url()
        self.url = f"{self.server_url}/{name}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(f"{self.server_url}/postgres", autocommit=True, connect_timeout=5)

    def create(self) -> None:
        with self.admin() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self.admin() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def migrate_and_seed(self, env: dict[str, str]) -> Seeded:
        return migrate_and_seed(env)


def migrate_and_seed(env: dict[str, str]) -> Seeded:
    """Migrate and seed the database `env` names (PostgreSQL, or a SQLite file)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.gunicorn_server", "seed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        raise RuntimeError(f"Seeding failed:\n{result.stderr[-3000:]}")
    return Seeded(**json.loads(result.stdout.splitlines()[-1]))


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED_ON}
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "envmanager.settings",
            "ENVMANAGER_DATA_DIR": str(data_dir),
            "ENVMANAGER_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DEBUG": "false",
            # INFO, as production runs: more lines that could leak a secret, none may.
            "LOG_LEVEL": "INFO",
        }
    )
    return env


class GunicornServer:
    """`gunicorn envmanager.wsgi` with sync workers (two unless told), from the interpreter
    running the tests; everything it writes (access log, errors, the app's own log) goes to
    `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2) -> None:
        self.env = env
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - a file, not a pipe nobody reads
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "envmanager.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--access-logfile",
                "-",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()[-3000:]}")
            try:
                status, _, _ = self.request("GET", "/healthz", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
        timeout: float = 15,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a connection of its own (sync workers close it after each response)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            all_headers = dict(headers or {})
            if data is not None:
                all_headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def _seed() -> dict:
    """Migrate, then through the services: an Owner with a password, a personal API token and a
    signed-in session; a Workspace with a Deployment, a Deployment token, and a connection
    linked to that Deployment."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User
    from accounts.services import api_token_create, workspace_create
    from deployments.services import deployment_create, deployment_token_create
    from envmanager.object_types import ObjectType
    from envmanager.services.environment_objects import environment_object_create

    call_command("migrate", verbosity=0)
    user_password = "live-user-pw-8Zq2"
    owner = User.objects.create_user(email="owner@live.example.com", password=user_password)
    workspace = workspace_create(user=owner, name="Live")
    deployment = deployment_create(user=owner, workspace=workspace, name="production")
    connection_password = "live-conn-pw-S3CRET-71x"
    environment_object_create(
        user=owner,
        workspace=workspace,
        object_type=ObjectType.CONNECTION,
        key="warehouse",
        values={
            "conn_type": "postgres",
            "host": "db.internal",
            "login": "etl",
            "password": connection_password,
            "schema": "dwh",
            "port": 5432,
            "extra": {"sslmode": "require"},
            "description": "",
        },
        link_deployments=[deployment],
    )
    _, api_token = api_token_create(user=owner, name="live")
    _, deployment_token = deployment_token_create(user=owner, deployment=deployment, name="live")
    client = Client()
    client.force_login(owner)

    return {
        "workspace_id": workspace.pk,
        "deployment_id": deployment.pk,
        "connection_key": "warehouse",
        "connection_password": connection_password,
        "user_email": owner.email,
        "user_password": user_password,
        "api_token": api_token,
        "deployment_token": deployment_token,
        "session_key": client.cookies[settings.SESSION_COOKIE_NAME].value,
    }


if __name__ == "__main__" and sys.argv[1:] == ["seed"]:
    print(json.dumps(_seed()))
