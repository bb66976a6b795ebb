import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from deployments.models import Deployment
from envmanager.kernel.errors import EnvManagerError
from envmanager.models import MigrationItem, MigrationRun
from envmanager.object_types import AIRFLOW_SLUGS
from envmanager.selectors import migration_run_progress
from envmanager.services.migration import migration_candidates, migration_start


class Command(BaseCommand):
    help = (
        "Migrate connections or variables out of a Deployment's Airflow metadata DB. Shows what "
        "would move (a dry run) unless --execute is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("deployment_id", type=int)
        parser.add_argument("type", choices=sorted(AIRFLOW_SLUGS))
        parser.add_argument("--as", dest="email", required=True, help="a Workspace Owner's email")
        parser.add_argument("--keys", help="comma-separated keys (default: every new or existing)")
        parser.add_argument("--execute", action="store_true", help="really migrate")
        parser.add_argument("--wait", type=int, default=600, help="seconds to wait for the run")

    def handle(
        self,
        *args: Any,
        deployment_id: int,
        type: str,
        email: str,
        keys: str | None,
        execute: bool,
        wait: int,
        **options: Any,
    ) -> None:

        user = User.objects.filter(email__iexact=email).first()
        deployment = Deployment.objects.filter(pk=deployment_id).first()
        if user is None or deployment is None:
            raise CommandError("Unknown user or Deployment.")
        object_type = AIRFLOW_SLUGS[type]
        try:
            candidates = migration_candidates(
                user=user, deployment=deployment, object_type=object_type
            )
        except EnvManagerError as exc:
            raise CommandError(str(exc)) from None
        wanted = set(keys.split(",")) if keys else None
        shown = [c for c in candidates if wanted is None or c.object_key in wanted]
        selected = [c for c in shown if c.status != c.CONFLICT]
        for candidate in shown:
            line = f"{candidate.status:20} {candidate.object_key}"
            if candidate.status == candidate.CONFLICT:
                line += f"  not migrated: {candidate.reason}"
            self.stdout.write(line)
        left = len(shown) - len(selected)
        if not execute:
            self.stdout.write(
                f"Dry run: {len(selected)} would be migrated, {left} left in Airflow "
                f"(conflict). Add --execute."
            )
            return
        try:
            run = migration_start(
                user=user,
                deployment=deployment,
                object_type=object_type,
                object_keys=[c.object_key for c in selected],
            )
        except EnvManagerError as exc:
            raise CommandError(exc.message) from None
        deadline = time.monotonic() + wait
        run.refresh_from_db()
        while run.is_active and time.monotonic() < deadline:
            time.sleep(0.5)
            run.refresh_from_db()
        self.stdout.write(f"Migration run {run.pk}: {run.status} {migration_run_progress(run)}")
        for item in run.items.exclude(state=MigrationItem.State.DELETED):
            self.stdout.write(f"{item.state:20} {item.object_key}  {item.reason}".rstrip())
        if run.error:
            self.stdout.write(run.error)
        if run.status not in (MigrationRun.Status.SUCCEEDED, MigrationRun.Status.PARTIAL):
            raise CommandError(f"The run ended {run.status}.")
