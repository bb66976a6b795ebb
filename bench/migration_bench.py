"""Migration benchmark: N connections + N variables in a real Airflow PostgreSQL metadata DB,
migrated end to end by envmanager (propagation window 0), beside a floor from the same run.

    .venv/bin/python bench/migration_bench.py [--objects 10000] [--our-db envmanager_bench]

Prints objects/s and peak memory (the migrating process's peak RSS during the migration) for our
migration, and the floor: a plain script (psycopg and cryptography, nothing of ours) that reads
the same rows from a copy of the Airflow DB, decrypts them with the Airflow Fernet key,
re-encrypts each object's values with our key and bulk-inserts them (COPY) into a scratch table.
Our time is printed as a multiple of the floor's. Uses PostgreSQL at 127.0.0.1:5432 for both
our database and Airflow's.

Airflow's own `airflow connections export` + `airflow variables export` used to be timed here
too; it never finished 20,000 objects in 900 s (its connections export masks each secret as it
reads it, which grows with every row), so it measured nothing and was dropped for the floor.
"""

import argparse
import cProfile
import json
import os
import pstats
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


def time_floor(url: str, airflow_key: str, our_key: str, scratch_db_url: str) -> float:
    """Seconds a plain script takes for the work no migration can skip: read every connection
    and variable row, decrypt its secrets, encrypt each object's values as one token under our
    key (as our EncryptedJSONField stores them) and bulk-insert them (COPY) into a scratch
    table."""
    import psycopg
    from cryptography.fernet import Fernet

    airflow, ours = Fernet(airflow_key.encode()), Fernet(our_key.encode())

    def dec(token: str | None, encrypted: bool) -> str | None:
        return airflow.decrypt(token.encode()).decode() if token and encrypted else token

    def enc(values: dict) -> str:
        text = json.dumps(values, separators=(",", ":"), sort_keys=True)
        return ours.encrypt(text.encode()).decode()

    with psycopg.connect(scratch_db_url, autocommit=True) as out:
        out.execute("DROP TABLE IF EXISTS bench_floor")
        out.execute("CREATE TABLE bench_floor (object_type text, key text, value text)")
    started = time.perf_counter()
    with psycopg.connect(url) as source, psycopg.connect(scratch_db_url) as out:
        rows = []
        for c in source.execute(
            "SELECT conn_id, conn_type, description, host, schema, login, password, port, "
            "extra, is_encrypted, is_extra_encrypted FROM connection"
        ):
            values = {
                "conn_type": c[1],
                "description": c[2],
                "host": c[3],
                "schema": c[4],
                "login": c[5],
                "password": dec(c[6], c[9]),
                "port": c[7],
                "extra": json.loads(dec(c[8], c[10]) or "{}"),
            }
            rows.append(("CONNECTION", c[0], enc(values)))
        for v in source.execute('SELECT "key", val, description, is_encrypted FROM variable'):
            values = {"value": dec(v[1], v[3]), "description": v[2]}
            rows.append(("AIRFLOW_VARIABLE", v[0], enc(values)))
        copying = "COPY bench_floor (object_type, key, value) FROM STDIN"
        with out.cursor() as cursor, cursor.copy(copying) as copy:
            for row in rows:
                copy.write_row(row)
        out.commit()
    elapsed = time.perf_counter() - started
    with psycopg.connect(scratch_db_url, autocommit=True) as out:
        assert out.execute("SELECT count(*) FROM bench_floor").fetchone()[0] == len(rows)
        out.execute("DROP TABLE bench_floor")
    return elapsed


def reset_peak_rss() -> None:
    """Start the process's high-water mark of resident memory afresh (Linux), so the peak
    printed is the migration's own, not the seeding's."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000, help="connections, and variables")
    parser.add_argument("--our-db", default=OUR_DB, help="our database (dropped and created)")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print the migration's top N functions"
    )
    args = parser.parse_args()
    n = args.objects

    recreate_database(args.our_db)
    our_db_url = f"postgresql://postgres@127.0.0.1:5432/{args.our_db}"
    os.environ.update(
        {
            "DATABASE_URL": our_db_url,
            "ENVMANAGER_PROPAGATION_SECONDS": "0",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DJANGO_SETTINGS_MODULE": "envmanager.settings",
            "LOG_LEVEL": "WARNING",
            "ENVMANAGER_METADATA_DB_ALLOWLIST": "127.0.0.1:5432",
        }
    )
    import django

    django.setup()
    from cryptography.fernet import Fernet
    from django.conf import settings
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
    # The floor reads an identical copy, since the migration empties the original.
    floor_url = clone_database(url)
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
        del connections, variables  # the seed data is not the migration's memory
        reset_peak_rss()
        profile = cProfile.Profile() if args.profile else None
        if profile:
            profile.enable()
        for object_type, keys in (
            ("CONNECTION", [f"conn_{i:05d}" for i in range(n)]),
            ("AIRFLOW_VARIABLE", [f"var_{i:05d}" for i in range(n)]),
        ):
            started = time.perf_counter()
            run = migration_start(
                user=owner, deployment=deployment, object_type=object_type, object_keys=keys
            )
            run.refresh_from_db()
            timings[object_type] = time.perf_counter() - started
            assert run.status == MigrationRun.Status.SUCCEEDED, (run.status, run.error)
        ours = sum(timings.values())
        if profile:
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
        peak_mib = peak_rss_mib()
        floor = time_floor(floor_url, key, settings.ENVMANAGER_ENCRYPTION_KEYS[0], our_db_url)
        print(
            f"floor (plain script: read, decrypt, re-encrypt, COPY into a scratch table): "
            f"{floor:.1f} s ({2 * n / floor:,.0f} objects/s)"
        )
        print(
            f"envmanager verified migration (copy, verify, compare-and-delete): {ours:.1f} s "
            f"({2 * n / ours:,.0f} objects/s, target >= 1,500; connections "
            f"{timings['CONNECTION']:.1f} s, variables {timings['AIRFLOW_VARIABLE']:.1f} s)"
        )
        print(f"peak memory of the migrating process during the migration: {peak_mib:.0f} MiB")
        print(f"ours / floor: {ours / floor:.1f}x (target <= 5x)")
    finally:
        drop_metadata_db(url)
        drop_metadata_db(floor_url)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
