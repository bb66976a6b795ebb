from typing import Any

from django.core.management.base import BaseCommand

from envmanager.models import RESTORE_DELETED_DAYS
from envmanager.services.versions import deleted_objects_purge


class Command(BaseCommand):
    help = (
        f"Forget environment objects deleted more than {RESTORE_DELETED_DAYS} days ago: their "
        "saved versions (and the secrets in them) are removed for good. Celery beat runs this "
        "every few hours in production."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        removed = deleted_objects_purge()
        self.stdout.write(f"{removed} versions of deleted objects removed")
