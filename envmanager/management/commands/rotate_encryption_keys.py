from django.core.management.base import BaseCommand

from envmanager.services import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the newest key of ENVMANAGER_ENCRYPTION_KEYS. Put the "
        "new key first, keep the old ones after it, run this, then drop the old keys."
    )

    def handle(self, *args, **options):
        counts = encryption_keys_rotate()
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} rows re-encrypted")
