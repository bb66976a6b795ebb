from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User, Workspace
from deployments.models import Deployment
from envmanager.kernel.errors import EnvManagerError
from envmanager.object_types import AIRFLOW_SLUGS
from envmanager.services.airflow_files import (
    airflow_file_export,
    airflow_file_import,
    airflow_file_preview,
)


class Command(BaseCommand):
    help = (
        "Import or export connections or variables in Airflow's own file formats (as "
        "`airflow connections export/import`), for a Workspace or one Deployment. An import "
        "shows what it would do unless --apply is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("direction", choices=["import", "export"])
        parser.add_argument("type", choices=sorted(AIRFLOW_SLUGS))
        parser.add_argument("file", help="path; its extension (.json, .yaml, .env) is the format")
        parser.add_argument("--workspace", type=int, required=True)
        parser.add_argument("--deployment", type=int, help="a Deployment of that Workspace")
        parser.add_argument("--as", dest="email", required=True)
        parser.add_argument("--apply", action="store_true", help="import for real")
        parser.add_argument("--overwrite", action="store_true")
        parser.add_argument("--serialization-format", choices=["uri", "json"], default="uri")

    def handle(self, *args: Any, **o: Any) -> None:
        user = User.objects.filter(email__iexact=o["email"]).first()
        workspace = Workspace.objects.filter(pk=o["workspace"]).first()
        if user is None or workspace is None:
            raise CommandError("Unknown user or Workspace.")
        deployment = None
        if o["deployment"]:
            deployment = Deployment.objects.filter(pk=o["deployment"], workspace=workspace).first()
            if deployment is None:
                raise CommandError("That Deployment is not in the Workspace.")
        path = Path(o["file"])
        target: dict[str, Any] = {
            "user": user,
            "workspace": workspace,
            "deployment": deployment,
            "object_type": AIRFLOW_SLUGS[o["type"]],
        }
        try:
            if o["direction"] == "export":
                text = airflow_file_export(
                    **target,
                    file_format=path.suffix.lstrip("."),
                    serialization=o["serialization_format"],
                )
                path.write_text(text, encoding="utf-8")
                self.stdout.write(f"Wrote {path}.")
                return
            service = airflow_file_import if o["apply"] else airflow_file_preview
            rows = service(
                **target, filename=path.name, content=path.read_bytes(), overwrite=o["overwrite"]
            )
        except (EnvManagerError, OSError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from None
        for row in rows:
            self.stdout.write(f"{row.action:9} {row.key}  {row.reason}".rstrip())
        if not o["apply"]:
            self.stdout.write("Preview only: add --apply to import.")
