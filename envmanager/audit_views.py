"""The audit log (Owners) and the version history of environment objects (Authors read,
Operators and Owners restore), in the browser and as CSV."""

import csv
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.models import AuditEvent, Workspace, WorkspacePermission
from accounts.page_context import workspace_page
from accounts.permissions import has_workspace_perm
from accounts.selectors import workspace_for_user
from envmanager.kernel.errors import EnvManagerError, NotPermitted
from envmanager.models import EnvironmentObject, MigrationRun, ObjectVersion
from envmanager.object_types import ObjectType, Scope, type_name
from envmanager.selectors import (
    AUDIT_FILTERS,
    audit_events,
    deleted_object_versions,
    object_versions,
)
from envmanager.services.versions import environment_object_restore_version, version_diff

CSV_COLUMNS = [
    "created_at",
    "actor_label",
    "action",
    "object_type",
    "object_key",
    "environment_object_id",
    "deployment_id",
    "fields",
    "detail",
]


def audit_filters(params: Mapping[str, str]) -> dict[str, str | datetime]:
    """Filters from query parameters; a malformed date or Deployment id, or a NUL character,
    is a clear error, not a 500."""
    # Text, until `since` and `until` below become date-times.
    filters: dict[str, Any] = {name: params.get(name, "").strip() for name in AUDIT_FILTERS}
    if any("\x00" in value for value in filters.values()):
        # No stored text holds one, and PostgreSQL refuses it in a query.
        raise ValidationError("A filter cannot contain a NUL character.")
    deployment_id = filters["deployment_id"]
    if deployment_id and not (deployment_id.isascii() and deployment_id.isdigit()):
        raise ValidationError("The Deployment filter must be a Deployment id (a whole number).")
    for name in ("since", "until"):
        raw = params.get(name, "").strip()
        if raw:
            try:
                day = parse_date(raw)
                value = parse_datetime(raw + "T00:00:00+00:00" if day else raw)
            except ValueError:
                value = None
            if value is None:
                raise ValidationError(f"{name} must be a date or date-time (ISO 8601).")
            if day and name == "until":
                value += timedelta(days=1)  # a date alone means the whole of that day
            filters[name] = value
    return filters


# A spreadsheet reads a cell beginning with one of these as a formula (OWASP "CSV injection"):
# such a cell is written with a ' first, which the spreadsheet shows as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> str:
    text = str(cell)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """The audit log as CSV rows, every cell safe to open in a spreadsheet (an email, a
    token's name or an object's key may begin with `=`, `+`, `-` or `@`)."""

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=1000):
        yield writer.writerow(
            spreadsheet_safe(cell)
            for cell in [
                event.created_at.isoformat(),
                event.actor_label,
                event.action,
                event.object_type,
                event.object_key,
                event.environment_object_id or "",
                event.deployment_id or "",
                " ".join(event.fields),
                json.dumps(event.detail, sort_keys=True),
            ]
        )


def audit_csv_response(events: QuerySet[AuditEvent], workspace: Workspace) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_rows(events), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="audit-workspace-{workspace.pk}.csv"'
    return response


# How the audit log page names each action; the code stays in the filter, the CSV and the API.
ACTION_LABELS = {
    "workspace.update": "Workspace settings changed",
    "membership.set": "Member role set",
    "membership.remove": "Member removed",
    "api_token.create": "API token created",
    "api_token.revoke": "API token revoked",
    "deployment.create": "Deployment created",
    "deployment.update": "Deployment updated",
    "deployment_token.create": "Deployment token created",
    "deployment_token.revoke": "Deployment token revoked",
    "encryption_keys.rotate": "Encryption keys rotated",
    "environment.import": "Airflow file imported",
    "secrets.reveal": "Secrets fetched",
    "environment_object.create": "Object created",
    "environment_object.update": "Object edited",
    "environment_object.delete": "Object deleted",
    "environment_object.promote": "Promoted to the Workspace",
    "environment_object.restore": "Object restored",
    "environment_object.purge": "Deleted object purged",
    "link.create": "Linked",
    "link.delete": "Unlinked",
    "link.override": "Override saved",
    "link.exclude": "Excluded from the auto-link",
    "migration.start": "Migration started",
    "migration.copied": "Migration copied and verified",
    "migration.finished": "Migration finished",
    "migration.failed": "Migration failed",
    "migration.undo": "Migration undo started",
    "migration.undone": "Migration undone",
}


def action_label(action: str) -> str:
    """ "environment_object.update" → "Object edited"; an action without a label yet in words."""
    return ACTION_LABELS.get(action) or action.replace("_", " ").replace(".", ": ").capitalize()


def audit_rows(events: list, workspace: Workspace, can: dict[str, bool]) -> list[dict]:
    """One page of events as the page shows them: the action in words, and links to the
    object, the Deployment and the migration run where they still exist and the viewer may
    open them (three queries, whatever the page holds)."""
    object_ids = {e.environment_object_id for e in events if e.environment_object_id}
    objects = (
        EnvironmentObject.objects.filter(workspace=workspace, pk__in=object_ids).in_bulk()
        if can["view_objects"] and object_ids
        else {}
    )
    deployments = workspace.deployments.in_bulk(
        {e.deployment_id for e in events if e.deployment_id}
    )
    run_ids = {e.detail.get("runId") for e in events if isinstance(e.detail, dict)}
    run_ids = {r for r in run_ids if isinstance(r, int)}
    runs = (
        set(
            MigrationRun.objects.filter(workspace=workspace, pk__in=run_ids).values_list(
                "pk", flat=True
            )
        )
        if can["migrate"] and run_ids
        else set()
    )
    rows = []
    for event in events:
        obj = objects.get(event.environment_object_id)
        object_url = ""
        if obj is not None and obj.scope == Scope.WORKSPACE:
            object_url = reverse("environment-object", args=[workspace.pk, obj.pk])
        elif obj is not None:
            object_url = reverse("deployment-object", args=[obj.deployment_id, obj.pk])
        deployment = deployments.get(event.deployment_id)
        deployment_url = ""
        if deployment is not None:
            name = "deployment-environment" if can["view_objects"] else "deployment-settings"
            deployment_url = reverse(name, args=[deployment.pk])
        run_id = event.detail.get("runId") if isinstance(event.detail, dict) else None
        rows.append(
            {
                "event": event,
                "action": action_label(event.action),
                "type": (
                    ObjectType(event.object_type).label
                    if event.object_type in ObjectType.values
                    else event.object_type
                ),
                "object_url": object_url,
                "deployment": deployment,
                "deployment_url": deployment_url,
                "run_id": run_id if isinstance(run_id, int) else None,
                "run_url": reverse("migration-run", args=[run_id]) if run_id in runs else "",
            }
        )
    return rows


@login_required
def audit_log(request: AuthenticatedHttpRequest, workspace_id: int) -> HttpResponseBase:
    workspace = workspace_for_user(request.user, workspace_id)
    try:
        filters = audit_filters(request.GET)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        filters = {name: "" for name in AUDIT_FILTERS}
    try:
        events = audit_events(request.user, workspace, filters)
    except NotPermitted as exc:
        return render(request, "envmanager/forbidden.html", {"message": exc.message}, status=403)
    if request.GET.get("format") == "csv":
        return audit_csv_response(events, workspace)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = workspace_page(
        request, workspace, page=page, filters=filters, query=query.urlencode()
    )
    context["rows"] = audit_rows(list(page), workspace, context["can"])
    context["action_labels"] = sorted(ACTION_LABELS.items())
    return render(
        request,
        "envmanager/audit_log.html",
        context,
    )


@login_required
def object_history(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int
) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    if not has_workspace_perm(request.user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace):
        raise Http404
    versions = object_versions(object_id, workspace)
    current = workspace.env_objects.filter(pk=object_id).first()
    return render(
        request,
        "envmanager/object_history.html",
        workspace_page(
            request,
            workspace,
            versions=versions,
            object_id=object_id,
            current=current,
            may_restore=has_workspace_perm(
                request.user, WorkspacePermission.UPDATE_ENV_OBJECTS, workspace
            ),
        ),
    )


@login_required
def deleted_objects(request: AuthenticatedHttpRequest, workspace_id: int) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    if not has_workspace_perm(request.user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace):
        raise Http404
    return render(
        request,
        "envmanager/deleted_objects.html",
        workspace_page(
            request,
            workspace,
            versions=deleted_object_versions(workspace),
            may_restore=has_workspace_perm(
                request.user, WorkspacePermission.UPDATE_ENV_OBJECTS, workspace
            ),
        ),
    )


def _version_for(
    request: AuthenticatedHttpRequest, workspace_id: int, version_id: int
) -> tuple[Workspace, ObjectVersion]:
    workspace = workspace_for_user(request.user, workspace_id)
    if not has_workspace_perm(request.user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace):
        raise Http404
    version = ObjectVersion.objects.filter(workspace=workspace, pk=version_id).first()
    if version is None:
        raise Http404
    return workspace, version


def _version_page(
    request: AuthenticatedHttpRequest,
    workspace: Workspace,
    version: ObjectVersion,
    *,
    confirming: bool = False,
) -> HttpResponse:
    return render(
        request,
        "envmanager/object_version.html",
        workspace_page(
            request,
            workspace,
            diff=version_diff(version=version),
            version=version,
            confirming=confirming,
            may_restore=has_workspace_perm(
                request.user, WorkspacePermission.UPDATE_ENV_OBJECTS, workspace
            ),
        ),
    )


@login_required
def version_detail(
    request: AuthenticatedHttpRequest, workspace_id: int, version_id: int
) -> HttpResponse:
    """A version against the object as it is now, and the confirmation of its restore."""
    workspace, version = _version_for(request, workspace_id, version_id)
    return _version_page(request, workspace, version)


@login_required
@require_POST
def version_restore(
    request: AuthenticatedHttpRequest, workspace_id: int, version_id: int
) -> HttpResponse:
    """Restore, once the user has seen what it changes: a POST without `confirm` (a form
    posted from elsewhere) only shows that, and changes nothing."""
    workspace, version = _version_for(request, workspace_id, version_id)
    if request.POST.get("confirm") != "restore":
        return _version_page(request, workspace, version, confirming=True)
    try:
        obj = environment_object_restore_version(user=request.user, version=version)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Restored {type_name(obj.object_type)} {obj.key}.")
    return redirect(
        "object-history", workspace_id=workspace.pk, object_id=version.environment_object_id
    )
