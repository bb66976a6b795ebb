"""What goes with a deleted Deployment on the environment side (deployments.services
.deployment_delete sends `deployment_deleting` inside its transaction; envmanager answers)."""

from typing import Any

from deployments.models import Deployment
from envmanager.kernel.errors import Conflict
from envmanager.models import MigrationRun, ObjectVersion
from envmanager.object_types import Scope
from envmanager.selectors import deployment_deletion


def deployment_deletion_prepare(*, deployment: Deployment) -> dict[str, Any]:
    """Refuse to delete a Deployment while one of its migration runs is active: the run is
    copying into, waiting on or deleting from its Airflow, and its undo data would go with the
    Deployment. Otherwise drop the history of its own objects (they cannot be restored without
    their Deployment) and count what the deletion takes. Runs inside the deletion's
    transaction, with the Deployment's row locked: a new run cannot start meanwhile."""
    # The runs' rows as they are now: one that finishes meanwhile is seen finished.
    list(MigrationRun.objects.select_for_update().filter(deployment=deployment).values_list("pk"))
    deletion = deployment_deletion(deployment)
    if deletion.active_run is not None:
        run = deletion.active_run
        raise Conflict(
            f"Deployment {deployment.name} has a migration run in progress (run #{run.pk}: "
            f"{run.get_status_display().lower()}). Wait until it has finished, then delete the "
            "Deployment; nothing was deleted."
        )
    ObjectVersion.objects.filter(scope=Scope.DEPLOYMENT, deployment_id=deployment.pk).delete()
    return deletion.counts()
