"""Import and export in Airflow's own file formats, for a Workspace or for what one Deployment
resolves. An import is previewed first (what will be created, overridden, updated or skipped)
and applied in one transaction; an export reveals secrets, so it is allowed to Operators and
Owners (or to Authors where the Workspace allows local development) and audited."""

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.audit import audit_record
from accounts.models import User, Workspace, WorkspacePermission
from accounts.permissions import has_workspace_perm
from deployments.models import Deployment
from envmanager import airflow_files, object_types
from envmanager.kernel.errors import InvalidInput, NotPermitted
from envmanager.models import EnvironmentObject
from envmanager.object_types import ObjectType, Scope
from envmanager.selectors import deployment_resolved_environment
from envmanager.services.environment_objects import (
    environment_object_create,
    environment_object_update,
    link_set_overrides,
)


@dataclass(frozen=True)
class ImportRow:
    CREATE = "CREATE"
    OVERRIDE = "OVERRIDE"
    UPDATE = "UPDATE"
    SKIP = "SKIP"

    key: str
    action: str
    reason: str = ""


def _parse(object_type: str, filename: str, content: bytes) -> list[airflow_files.ParsedObject]:
    try:
        return airflow_files.parse_file(object_type, filename, content)
    except airflow_files.FileFormatError as exc:
        raise InvalidInput(str(exc), {"file": str(exc)}) from None


def _cleaned(object_type: str, parsed: airflow_files.ParsedObject) -> dict[str, Any] | str:
    """The values ready to store, or the reason they cannot be."""
    if parsed.error:
        return parsed.error
    try:
        object_types.validate_key(object_type, parsed.key)
        return object_types.clean_values(object_type, parsed.values)
    except ValidationError as exc:
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())


def _imported_variable_is_secret(key: str, have: dict[str, Any] | None) -> bool:
    """A variables file says nothing about secrecy: an imported variable is secret where
    Airflow would hide its value (`variable_key_looks_secret`, as a migration decides), and an
    import never makes a secret variable plain."""
    return object_types.variable_key_looks_secret(key) or bool(have and have.get("is_secret"))


def _unchanged(have: dict[str, Any], values: dict[str, Any]) -> bool:
    """Whether the file holds what is stored already. A variable's secret flag is not in the
    file, so it does not count: an identical value is not a change."""
    return all(have.get(name) == value for name, value in values.items() if name != "is_secret")


def _plan(
    workspace: Workspace,
    deployment: Deployment | None,
    object_type: str,
    parsed: list[airflow_files.ParsedObject],
    overwrite: bool,
) -> list[tuple[ImportRow, dict[str, Any] | None, Any]]:
    """What importing each entry would do: (row, cleaned values, the object or link it hits)."""
    keys = [p.key for p in parsed]
    in_workspace = {
        o.key: o
        for o in EnvironmentObject.objects.filter(
            workspace=workspace, scope=Scope.WORKSPACE, object_type=object_type, key__in=keys
        )
    }
    resolved = (
        deployment_resolved_environment(deployment, object_type)[object_type]
        if (deployment)
        else {}
    )
    plan: list[tuple[ImportRow, dict[str, Any] | None, Any]] = []
    for entry in parsed:
        values = _cleaned(object_type, entry)
        if isinstance(values, str):
            plan.append((ImportRow(entry.key, ImportRow.SKIP, values), None, None))
            continue
        current: Any  # the Workspace object, or what the Deployment resolves
        if deployment is None:
            current = in_workspace.get(entry.key)
            have = current.values if current else None
        else:
            item = resolved.get(entry.key)
            current = item
            have = item.values if item else None
        if object_type == ObjectType.AIRFLOW_VARIABLE:
            # Raise the flag, never lower it: left out, the stored flag (read under the row's
            # lock when the change is applied) stays, whatever changed it since this read.
            if _imported_variable_is_secret(entry.key, have):
                values["is_secret"] = True
            elif have is not None:
                values.pop("is_secret", None)
        if have is None:
            plan.append((ImportRow(entry.key, ImportRow.CREATE), values, None))
        elif _unchanged(have, values):
            plan.append((ImportRow(entry.key, ImportRow.SKIP, "Unchanged."), None, None))
        elif deployment is not None and current.is_linked:
            overrides = {
                name: values[name]
                for name in object_types.SPECS[object_type].overridable
                if values.get(name) != current.environment_object.values.get(name)
            }
            plan.append(
                (
                    ImportRow(
                        entry.key,
                        ImportRow.OVERRIDE,
                        "A Deployment-level override on the Workspace object.",
                    ),
                    overrides,
                    current.link,
                )
            )
        elif overwrite:
            target = current if deployment is None else current.environment_object
            plan.append((ImportRow(entry.key, ImportRow.UPDATE), values, target))
        else:
            plan.append(
                (
                    ImportRow(
                        entry.key,
                        ImportRow.SKIP,
                        "Exists already with other values (import with overwrite to replace them).",
                    ),
                    None,
                    None,
                )
            )
    return plan


def airflow_file_preview(
    *,
    user: User,
    workspace: Workspace,
    object_type: str,
    filename: str,
    content: bytes,
    deployment: Deployment | None = None,
    overwrite: bool = False,
) -> list[ImportRow]:
    """What `airflow_file_import` would do with this file, changing nothing."""
    _require_import(user, workspace, deployment)
    parsed = _parse(object_type, filename, content)
    return [row for row, _, _ in _plan(workspace, deployment, object_type, parsed, overwrite)]


def airflow_file_import(
    *,
    user: User,
    workspace: Workspace,
    object_type: str,
    filename: str,
    content: bytes,
    deployment: Deployment | None = None,
    overwrite: bool = False,
) -> list[ImportRow]:
    """Import a file exported by Airflow (or by us). Into a Workspace: new keys become
    Workspace objects. Into a Deployment: a key it resolves from a linked Workspace object gets
    an override, other new keys become its own objects. Equal values are skipped; different
    ones only replaced with `overwrite`. A variable whose key Airflow treats as sensitive is
    stored as a secret, and a secret one stays secret. All of it in one transaction."""
    _require_import(user, workspace, deployment)
    parsed = _parse(object_type, filename, content)
    with transaction.atomic():
        plan = _plan(workspace, deployment, object_type, parsed, overwrite)
        for row, planned, target in plan:
            if planned is None:  # skipped
                continue
            values = planned
            if row.action == ImportRow.CREATE:
                environment_object_create(
                    user=user,
                    workspace=workspace,
                    object_type=object_type,
                    key=row.key,
                    values=values,
                    scope=Scope.DEPLOYMENT if deployment else Scope.WORKSPACE,
                    deployment=deployment,
                )
            elif row.action == ImportRow.OVERRIDE:
                stale = [name for name in target.overrides if name not in values]
                link_set_overrides(user=user, link=target, overrides=values, unset_fields=stale)
            elif row.action == ImportRow.UPDATE:
                environment_object_update(user=user, obj=target, values=values)
        audit_record(
            workspace=workspace,
            actor=user,
            action="environment.import",
            object_type=object_type,
            deployment_id=deployment.pk if deployment else None,
            detail={
                "file": filename[:200],
                "counts": {
                    a: sum(1 for r, _, _ in plan if r.action == a)
                    for a in ("CREATE", "OVERRIDE", "UPDATE", "SKIP")
                },
            },
        )
    return [row for row, _, _ in plan]


def _require_import(user: User, workspace: Workspace, deployment: Deployment | None) -> None:
    if deployment is not None and deployment.workspace_id != workspace.pk:
        raise InvalidInput("That Deployment is not in this Workspace.")
    if not has_workspace_perm(user, WorkspacePermission.CREATE_ENV_OBJECTS, workspace):
        raise NotPermitted("Your role in this Workspace does not allow you to import objects.")


def may_export_secrets(user: User, workspace: Workspace) -> bool:
    """Operators and Owners; Authors too where the Workspace allows local development."""
    if has_workspace_perm(user, WorkspacePermission.UPDATE_ENV_OBJECTS, workspace):
        return True
    return workspace.local_development_secrets and has_workspace_perm(
        user, WorkspacePermission.USE_ENV_OBJECTS, workspace
    )


def airflow_file_export(
    *,
    user: User,
    workspace: Workspace,
    object_type: str,
    file_format: str,
    deployment: Deployment | None = None,
    serialization: str = "uri",
) -> str:
    """A Workspace's objects, or a Deployment's resolved environment, in Airflow's export
    format, secrets included (so the reveal is audited)."""
    if not may_export_secrets(user, workspace):
        raise NotPermitted(
            "Exporting reveals secrets: Operators and Owners only (or Authors "
            "where the Workspace allows local development)."
        )
    if deployment is not None and deployment.workspace_id != workspace.pk:
        raise InvalidInput("That Deployment is not in this Workspace.")
    if object_type not in (ObjectType.CONNECTION, ObjectType.AIRFLOW_VARIABLE):
        raise InvalidInput("Only connections and Airflow variables have Airflow file formats.")
    if deployment is None:
        objects = {
            o.key: o.values
            for o in EnvironmentObject.objects.filter(
                workspace=workspace, scope=Scope.WORKSPACE, object_type=object_type
            )
        }
    else:
        resolved = deployment_resolved_environment(deployment, object_type)[object_type]
        objects = {key: item.values for key, item in resolved.items()}
    try:
        if object_type == ObjectType.CONNECTION:
            text = airflow_files.render_connections(objects, file_format, serialization)
        else:
            if file_format != "json":
                raise airflow_files.FileFormatError("Variables are exported as JSON.")
            text = airflow_files.render_variables(objects)
    except airflow_files.FileFormatError as exc:
        raise InvalidInput(str(exc), {"format": str(exc)}) from None
    with transaction.atomic():
        audit_record(
            workspace=workspace,
            actor=user,
            action="secrets.reveal",
            object_type=object_type,
            deployment_id=deployment.pk if deployment else None,
            detail={"via": "export", "format": file_format, "count": len(objects)},
        )
    return text
