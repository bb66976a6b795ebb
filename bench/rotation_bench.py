"""Key rotation benchmark: `rotate_encryption_keys` over N connections on PostgreSQL, beside
the algorithm it replaced (kept below as the anchor), while a writer updates some of the
connections through the service.

    .venv/bin/python bench/rotation_bench.py [--sizes 3000 5000] [--writes 20]

For each size it seeds a database of its own (`envmanager_rotation_bench_<pid>`, dropped at the
end) with N Workspace connections, each with an override on a Deployment link, then rotates
three times, each time with a new key put first: the old algorithm, ours, and ours again (a
second run, which finds every row current; also timed). During the first two, a writer thread
changes `--writes` connections' passwords, one every 50 ms, and the script reports how many of
those writes the rotation took back and the longest the writer waited for one.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB = f"envmanager_rotation_bench_{os.getpid()}"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def old_rotation() -> dict[str, int]:
    """The rotation before compare-and-swap (envmanager/services/encryption_keys.py up to
    2026-12): one transaction reads every row's plaintext, then writes it back row by row."""
    from django.db import transaction

    from accounts.audit import audit_record
    from accounts.models import Workspace
    from envmanager.kernel.encryption import encrypted_fields

    counts: dict[str, int] = {}
    with transaction.atomic():
        for model, names in encrypted_fields():
            count = 0
            rows = model._base_manager.values_list("pk", *names).order_by("pk")
            for pk, *plain in rows.iterator(chunk_size=500):
                model._base_manager.filter(pk=pk).update(**dict(zip(names, plain, strict=True)))
                count += 1
            counts[model._meta.label] = count
        for workspace in Workspace.objects.all():
            audit_record(
                workspace=workspace, actor=None, action="encryption_keys.rotate", detail=counts
            )
    return counts


def seed(n: int):
    from accounts.models import User
    from accounts.services import workspace_create
    from deployments.services import deployment_create
    from envmanager.models import EnvironmentObject, Link
    from envmanager.object_types import ObjectType, Scope
    from envmanager.services import environment_object_create

    owner = User.objects.create_user(email=f"bench{n}@example.com", password="bench-password-1")
    workspace = workspace_create(user=owner, name=f"Bench {n}")
    deployment = deployment_create(user=owner, workspace=workspace, name="prod")
    first = environment_object_create(
        user=owner,
        workspace=workspace,
        object_type="CONNECTION",
        key="conn_00000",
        values={"conn_type": "postgres", "host": "db0.internal", "password": "p-0"},
    )
    EnvironmentObject.objects.bulk_create(
        [
            EnvironmentObject(
                workspace=workspace,
                scope=Scope.WORKSPACE,
                object_type=ObjectType.CONNECTION,
                key=f"conn_{i:05d}",
                values={**first.values, "host": f"db{i}.internal", "password": f"p-{i}"},
            )
            for i in range(1, n)
        ],
        batch_size=1000,
    )
    objects = list(EnvironmentObject.objects.filter(workspace=workspace).order_by("pk"))
    Link.objects.bulk_create(
        [
            Link(
                environment_object=obj,
                deployment=deployment,
                object_type=obj.object_type,
                object_key=obj.key,
                overrides={"password": f"o-{obj.key}"},
            )
            for obj in objects
        ],
        batch_size=1000,
    )
    return owner, objects


def timed_rotation(rotate, owner, objects, writes: int, tag: str, new_key: bool = True) -> dict:
    """Run `rotate` (with a new key put first), while a writer changes `writes` passwords."""
    from cryptography.fernet import Fernet
    from django.conf import settings
    from django.db import connections

    from envmanager.models import EnvironmentObject
    from envmanager.services import environment_object_update

    if new_key:
        settings.ENVMANAGER_ENCRYPTION_KEYS = [
            Fernet.generate_key().decode(),
            *settings.ENVMANAGER_ENCRYPTION_KEYS,
        ]
    step = max(1, len(objects) // max(1, writes))
    targets = objects[step // 2 :: step][:writes]
    waits: list[float] = []
    done = threading.Event()

    def writer():
        try:
            for obj in targets:
                if done.is_set():
                    break
                started = time.perf_counter()
                environment_object_update(
                    user=owner, obj=obj, values={"password": f"{tag}-{obj.key}"}
                )
                waits.append(time.perf_counter() - started)
                time.sleep(0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    started = time.perf_counter()
    if writes:
        thread.start()
    result = rotate()
    seconds = time.perf_counter() - started
    done.set()
    if writes:
        thread.join()
    written = targets[: len(waits)]
    kept = {
        o.pk
        for o in EnvironmentObject.objects.filter(pk__in=[t.pk for t in written])
        if o.values["password"] == f"{tag}-{o.key}"
    }
    return {
        "seconds": seconds,
        "writes": len(written),
        "lost": len(written) - len(kept),
        "max_wait": max(waits, default=0.0),
        "result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[3_000, 5_000])
    parser.add_argument("--writes", type=int, default=20, help="concurrent password changes")
    args = parser.parse_args()

    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{DB}"')
    os.environ.update(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{DB}",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DJANGO_SETTINGS_MODULE": "envmanager.settings",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from envmanager.services import encryption_keys_rotate

    try:
        call_command("migrate", verbosity=0)
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        for n in args.sizes:
            with connection.cursor() as cursor:
                cursor.execute(
                    "TRUNCATE envmanager_link, envmanager_environmentobject,"
                    " envmanager_objectversion, envmanager_auditevent CASCADE"
                )
            owner, objects = seed(n)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            rows = 2 * n  # the connections and their links' overrides
            old = timed_rotation(old_rotation, owner, objects, args.writes, "old")
            new = timed_rotation(encryption_keys_rotate, owner, objects, args.writes, "new")
            again = timed_rotation(
                encryption_keys_rotate, owner, objects, 0, "again", new_key=False
            )
            total = new["result"].total
            assert again["result"].total.rewritten == 0
            print(f"{n} connections ({rows} encrypted rows with their overrides):")
            print(
                f"  old (one transaction, plaintext written back): {old['seconds']:.2f} s "
                f"({rows / old['seconds']:,.0f} rows/s); writes taken back: "
                f"{old['lost']} of {old['writes']}; longest write wait {old['max_wait']:.2f} s"
            )
            print(
                f"  new (compare-and-swap, 500-row transactions): {new['seconds']:.2f} s "
                f"({rows / new['seconds']:,.0f} rows/s); writes taken back: "
                f"{new['lost']} of {new['writes']}; longest write wait {new['max_wait']:.2f} s; "
                f"rewritten {total.rewritten}, already current {total.current}, "
                f"retries {total.retries}, left {total.left}"
            )
            print(f"  new, second run (nothing to rewrite): {again['seconds']:.2f} s")
    finally:
        connections.close_all()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
