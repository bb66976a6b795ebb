"""Real Apache Airflow for the tests: its own virtual environment (cached between runs), its
CLI, and metadata databases it builds itself (SQLite or PostgreSQL) with Fernet encryption.

`python -m tests.airflow_support` installs it (scripts/test does this before the suite).
"""

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import psycopg

AIRFLOW_VENV = Path(
    os.environ.get("ENVMANAGER_AIRFLOW_VENV", "~/.cache/envmanager-airflow")
).expanduser()
AIRFLOW_REQUIREMENTS = ["apache-airflow==3.3.*", "psycopg2-binary", "asyncpg"]
ROOT = Path(__file__).resolve().parents[1]
SECRETS_BACKEND = ROOT / "secrets-backend"
PG_ADMIN_URL = os.environ.get("ENVMANAGER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
PG_TEMPLATE = "envmanager_af_template"


@contextmanager
def _lock(name: str):
    AIRFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(AIRFLOW_VENV.parent / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_airflow() -> Path:
    """The Airflow virtual environment, with the secrets backend's distribution installed in it
    (its metadata: the `envmanager-env` command, the plugin's entry point). The code Airflow
    imports is this checkout's: `airflow_env` puts its `secrets-backend` first on PYTHONPATH,
    so runs from several checkouts at once (CI, a helper's worktree) each test their own."""
    with _lock("airflow-venv"):
        # -2: the secrets backend installs envmanager-env; -3: and the Airflow plugin (its
        # entry point is read from the installed metadata, so the install is made again).
        marker = AIRFLOW_VENV / ".envmanager-ready-3"
        if not (AIRFLOW_VENV / "bin" / "airflow").exists():
            subprocess.run([sys.executable, "-m", "venv", str(AIRFLOW_VENV)], check=True)
            subprocess.run(
                [
                    str(AIRFLOW_VENV / "bin" / "pip"),
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    *AIRFLOW_REQUIREMENTS,
                ],
                check=True,
            )
        if not marker.exists():
            subprocess.run(
                [
                    str(AIRFLOW_VENV / "bin" / "pip"),
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-e",
                    str(SECRETS_BACKEND),
                ],
                check=True,
            )
            marker.write_text("ok")
    return AIRFLOW_VENV


def airflow_env(airflow_home: Path, env: dict | None = None) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DJANGO"))}
    return {
        **base,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        # This checkout's secrets backend, whichever checkout's editable install the venv has.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(SECRETS_BACKEND), base.get("PYTHONPATH", "")])
        ),
        **(env or {}),
    }


def run_airflow(
    args: list[str],
    airflow_home: Path,
    env: dict | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    venv = ensure_airflow()
    Path(airflow_home).mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(venv / "bin" / "airflow"), *args],
        env=airflow_env(Path(airflow_home), env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"airflow {args[0]} failed:\n{result.stderr[-3000:]}")
    return result


def airflow_python(
    code: str, env: dict, airflow_home: Path | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    """Run a Python snippet in the Airflow environment."""
    venv = ensure_airflow()
    home = airflow_home or Path(env.get("AIRFLOW_HOME", "/tmp/envmanager-airflow-home"))
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        env=airflow_env(home, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def _sqlite_template() -> Path:
    template = AIRFLOW_VENV.parent / "envmanager-af-templates" / "airflow.db"
    with _lock("sqlite-template"):
        if not template.exists():
            template.parent.mkdir(parents=True, exist_ok=True)
            home = template.parent / "home"
            run_airflow(
                ["db", "migrate"],
                home,
                {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{template}"},
            )
    return template


def _pg_template() -> None:
    with (
        _lock("pg-template"),
        psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as admin,
    ):
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (PG_TEMPLATE,)
        ).fetchone()
        if exists:
            return
        admin.execute(f'CREATE DATABASE "{PG_TEMPLATE}"')
        home = AIRFLOW_VENV.parent / "envmanager-af-templates" / "pg-home"
        try:
            run_airflow(
                ["db", "migrate"],
                home,
                {
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(
                        f"{PG_ADMIN_URL}/{PG_TEMPLATE}"
                    )
                },
            )
        except Exception:
            admin.execute(f'DROP DATABASE "{PG_TEMPLATE}"')
            raise


def make_metadata_db(
    tmp_path: Path,
    *,
    backend: str = "sqlite",
    fernet_key: str,
    connections: dict | None = None,
    variables: dict | None = None,
) -> str:
    """A fresh Airflow metadata DB, migrated by real Airflow, with the given connections and
    variables imported by `airflow connections import` / `airflow variables import` under that
    Fernet key. Returns its URL (`sqlite:////…` or `postgresql://…`)."""
    tmp_path = Path(tmp_path)
    if backend == "sqlite":
        path = tmp_path / f"airflow-{secrets.token_hex(4)}.db"
        shutil.copy(_sqlite_template(), path)
        url = f"sqlite:///{path}"
        alchemy = url
    else:
        _pg_template()
        name = f"envmanager_af_{secrets.token_hex(6)}"
        with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{PG_TEMPLATE}"')
        url = f"{PG_ADMIN_URL}/{name}"
        alchemy = _sqlalchemy_url(url)
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": alchemy, "AIRFLOW__CORE__FERNET_KEY": fernet_key}
    home = tmp_path / f"airflow-home-{secrets.token_hex(3)}"
    if connections:
        file = tmp_path / f"connections-{secrets.token_hex(3)}.json"
        file.write_text(json.dumps(connections))
        run_airflow(["connections", "import", str(file)], home, env)
    if variables:
        file = tmp_path / f"variables-{secrets.token_hex(3)}.json"
        file.write_text(json.dumps(variables))
        run_airflow(["variables", "import", str(file)], home, env)
    return url


def drop_metadata_db(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    print(f"Apache Airflow ready in {ensure_airflow()}")
