import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from envmanager.connection_types import CATALOG_FILE, extract_catalog


class Command(BaseCommand):
    # It makes the file the pages read at start-up, so it must run before that file exists.
    requires_system_checks: list[str] = []

    help = (
        "Write the connection-type catalog (each type's fields, labels, placeholders and extra "
        "fields, as Airflow's own connection form shows them) from a real Airflow installation: "
        "a small standard-library script runs under the given Airflow interpreter."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--airflow-python", required=True, help="the Python of the Airflow environment"
        )
        parser.add_argument(
            "--output", default=str(CATALOG_FILE), help=f"where to write (default {CATALOG_FILE})"
        )
        parser.add_argument("--note", default="", help="how the Airflow environment was made")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = extract_catalog(options["airflow_python"])
        except (OSError, RuntimeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        document = {
            "generated_by": "manage.py airflow_connection_catalog",
            "airflow": data["airflow"],
            "providers": data["providers"],
            **({"note": options["note"]} if options["note"] else {}),
            "connection_types": data["connection_types"],
        }
        path = Path(options["output"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        self.stdout.write(
            f"Wrote {len(document['connection_types'])} connection types from Airflow "
            f"{document['airflow']} and {len(document['providers'])} providers to {path}."
        )
