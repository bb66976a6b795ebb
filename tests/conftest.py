"""Shared fixtures: a Workspace with one user per role, two Deployments, and a second
Workspace with its own Owner (to check that tenants never see each other)."""

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Role, User, Workspace
from accounts.services import membership_set, workspace_create
from deployments.models import Deployment
from deployments.services import deployment_create

pytest_plugins = ["tests.secret_scan"]

TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end no session left on it: a server thread or
    process a test started may still hold one, and PostgreSQL refuses to drop a database in
    use (the run would leave it behind)."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# Where the suite's Airflow metadata DBs live: pytest's temporary folders and the local
# PostgreSQL server. Tests of the allowlist itself set their own.
TEST_PG_SERVER = "127.0.0.1:5432"


@pytest.fixture(scope="session")
def metadata_db_allowlist(tmp_path_factory) -> list[str]:
    allowlist = [str(tmp_path_factory.getbasetemp()), TEST_PG_SERVER]
    # Worker and server processes the tests start read it from their environment.
    os.environ["ENVMANAGER_METADATA_DB_ALLOWLIST"] = ",".join(allowlist)
    return allowlist


@pytest.fixture(autouse=True)
def _encryption_keys(settings, metadata_db_allowlist):
    settings.ENVMANAGER_METADATA_DB_ALLOWLIST = list(metadata_db_allowlist)
    settings.ENVMANAGER_ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]
    settings.ENVMANAGER_PROPAGATION_SECONDS = 0
    # Lookup counts are written when a test flushes them, not by a timer thread on its own.
    settings.ENVMANAGER_LOOKUP_COUNT_SECONDS = 0
    # Hashing passwords properly is slow by design; tests only need it to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Team:
    workspace: Workspace
    owner: User
    operator: User
    author: User
    member: User
    deployment: Deployment
    other_deployment: Deployment

    def user(self, role: str) -> User:
        return getattr(self, role.lower())


def make_user(email: str, password: str = "pw-for-tests-123") -> User:
    return User.objects.create_user(email=email, password=password)


def make_team(name: str = "Data Platform", prefix: str = "") -> Team:
    owner = make_user(f"{prefix}owner@example.com")
    workspace = workspace_create(user=owner, name=name)
    users = {}
    for role in (Role.OPERATOR, Role.AUTHOR, Role.MEMBER):
        users[role] = make_user(f"{prefix}{role.lower()}@example.com")
        membership_set(actor=owner, workspace=workspace, email=users[role].email, role=role)
    deployment = deployment_create(user=owner, workspace=workspace, name="production")
    other = deployment_create(user=owner, workspace=workspace, name="staging")
    return Team(
        workspace=workspace,
        owner=owner,
        operator=users[Role.OPERATOR],
        author=users[Role.AUTHOR],
        member=users[Role.MEMBER],
        deployment=deployment,
        other_deployment=other,
    )


@pytest.fixture
def team(db) -> Team:
    return make_team()


@pytest.fixture
def other_team(db) -> Team:
    return make_team(name="Other Company", prefix="other-")


@pytest.fixture
def api(db):
    """An API client; `api.as_user(user)` signs it in with the session."""

    client = APIClient()

    def as_user(user: User) -> APIClient:
        client.force_authenticate(user=user)
        return client

    client.as_user = as_user
    return client


TEST_BROKER_URL = os.environ.get("ENVMANAGER_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


def _database_url_for_subprocess() -> str:
    """The URL of the database the tests use right now, for a worker process to open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker(transactional_db, settings):
    """A real Celery worker process reading tasks from Redis, on the test database.

    Tasks sent from the test go through the broker (eager mode is switched off for the test).
    Yields a `restart()`-able handle, so fault tests can kill the worker mid-task."""
    from envmanager.celery import app

    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "CELERY_RESULT_BACKEND": TEST_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ENVMANAGER_ENCRYPTION_KEYS": ",".join(settings.ENVMANAGER_ENCRYPTION_KEYS),
        "ENVMANAGER_METADATA_DB_ALLOWLIST": ",".join(settings.ENVMANAGER_METADATA_DB_ALLOWLIST),
        "ENVMANAGER_PROPAGATION_SECONDS": str(settings.ENVMANAGER_PROPAGATION_SECONDS),
        "ENVMANAGER_MIGRATION_CHUNK_SIZE": str(settings.ENVMANAGER_MIGRATION_CHUNK_SIZE),
        "ENVMANAGER_MIGRATION_LEASE_SECONDS": str(settings.ENVMANAGER_MIGRATION_LEASE_SECONDS),
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    keys = ("task_always_eager", "broker_url", "result_backend")
    saved = {k: app.conf[k] for k in keys}
    app.conf.update(
        task_always_eager=False, broker_url=TEST_BROKER_URL, result_backend=TEST_BROKER_URL
    )
    # Connections made earlier in the session (to the default broker) must not be reused.
    _reset_broker_connections(app)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    app.control.purge()
    worker = WorkerProcess(env, queue)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.update(**saved)
        _reset_broker_connections(app)


def _reset_broker_connections(app) -> None:
    from kombu import pools

    pools.reset()  # kombu's global connection and producer pools
    app._pool = None
    app.amqp._producer_pool = None
    # The result backend is cached per thread (as "disabled" when none was configured).
    app._local.__dict__.pop("backend", None)


class WorkerProcess:
    def __init__(self, env: dict, queue: str):
        self.env = env
        self.queue = queue
        # A name of its own, to ping exactly the worker this test started.
        self.name = f"envmanager-test-{uuid.uuid4().hex[:12]}@localhost"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "envmanager",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                os.environ.get("ENVMANAGER_WORKER_LOGLEVEL", "--loglevel=WARNING"),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                self.queue,
                "-n",
                self.name,
            ],
            env=self.env,
            cwd=settings_module_dir(),
            stdout=subprocess.DEVNULL,
            stderr=open(os.environ.get("ENVMANAGER_WORKER_LOG", os.devnull), "ab"),  # noqa: SIM115
        )
        from envmanager.celery import app

        deadline = time.monotonic() + 120  # a loaded two-core machine starts it slowly
        while time.monotonic() < deadline:
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
            if self.process.poll() is not None:
                raise RuntimeError(
                    "The Celery worker exited; set ENVMANAGER_WORKER_LOG to see why."
                )
        raise RuntimeError("The Celery worker did not start within 120 s.")

    def kill(self) -> None:
        """Kill -9: the worker dies mid-task, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()


def settings_module_dir() -> str:
    return str(Path(__file__).resolve().parent.parent)


@pytest.fixture
def airflow_sqlite(tmp_path):
    """Make an Airflow-shaped SQLite metadata DB in an allowlisted folder: call it with a name
    (and optionally connections and variables); it returns `(url, fernet_key)`."""
    from cryptography.fernet import Fernet

    from deployments.airflow_metadata import create_airflow_shaped_sqlite

    def make(name="airflow.db", connections=None, variables=None, fernet_key=None):
        key = fernet_key or Fernet.generate_key().decode()
        path = tmp_path / name
        create_airflow_shaped_sqlite(
            path,
            key,
            connections if connections is not None else {"c": {"conn_type": "http"}},
            variables if variables is not None else {"v": "1"},
        )
        return f"sqlite:///{path}", key

    return make


@pytest.fixture
def celery_beat(celery_worker, tmp_path):
    """Celery beat beside the test's worker, with the worker's settings, looking for due
    migration runs every second. Stopped (killed) after the test."""
    env = {**celery_worker.env, "ENVMANAGER_MIGRATION_RESUME_SECONDS": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "envmanager",
            "beat",
            "--loglevel=WARNING",
            "-s",
            str(tmp_path / "beat-schedule"),
            "--pidfile=",
        ],
        env=env,
        cwd=settings_module_dir(),
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("ENVMANAGER_WORKER_LOG", os.devnull), "ab"),  # noqa: SIM115
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def require_postgresql() -> None:
    """For a test that needs PostgreSQL (row locks, sessions that wait on each other): a skip
    on SQLite at a developer's desk, a failure under CI (CI or ENVMANAGER_CI set), where a
    skip would hide that it never ran. Tests marked `postgresql` get it before they start;
    CI's SQLite pass deselects them (`-m "not postgresql"`) and its PostgreSQL pass runs them."""
    if connection.vendor == "postgresql":
        return
    if any(os.environ.get(name, "").lower() not in ("", "0", "false") for name in _CI_VARIABLES):
        pytest.fail("This test needs PostgreSQL (DATABASE_URL=postgresql://…) and CI is set.")
    pytest.skip("needs PostgreSQL")


_CI_VARIABLES = ("CI", "ENVMANAGER_CI")


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("postgresql"):
        require_postgresql()
