"""Writes raced on PostgreSQL from two threads (two database sessions) released together, many
rounds, the end state checked every round: auto-links against Deployments created at the same
moment (the new Deployment always ends linked, under the object's current key), and an
Airflow-file import against a change of the secret flag (never lowered)."""

import random
import threading
import time

import pytest
from django.db import connection

from deployments.models import Deployment
from deployments.services import deployment_create
from envmanager.models import EnvironmentObject, Link
from envmanager.services import (
    environment_object_create,
    environment_object_delete,
    environment_object_update,
    link_create,
    link_delete,
)

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]
ROUNDS = 25


def race(first, second) -> None:
    """Run both at once, each in its own thread and database session."""
    barrier = threading.Barrier(2)
    errors = []

    def run(fn):
        try:
            barrier.wait()
            fn()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def jittered(fn, most: float = 0.03):
    """`fn` after a random pause of up to `most` seconds: over the rounds, one side of a race
    lands anywhere inside the other's transaction, not only where the barrier puts it."""

    def run():
        time.sleep(random.uniform(0, most))
        fn()

    return run


def linked(obj_pk: int, deployment: Deployment) -> list[str]:
    return list(
        Link.objects.filter(environment_object=obj_pk, deployment=deployment).values_list(
            "object_key", flat=True
        )
    )


def http_connection(team, key: str, **kwargs):
    """A Workspace connection with only a type, made by the Owner."""
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key=key,
        values={"conn_type": "http"},
        **kwargs,
    )


def new_deployment(team, name):
    made = {}

    def create():
        made["d"] = deployment_create(user=team.owner, workspace=team.workspace, name=name)

    return made, create


def test_auto_link_switched_on_while_a_deployment_is_created(team):
    obj = http_connection(team, "shared")
    for round_ in range(ROUNDS):
        made, create = new_deployment(team, f"d{round_}")

        def switch_on():
            environment_object_update(user=team.owner, obj=obj, auto_link_deployments=True)

        race(create, switch_on)
        assert linked(obj.pk, made["d"]) == ["shared"], f"round {round_}"
        environment_object_update(user=team.owner, obj=obj, auto_link_deployments=False)


def test_an_unlink_while_auto_link_is_switched_on_ends_linked_or_excluded(team):
    """In either order the Deployment ends linked (unlinked first, then auto-linked) or
    excluded (auto-linked first, then unlinked, which excludes it): never neither."""
    obj = http_connection(team, "shared")
    for round_ in range(ROUNDS):
        link = link_create(user=team.owner, obj=obj, deployment=team.deployment)

        def unlink(link=link):
            link_delete(user=team.owner, link=link)

        def switch_on():
            environment_object_update(user=team.owner, obj=obj, auto_link_deployments=True)

        race(unlink, switch_on)
        obj.refresh_from_db()
        is_linked = bool(linked(obj.pk, team.deployment))
        excluded = obj.auto_link_excluded.filter(pk=team.deployment.pk).exists()
        assert is_linked != excluded, f"round {round_}: linked {is_linked}, excluded {excluded}"
        environment_object_update(user=team.owner, obj=obj, auto_link_deployments=False)
        obj.auto_link_excluded.clear()
        Link.objects.filter(environment_object=obj).delete()


def test_a_link_made_while_the_object_is_renamed_carries_the_new_key(team):
    obj = http_connection(team, "k0")
    for round_ in range(ROUNDS):
        stale = EnvironmentObject.objects.get(pk=obj.pk)  # as a page opened before the rename

        def link(stale=stale):
            link_create(user=team.owner, obj=stale, deployment=team.deployment)

        def rename(round_=round_):
            environment_object_update(
                user=team.owner, obj=EnvironmentObject.objects.get(pk=obj.pk), key=f"k{round_ + 1}"
            )

        race(link, rename)
        assert linked(obj.pk, team.deployment) == [f"k{round_ + 1}"], f"round {round_}"
        Link.objects.filter(environment_object=obj).delete()


def test_an_auto_linked_object_created_while_a_deployment_is_created(team):
    for round_ in range(ROUNDS):
        made, create = new_deployment(team, f"d{round_}")
        key = f"auto_{round_}"

        def create_object():
            http_connection(team, key, auto_link_deployments=True)

        race(create, create_object)
        obj = EnvironmentObject.objects.get(key=key)
        assert linked(obj.pk, made["d"]) == [key], f"round {round_}"


def test_renaming_an_auto_linked_object_while_a_deployment_is_created(team):
    obj = http_connection(team, "k0", auto_link_deployments=True)
    for round_ in range(ROUNDS):
        made, create = new_deployment(team, f"d{round_}")
        new_key = f"k{round_ + 1}"

        def rename():
            environment_object_update(user=team.owner, obj=obj, key=new_key)

        race(create, rename)
        assert linked(obj.pk, made["d"]) == [new_key], f"round {round_}"
        assert set(
            Link.objects.filter(environment_object=obj).values_list("object_key", flat=True)
        ) == {new_key}


def test_an_import_never_lowers_a_secret_flag_it_races_with(team):
    from envmanager.services.airflow_files import airflow_file_import

    obj = environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="AIRFLOW_VARIABLE",
        key="report_target",
        values={"value": "a", "is_secret": False},
    )
    for round_ in range(ROUNDS):

        def import_file():
            airflow_file_import(
                user=team.owner,
                workspace=team.workspace,
                object_type="AIRFLOW_VARIABLE",
                filename="variables.json",
                content=f'{{"report_target": "value-{round_}"}}'.encode(),
                overwrite=True,
            )

        def make_secret():
            environment_object_update(user=team.owner, obj=obj, values={"is_secret": True})

        race(import_file, make_secret)
        stored = EnvironmentObject.objects.get(pk=obj.pk).values
        assert stored["is_secret"] is True, f"round {round_}"
        assert stored["value"] == f"value-{round_}"
        # A secret stays secret: the next round starts from a plain variable made anew.
        environment_object_delete(user=team.owner, obj=obj)
        obj = environment_object_create(
            user=team.owner,
            workspace=team.workspace,
            object_type="AIRFLOW_VARIABLE",
            key="report_target",
            values={"value": "a", "is_secret": False},
        )


def _own(team, deployment, key, host):
    return environment_object_create(
        user=team.owner,
        workspace=team.workspace,
        object_type="CONNECTION",
        key=key,
        values={"conn_type": "http", "host": host},
        scope="DEPLOYMENT",
        deployment=deployment,
    )


def test_two_promotes_of_one_key_from_two_deployments(team):
    from envmanager.selectors import deployment_resolved_environment
    from envmanager.services import environment_object_promote

    for round_ in range(ROUNDS):
        key = f"promoted_{round_}"
        mine = _own(team, team.deployment, key, "prod-host")
        theirs = _own(team, team.other_deployment, key, "staging-host")
        race(
            lambda m=mine: environment_object_promote(user=team.owner, obj=m),
            lambda t=theirs: environment_object_promote(user=team.owner, obj=t),
        )
        # One Workspace object; each Deployment resolves what it did before.
        assert EnvironmentObject.objects.filter(key=key, scope="WORKSPACE").count() == 1
        for deployment, host in (
            (team.deployment, "prod-host"),
            (team.other_deployment, "staging-host"),
        ):
            env = deployment_resolved_environment(deployment)["CONNECTION"]
            assert env[key].values["host"] == host, f"round {round_}"


def test_promote_against_delete_is_a_404_never_a_500(team):
    from envmanager.kernel.errors import NotFound
    from envmanager.services import environment_object_delete, environment_object_promote

    for round_ in range(ROUNDS):
        obj = _own(team, team.deployment, f"gone_{round_}", "h")
        outcome = {}

        def promote(o=obj):
            try:
                environment_object_promote(user=team.owner, obj=o)
                outcome["promote"] = "ok"
            except NotFound:
                outcome["promote"] = "404"

        def delete(o=obj):
            try:
                environment_object_delete(user=team.owner, obj=o)
                outcome["delete"] = "ok"
            except NotFound:
                outcome["delete"] = "404"

        race(promote, delete)
        assert set(outcome) == {"promote", "delete"}, f"round {round_}"


def test_a_migration_copy_while_the_workspace_object_of_its_key_is_renamed(
    team, airflow_sqlite, monkeypatch
):
    """Raced: a migration run's copy of Airflow connection `wh_N` and a rename of the Workspace
    object `wh_N` (not linked to the Deployment) to `wh_N_v2`; then the run's deletion step.
    Asserted every round: no link carries a stale key (each names its object's key now); the
    renamed object keeps its own values; and the Airflow row is deleted exactly when the
    Deployment resolves `wh_N` to the row's values (from a new object when the rename came
    first), else it stays, the item saying why."""
    from deployments.services import deployment_update
    from envmanager.models import MigrationItem
    from envmanager.selectors import deployment_resolve_one
    from envmanager.services import migration as migration_services
    from envmanager.services.migration import (
        migration_copy,
        migration_delete_sources,
        migration_start,
        open_run_metadata_db,
        read_source_rows,
    )

    # The run's steps are called here, in the race, not by Celery.
    monkeypatch.setattr(migration_services, "_enqueue", lambda *args, **kwargs: None)
    rounds = 15
    source = {"conn_type": "postgres", "host": "db.airflow", "login": "etl"}
    url, fernet_key = airflow_sqlite(
        connections={f"wh_{r}": source for r in range(rounds)}, variables={}
    )
    deployment_update(
        user=team.owner, deployment=team.deployment, metadata_db_url=url, fernet_key=fernet_key
    )
    outcomes = []
    for round_ in range(rounds):
        key = f"wh_{round_}"
        users = environment_object_create(
            user=team.owner,
            workspace=team.workspace,
            object_type="CONNECTION",
            key=key,
            values={"conn_type": "postgres", "host": "db.user"},
        )
        run = migration_start(
            user=team.owner, deployment=team.deployment, object_type="CONNECTION", object_keys=[key]
        )
        race(
            lambda r=run: migration_copy(run_id=r.pk),
            lambda u=users, k=key: environment_object_update(
                user=team.owner, obj=EnvironmentObject.objects.get(pk=u.pk), key=f"{k}_v2"
            ),
        )
        migration_delete_sources(run_id=run.pk)
        stale = [
            (link.object_key, link.environment_object.key)
            for link in Link.objects.select_related("environment_object")
            if link.object_key != link.environment_object.key
        ]
        assert not stale, f"round {round_}: links on stale keys {stale}"
        renamed = EnvironmentObject.objects.get(pk=users.pk)
        assert (renamed.key, renamed.values["host"]) == (f"{key}_v2", "db.user")
        resolved = deployment_resolve_one(team.deployment, "CONNECTION", key)
        resolves_source = resolved is not None and resolved.values["host"] == "db.airflow"
        run.refresh_from_db()
        with open_run_metadata_db(run) as db:
            row_kept = key in read_source_rows(db, "CONNECTION", [key])
        item = run.items.get()
        assert row_kept != resolves_source, (
            f"round {round_}: {item.action} {item.state} {item.reason!r}, row kept {row_kept}, "
            f"resolves the row {resolves_source}"
        )
        if row_kept:
            assert item.state == MigrationItem.State.KEPT_UNRESOLVED, f"round {round_}"
        outcomes.append(f"{item.action} {item.state}")
    print("migration copy vs rename:", {o: outcomes.count(o) for o in set(outcomes)})


def test_a_restore_of_a_deleted_object_while_the_purge_runs_at_the_30_day_edge(team):
    """Raced: restoring a deleted object whose deletion is just inside the 30 days, and the
    purge run with a clock a second later (for it, the deletion is just past the 30 days).
    Asserted every round: either the restore answered with the object, which is back with its
    values and link and keeps every version of its history, or it answered NotFound and the
    object and all its versions are gone: never an object without its history, or a purge
    that left part of it; never another error."""
    from datetime import timedelta

    from django.utils import timezone

    from envmanager.kernel.errors import NotFound
    from envmanager.models import ObjectVersion
    from envmanager.selectors import deployment_resolve_one
    from envmanager.services import environment_object_delete
    from envmanager.services.versions import (
        RESTORE_DELETED_DAYS,
        deleted_objects_purge,
        environment_object_restore_version,
    )

    outcomes = []
    for round_ in range(ROUNDS):
        key = f"edge_{round_}"
        obj = http_connection(team, key, link_deployments=[team.deployment])
        environment_object_update(user=team.owner, obj=obj, values={"host": f"h{round_}"})
        environment_object_delete(user=team.owner, obj=EnvironmentObject.objects.get(pk=obj.pk))
        versions = ObjectVersion.objects.filter(environment_object_id=obj.pk)
        edge = timezone.now() - timedelta(days=RESTORE_DELETED_DAYS) + timedelta(seconds=5)
        versions.update(created_at=edge - timedelta(days=1))
        deletion = versions.get(reason=ObjectVersion.Reason.DELETE)
        ObjectVersion.objects.filter(pk=deletion.pk).update(created_at=edge)
        outcome = {}

        def restore(deletion=deletion, outcome=outcome):
            try:
                environment_object_restore_version(user=team.owner, version=deletion)
                outcome["restore"] = "restored"
            except NotFound:
                outcome["restore"] = "404"

        def purge(outcome=outcome):
            outcome["purged"] = deleted_objects_purge(now=edge + timedelta(days=30, seconds=1))

        race(restore, purge)
        outcomes.append(outcome["restore"])
        left = versions.count()
        back = EnvironmentObject.objects.filter(pk=obj.pk).first()
        if outcome["restore"] == "restored":
            assert back is not None and back.values["host"] == f"h{round_}", f"round {round_}"
            assert left == 2 and outcome["purged"] == 0, f"round {round_}: {left} versions"
            found = deployment_resolve_one(team.deployment, "CONNECTION", key)
            assert found is not None and found.environment_object.pk == obj.pk
        else:
            assert back is None and left == 0, f"round {round_}: {back}, {left} versions"
            assert outcome["purged"] == 2, f"round {round_}"
    print("restore vs purge:", {o: outcomes.count(o) for o in set(outcomes)})


def test_two_deployments_created_in_one_workspace_at_the_same_moment(team):
    """Raced: two Deployments created in one Workspace (which has an auto-linked object).
    Asserted every round: both are created (no deadlock between the two), each linked."""
    http_connection(team, "everywhere", auto_link_deployments=True)
    for round_ in range(ROUNDS):
        first, create_first = new_deployment(team, f"a{round_}")
        second, create_second = new_deployment(team, f"b{round_}")
        race(jittered(create_first, 0.01), jittered(create_second, 0.01))
        obj = EnvironmentObject.objects.get(key="everywhere")
        for made in (first, second):
            assert linked(obj.pk, made["d"]) == ["everywhere"], f"round {round_}"


def test_restoring_an_older_key_while_a_deployment_is_created(team):
    """Raced: restoring an auto-linked object's earlier version (its earlier key) and creating
    a Deployment. Asserted every round: every link of the object, the new Deployment's too,
    carries the key the object has after the restore."""
    from envmanager.models import ObjectVersion
    from envmanager.services.versions import environment_object_restore_version

    obj = http_connection(team, "k0", auto_link_deployments=True)
    for round_ in range(ROUNDS):
        old_key, new_key = f"k{round_}", f"k{round_ + 1}"
        environment_object_update(user=team.owner, obj=obj, key=new_key)
        version = ObjectVersion.objects.filter(environment_object_id=obj.pk).latest("pk")
        assert version.key == old_key
        made, create = new_deployment(team, f"d{round_}")

        def restore(version=version):
            environment_object_restore_version(user=team.owner, version=version)

        race(create, jittered(restore))
        assert EnvironmentObject.objects.get(pk=obj.pk).key == old_key
        assert linked(obj.pk, made["d"]) == [old_key], f"round {round_}"
        keys = set(Link.objects.filter(environment_object=obj).values_list("object_key", flat=True))
        assert keys == {old_key}, f"round {round_}: {keys}"
        environment_object_update(user=team.owner, obj=obj, key=new_key)
