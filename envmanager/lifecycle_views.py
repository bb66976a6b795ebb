"""The pages that rename and delete: a Deployment's deletion (from its settings page, confirmed by
typing its name) and an IDE project's edit and deletion (from the Workspace page). Each posts,
calls one service, and says what happened."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.selectors import workspace_for_user
from deployments import services as deployment_services
from deployments.selectors import deployment_for_user, ide_project_for_user
from envmanager.forms import IdeProjectForm
from envmanager.kernel.errors import EnvManagerError


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@login_required
@require_POST
def deployment_delete(request: AuthenticatedHttpRequest, deployment_id: int) -> HttpResponse:
    deployment = deployment_for_user(request.user, deployment_id)
    try:
        deleted = deployment_services.deployment_delete(
            user=request.user,
            deployment=deployment,
            confirm_name=request.POST.get("confirm_name", ""),
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
        return redirect("deployment-settings", deployment_id=deployment.pk)
    messages.success(
        request,
        f"Deleted Deployment {deleted['name']}: {_count(deleted['objectsDeleted'], 'own object')}"
        f", {_count(deleted['linksRemoved'], 'link')} to Workspace objects "
        f"({_count(deleted['overridesRemoved'], 'override')}), "
        f"{_count(deleted['tokensRevoked'], 'token')} revoked and "
        f"{_count(deleted['migrationRunsDeleted'], 'migration run')} deleted.",
    )
    return redirect("workspace", workspace_id=deployment.workspace_id)


@login_required
@require_POST
def ide_project_update(
    request: AuthenticatedHttpRequest, workspace_id: int, project_id: int
) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    project = ide_project_for_user(request.user, project_id, workspace)
    form = IdeProjectForm(request.POST, prefix=f"project-{project.pk}")
    if not form.is_valid():
        messages.error(
            request,
            " ".join(str(e) for errors in form.errors.values() for e in errors),
        )
        return redirect("workspace", workspace_id=workspace.pk)
    try:
        project = deployment_services.ide_project_update(
            user=request.user,
            project=project,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Saved IDE project {project.name}.")
    return redirect("workspace", workspace_id=workspace.pk)


@login_required
@require_POST
def ide_project_delete(
    request: AuthenticatedHttpRequest, workspace_id: int, project_id: int
) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    project = ide_project_for_user(request.user, project_id, workspace)
    try:
        deleted = deployment_services.ide_project_delete(user=request.user, project=project)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Deleted IDE project {deleted['name']} and its "
            f"{_count(deleted['linksRemoved'], 'link')}; the Workspace objects stay.",
        )
    return redirect("workspace", workspace_id=workspace.pk)
