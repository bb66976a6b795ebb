from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from envmanager.services import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the newest key of ENVMANAGER_ENCRYPTION_KEYS. Put the "
        "new key first, keep the old ones after it, run this, then drop the old keys. Safe to run "
        "while the app serves, and to run again: rows already under the newest key are left as "
        "they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--chunk-size", type=int, default=500, help="rows per transaction (default 500)"
        )

    def handle(self, *args: Any, chunk_size: int, **options: Any) -> None:
        report = encryption_keys_rotate(chunk_size=chunk_size)
        for label, counts in [*report.by_model.items(), ("total", report.total)]:
            self.stdout.write(
                f"{label}: {counts.rewritten} rows re-encrypted, {counts.current} already "
                f"current, {counts.retries} retries, {counts.left} left under an old key"
            )
        if report.total.left:
            raise CommandError(
                f"{report.total.left} rows kept changing and are still under an old key: run "
                "this again before dropping any key."
            )
