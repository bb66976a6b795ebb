"""Migration benchmark: N connections + N variables in a real Airflow PostgreSQL metadata DB,
migrated end to end by envmanager (propagation window 0), beside the time real Airflow's own
`airflow connections export` + `airflow variables export` take for the same DB.

    .venv/bin/python bench/migration_bench.py [--objects 10000]

Prints objects/s and peak memory (RSS of this process) for our migration, and the seconds of
Airflow's export. Uses PostgreSQL at 127.0.0.1:5432 for both our database and Airflow's.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUR_DB = "envmanager_bench"


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')


def clone_database(url: str) -> str:
    import psycopg

    name = url.rsplit("/", 1)[1]
    clone = f"{name}_copy"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + clone


def seed_rows(url: str, key: str, connections: dict, variables: dict) -> None:
    import psycopg
    from cryptography.fernet import Fernet

    fernet = Fernet(key.encode())

    def enc(text: str) -> str:
        return fernet.encrypt(text.encode()).decode()

    with psycopg.connect(url) as db, db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO connection (conn_id, conn_type, host, schema, login, port, password, "
            "extra, is_encrypted, is_extra_encrypted) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
            "true, true)",
            [
                (
                    cid,
                    c["conn_type"],
                    c["host"],
                    c["schema"],
                    c["login"],
                    c["port"],
                    enc(c["password"]),
                    enc(json.dumps(c["extra"])),
                )
                for cid, c in connections.items()
            ],
        )
        cursor.executemany(
            'INSERT INTO variable ("key", val, is_encrypted) VALUES (%s, %s, true)',
            [(k, enc(v)) for k, v in variables.items()],
        )


def time_airflow_export(tmp: Path, url: str, key: str, n: int, cap: float) -> float:
    """Seconds real Airflow takes to export the same DB (both exports), at most `cap`. The
    migration runs first, so the export reads from a copy of the source taken before it."""
    from tests.airflow_support import run_airflow

    home = tmp / "airflow-home"
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url.replace(
            "postgresql://", "postgresql+psycopg2://"
        ),
        "AIRFLOW__CORE__FERNET_KEY": key,
    }
    started = time.perf_counter()
    try:
        run_airflow(["variables", "export", str(tmp / "v.json")], home, env)
        remaining = max(1.0, cap - (time.perf_counter() - started))
        run_airflow(["connections", "export", str(tmp / "c.json")], home, env, timeout=remaining)
    except subprocess.TimeoutExpired:
        return cap
    exported = json.loads((tmp / "c.json").read_text())
    assert len(exported) == n and exported["conn_00001"]["password"] == "p@ss:1/#%", (
        "Airflow must read every seeded row"
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000, help="connections, and variables")
    parser.add_argument(
        "--airflow-cap",
        type=float,
        default=900,
        help="stop timing Airflow's export after this many seconds",
    )
    args = parser.parse_args()
    n = args.objects

    recreate_database(OUR_DB)
    os.environ.update(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{OUR_DB}",
            "ENVMANAGER_PROPAGATION_SECONDS": "0",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DJANGO_SETTINGS_MODULE": "envmanager.settings",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from accounts.models import User
    from accounts.services import workspace_create
    from deployments.services import deployment_create
    from envmanager.models import MigrationRun
    from envmanager.services.migration import migration_start
    from tests.airflow_support import drop_metadata_db, make_metadata_db

    call_command("migrate", verbosity=0)
    key = Fernet.generate_key().decode()
    connections = {
        f"conn_{i:05d}": {
            "conn_type": "postgres",
            "host": f"db{i}.internal",
            "login": "etl",
            "password": f"p@ss:{i}/#%",
            "schema": "analytics",
            "port": 5432,
            "extra": {"sslmode": "require", "i": i},
        }
        for i in range(n)
    }
    variables = {f"var_{i:05d}": json.dumps({"i": i, "name": f"value {i}"}) for i in range(n)}
    tmp = Path(tempfile.mkdtemp(prefix="envmanager-bench-"))
    started = time.perf_counter()
    # The schema comes from real `airflow db migrate`; the rows are written the way Airflow
    # writes them (`airflow connections import` of 10,000 rows takes over ten minutes here).
    url = make_metadata_db(tmp, backend="postgresql", fernet_key=key)
    seed_rows(url, key, connections, variables)
    # Airflow exports an identical copy, since the migration empties the original.
    export_url = clone_database(url)
    print(
        f"seeded a real Airflow metadata DB with {n} connections and {n} variables "
        f"in {time.perf_counter() - started:.1f} s"
    )

    try:
        owner = User.objects.create_user(email="bench@example.com", password="bench-password-1")
        workspace = workspace_create(user=owner, name="Bench")
        deployment = deployment_create(
            user=owner, workspace=workspace, name="prod", metadata_db_url=url, fernet_key=key
        )
        timings = {}
        for object_type, keys in (
            ("CONNECTION", list(connections)),
            ("AIRFLOW_VARIABLE", list(variables)),
        ):
            started = time.perf_counter()
            run = migration_start(
                user=owner, deployment=deployment, object_type=object_type, object_keys=keys
            )
            run.refresh_from_db()
            timings[object_type] = time.perf_counter() - started
            assert run.status == MigrationRun.Status.SUCCEEDED, (run.status, run.error)
        ours = sum(timings.values())
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        airflow_export = time_airflow_export(tmp, export_url, key, n, cap=args.airflow_cap)
        shown = (
            f"{airflow_export:.1f} s ({2 * n / airflow_export:,.0f} objects/s)"
            if airflow_export < args.airflow_cap
            else f"did not finish in {args.airflow_cap:.0f} s (< {2 * n / airflow_export:,.0f} "
            "objects/s)"
        )
        print(f"airflow connections export + variables export: {shown}")
        print(
            f"envmanager verified migration (copy, verify, compare-and-delete): {ours:.1f} s "
            f"({2 * n / ours:,.0f} objects/s; connections {timings['CONNECTION']:.1f} s, "
            f"variables {timings['AIRFLOW_VARIABLE']:.1f} s)"
        )
        print(f"peak memory of the migrating process: {peak_mib:.0f} MiB")
        print(f"ratio ours / airflow export: {ours / airflow_export:.2f} (target <= 1.00)")
    finally:
        drop_metadata_db(url)
        drop_metadata_db(export_url)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
