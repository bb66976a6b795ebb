from django.db import transaction

from accounts.models import Workspace
from envmanager.encryption import encrypted_fields
from envmanager.services.audit import audit_record


def encryption_keys_rotate() -> dict[str, int]:
    """Re-encrypt every encrypted column with the newest key (MultiFernet: the first of
    ENVMANAGER_ENCRYPTION_KEYS), in one transaction, so old keys can then be dropped."""
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
