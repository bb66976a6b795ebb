"""Key rotation: every stored secret re-encrypted with the newest key, while the app serves."""

import time
from dataclasses import dataclass, fields
from typing import Any

from django.db import models, transaction

from accounts.audit import audit_record
from accounts.models import Workspace
from envmanager.kernel.encryption import encrypted_fields, is_current, replace_stored_tokens, rotate
from envmanager.kernel.encryption import stored_tokens as stored_tokens_of

CHUNK_SIZE = 500
# Pauses before each new look at rows that were being changed (locked) when their turn came:
# the app's transactions are short, so a row is usually free again at the first.
RETRY_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8)


@dataclass
class RotationCounts:
    """What one rotation did to the rows of one model (or of all of them)."""

    rewritten: int = 0  # re-encrypted with the newest key by this run
    current: int = 0  # already under the newest key (or empty): left as they are
    retries: int = 0  # second looks at a row that was being changed when its turn came
    left: int = 0  # still under an old key: changed or locked through every retry

    def __iadd__(self, other: "RotationCounts") -> "RotationCounts":
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class KeyRotationReport:
    by_model: dict[str, RotationCounts]

    @property
    def total(self) -> RotationCounts:
        total = RotationCounts()
        for counts in self.by_model.values():
            total += counts
        return total


def encryption_keys_rotate(*, chunk_size: int = CHUNK_SIZE) -> KeyRotationReport:
    """Re-encrypt every encrypted column with the newest key (the first of
    ENVMANAGER_ENCRYPTION_KEYS), so the old keys can then be dropped.

    Runs while the app serves and loses no write: rows are taken `chunk_size` at a time, each
    chunk in its own short transaction; a row is rewritten from its stored token (no
    plaintext), under a row lock taken without waiting, by compare-and-swap on the token it
    read. A row that is being changed when its turn comes is looked at again a few times
    (usually it is then under the newest key already: the app writes with it). A row still
    changing after that is counted in `left`: run the rotation again before dropping a key.
    A second run rewrites nothing."""
    report = KeyRotationReport(
        by_model={
            model._meta.label: _rotate_model(model, names, chunk_size)
            for model, names in encrypted_fields()
        }
    )
    detail: dict[str, Any] = {
        "byModel": {label: c.as_dict() for label, c in report.by_model.items()}
    }
    detail.update(report.total.as_dict())
    with transaction.atomic():
        for workspace in Workspace.objects.all():
            audit_record(
                workspace=workspace, actor=None, action="encryption_keys.rotate", detail=detail
            )
    return report


def _rotate_model(model: type[models.Model], names: list[str], chunk_size: int) -> RotationCounts:
    counts = RotationCounts()
    rows = stored_tokens_of(model, names).order_by("pk")
    after = None
    pending: list[Any] = []
    while True:
        # A plain read finds the rows to rewrite; only those are locked, and read again under
        # the lock, by `_rewrite`.
        chunk = list((rows if after is None else rows.filter(pk__gt=after))[:chunk_size])
        if not chunk:
            break
        after = chunk[-1][0]
        stale = [pk for pk, *tokens in chunk if not all(map(is_current, tokens))]
        counts.current += len(chunk) - len(stale)
        if stale:
            pending += _rewrite(model, names, stale, counts)
    for pause in RETRY_PAUSES:
        if not pending:
            break
        time.sleep(pause)
        counts.retries += len(pending)
        again = []
        for start in range(0, len(pending), chunk_size):
            again += _rewrite(model, names, pending[start : start + chunk_size], counts)
        pending = again
    counts.left = len(pending)
    return counts


def _rewrite(
    model: type[models.Model], names: list[str], pks: list[Any], counts: RotationCounts
) -> list[Any]:
    """Rewrite these rows in one transaction; returns the pks to look at again."""
    with transaction.atomic():
        # SKIP LOCKED: a row a writer holds is left for a retry, so the rotation never waits
        # on the app (and never deadlocks with it); the app waits at most one chunk on us.
        locked = list(
            stored_tokens_of(model, names)
            .filter(pk__in=pks)
            .order_by("pk")
            .select_for_update(skip_locked=True)
        )
        retry = []
        seen = {pk for pk, *_ in locked}
        missing = [pk for pk in pks if pk not in seen]
        if missing:
            # Locked by a writer (retry) or deleted meanwhile (nothing left to rotate).
            retry += list(model._base_manager.filter(pk__in=missing).values_list("pk", flat=True))
        rewrites = []
        for pk, *tokens in locked:
            if all(map(is_current, tokens)):
                counts.current += 1  # rewritten meanwhile, with the newest key
            else:
                new = tuple(token if is_current(token) else rotate(token) for token in tokens)
                rewrites.append((pk, tuple(tokens), new))
        written = replace_stored_tokens(model, names, rewrites)
        counts.rewritten += len(written)
        retry += [pk for pk, _old, _new in rewrites if pk not in written]
    return retry
