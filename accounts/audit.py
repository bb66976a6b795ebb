"""The audit log: one row per change, written inside the change's own transaction."""

from collections.abc import Iterable
from typing import Any, Protocol

from accounts.models import AuditEvent, Token, User, Workspace


class AuditedObject(Protocol):
    """What an event needs of the object it is about (an environment object, say)."""

    pk: Any
    object_type: str
    key: str
    deployment_id: int | None


def actor_label(actor: User | Token | None) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, User):
        return actor.email
    return f"token {getattr(actor, 'name', '')} ({getattr(actor, 'hint', '')}…)"


def audit_event(
    *,
    workspace: Workspace | int,
    actor: User | Token | None,
    action: str,
    obj: AuditedObject | None = None,
    object_type: str = "",
    object_key: str = "",
    deployment_id: int | None = None,
    fields: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """One event, not yet saved (for `audit_record`, or for many at once with bulk_create).
    Callers pass field names, never values; `detail` holds ids and counts only."""
    if obj is not None:
        object_type, object_key = obj.object_type, obj.key
        deployment_id = deployment_id or obj.deployment_id
    return AuditEvent(
        workspace_id=workspace if isinstance(workspace, int) else workspace.pk,
        actor=actor if isinstance(actor, User) else None,
        actor_label=actor_label(actor),
        action=action,
        object_type=object_type,
        object_key=object_key,
        environment_object_id=obj.pk if obj is not None else None,
        deployment_id=deployment_id,
        fields=sorted(fields),
        detail=detail or {},
    )


def audit_record(**event: Any) -> AuditEvent:
    """Record one event (the arguments of `audit_event`). Must be called inside the
    transaction of the change it records."""
    record = audit_event(**event)
    record.save(force_insert=True)
    return record
