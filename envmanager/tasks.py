"""Celery tasks: each a few lines that call a service. Tasks are acknowledged late, so a task
whose worker dies is delivered again; the services resume where the run stopped."""

from celery import shared_task

from envmanager.services import encryption_keys, migration, versions


@shared_task
def ping(value: str) -> str:
    """A round trip through the broker and a worker: used by health checks and tests."""
    return f"pong:{value}"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def migration_copy(run_id: int) -> None:
    migration.migration_copy(run_id=run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def migration_delete_sources(run_id: int) -> None:
    migration.migration_delete_sources(run_id=run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def migration_undo(run_id: int) -> None:
    migration.migration_undo_apply(run_id=run_id)


@shared_task
def migration_runs_resume() -> int:
    """Run by Celery beat every ENVMANAGER_MIGRATION_RESUME_SECONDS: runs whose worker died go
    on with nobody watching."""
    return migration.migration_runs_resume_due()


@shared_task
def deleted_objects_purge() -> int:
    """Run by Celery beat (CELERY_BEAT_SCHEDULE); the command purge_deleted_objects does the
    same by hand or from cron."""
    return versions.deleted_objects_purge()


@shared_task
def encryption_keys_rotate() -> dict[str, int]:
    """Key rotation in a worker (the command rotate_encryption_keys does the same by hand);
    returns the counts, never a secret."""
    return encryption_keys.encryption_keys_rotate().total.as_dict()
