"""Pages of "Migrate from Airflow": the selection page, the run's progress and results."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.page_context import workspace_page
from deployments.selectors import deployment_for_user
from envmanager.kernel.errors import EnvManagerError
from envmanager.models import MigrationRun
from envmanager.object_types import AIRFLOW_SLUGS, SPECS, ObjectType
from envmanager.selectors import migration_run_for_user, migration_run_progress
from envmanager.services import migration


def _object_type(slug: str) -> str:
    if slug not in AIRFLOW_SLUGS:
        raise Http404("Only connections and variables are migrated from Airflow.")
    return AIRFLOW_SLUGS[slug]


@login_required
def migration_select(
    request: AuthenticatedHttpRequest, deployment_id: int, type_slug: str
) -> HttpResponse:

    deployment = deployment_for_user(request.user, deployment_id)
    object_type = _object_type(type_slug)
    context = workspace_page(
        request,
        deployment.workspace,
        deployment=deployment,
        object_type=object_type,
        type_label=ObjectType(object_type).label,
        type_slug=type_slug,
        environment_tab=SPECS[object_type].slug,
        runs=deployment.migration_runs.all()[:10],
    )
    context["may_migrate"] = context["can"]["migrate"]
    try:
        context["candidates"] = migration.migration_candidates(
            user=request.user, deployment=deployment, object_type=object_type
        )
        context["removable"] = [c for c in context["candidates"] if c.removable]
    except EnvManagerError as exc:
        context["error"] = str(exc)
    return render(request, "envmanager/migration_select.html", context)


@login_required
@require_POST
def migration_start(
    request: AuthenticatedHttpRequest, deployment_id: int, type_slug: str
) -> HttpResponse:
    deployment = deployment_for_user(request.user, deployment_id)
    object_type = _object_type(type_slug)
    try:
        run = migration.migration_start(
            user=request.user,
            deployment=deployment,
            object_type=object_type,
            object_keys=request.POST.getlist("keys"),
            mode=request.POST.get("mode", MigrationRun.Mode.MOVE),
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
        return redirect("migration-select", deployment_id=deployment.pk, type_slug=type_slug)
    return redirect("migration-run", run_id=run.pk)


@login_required
def migration_run(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = migration_run_for_user(request.user, run_id)
    migration.migration_run_resume_due(run=run)
    progress = migration_run_progress(run)
    total = progress["total"] or 1
    done = sum(
        progress.get(s, 0)
        for s in (
            "DELETED",
            "KEPT_CHANGED",
            "KEPT_UNRESOLVED",
            "CONFLICT",
            "FAILED",
            "UNDONE",
            "LEFT_MIGRATED",
        )
    )
    undoable = run.status in (
        MigrationRun.Status.SUCCEEDED,
        MigrationRun.Status.PARTIAL,
        MigrationRun.Status.FAILED,
    )
    changed_since = (
        [p for p in migration.migration_undo_plan(run=run) if p.later_work] if undoable else []
    )
    return render(
        request,
        "envmanager/migration_run.html",
        workspace_page(
            request,
            run.workspace,
            run=run,
            deployment=run.deployment,
            progress=progress,
            percent=int(100 * (done + 0.5 * progress.get("VERIFIED", 0)) / total),
            items=run.items.all(),
            undoable=undoable,
            changed_since=changed_since,
            type_slug=SPECS[run.object_type].airflow_slug,
            environment_tab=SPECS[run.object_type].slug,
        ),
    )


@login_required
@require_POST
def migration_run_action(
    request: AuthenticatedHttpRequest, run_id: int, action: str
) -> HttpResponse:
    run = migration_run_for_user(request.user, run_id)
    services: dict[str, Callable[..., MigrationRun]] = {
        "undo": migration.migration_undo,
        "retry": migration.migration_retry,
    }
    service = services.get(action)
    if service is None:
        raise Http404
    kwargs = {}
    if action == "undo":
        # "choice-KEY": "undo" or "keep", for each object changed since the run.
        kwargs["choices"] = {
            name.removeprefix("choice-"): value
            for name, value in request.POST.items()
            if name.startswith("choice-")
        }
    try:
        service(user=request.user, run=run, **kwargs)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    return redirect("migration-run", run_id=run.pk)
