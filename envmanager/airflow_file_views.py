"""Import and export in Airflow's file formats, in the browser: upload → preview of what will
be created, overridden, updated or skipped → apply; and downloads of exports."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header

from accounts.http import AuthenticatedHttpRequest
from accounts.models import Workspace
from accounts.page_context import workspace_page
from accounts.selectors import workspace_for_user
from deployments.models import Deployment
from deployments.selectors import deployment_for_user
from envmanager.kernel.encryption import SealBroken, seal, unseal
from envmanager.kernel.errors import EnvManagerError
from envmanager.object_types import AIRFLOW_SLUGS, EXPORT_FORMATS
from envmanager.services.airflow_files import (
    airflow_file_export,
    airflow_file_import,
    airflow_file_preview,
    may_export_secrets,
)

# How long a preview may be applied: the page holds the uploaded file, sealed, for that long.
PREVIEW_MAX_AGE = 3600


def _preview_purpose(
    request: AuthenticatedHttpRequest,
    workspace: Workspace,
    deployment: Deployment | None,
    type_slug: str,
    filename: str,
) -> str:
    # Sealed for this user, target, type and file name: a preview's token applies only what
    # that user previewed there, and to nothing else.
    target = deployment.pk if deployment else ""
    return f"airflow-file-preview:{request.user.pk}:{workspace.pk}:{target}:{type_slug}:{filename}"


def _target(
    request: AuthenticatedHttpRequest, workspace_id: int
) -> tuple[Workspace, Deployment | None]:
    workspace = workspace_for_user(request.user, workspace_id)
    deployment = None
    deployment_id = request.GET.get("deployment") or request.POST.get("deployment")
    if deployment_id:
        deployment = deployment_for_user(request.user, deployment_id, workspace)
    return workspace, deployment


def airflow_file_response(
    text: str,
    *,
    workspace: Workspace,
    deployment: Deployment | None,
    type_slug: str,
    file_format: str,
) -> HttpResponse:
    """An export as a download that no cache keeps: it holds secrets."""
    name = f"{deployment.name if deployment else workspace.name}-{type_slug}.{file_format}"
    name = "".join(c if c.isprintable() else "_" for c in name)
    response = HttpResponse(text, content_type="application/octet-stream")
    # An attachment always gets a header; the stubs' None is for inline without a filename.
    response["Content-Disposition"] = content_disposition_header(True, name)  # type: ignore[assignment]
    response["Cache-Control"] = "no-store"
    return response


@login_required
def airflow_files(request: AuthenticatedHttpRequest, workspace_id: int) -> HttpResponse:
    workspace, deployment = _target(request, workspace_id)
    context = workspace_page(
        request,
        workspace,
        deployment=deployment,
        deployments=workspace.deployments.all(),
        types=AIRFLOW_SLUGS,
        export_formats=EXPORT_FORMATS,
        may_export=may_export_secrets(request.user, workspace),
    )
    # Importing creates objects (Operators and Owners); others see Preview disabled, with why.
    context["import_refused"] = (
        ""
        if context["can"]["create_objects"]
        else "Importing creates environment objects: Operators and Owners only."
    )
    if request.method == "POST":
        type_slug = request.POST.get("type", "")
        if type_slug not in AIRFLOW_SLUGS:
            raise Http404
        overwrite = request.POST.get("overwrite") == "on"
        try:
            if request.POST.get("action") == "apply":
                filename = request.POST.get("filename", "")
                content = unseal(
                    request.POST.get("content", ""),
                    purpose=_preview_purpose(request, workspace, deployment, type_slug, filename),
                    max_age=PREVIEW_MAX_AGE,
                )
                rows = airflow_file_import(
                    user=request.user,
                    workspace=workspace,
                    deployment=deployment,
                    object_type=AIRFLOW_SLUGS[type_slug],
                    filename=filename,
                    content=content,
                    overwrite=overwrite,
                )
                done = sum(1 for r in rows if r.action != "SKIP")
                messages.success(
                    request, f"Imported {filename}: {done} changed, {len(rows) - done} skipped."
                )
                return redirect(request.get_full_path())
            upload = request.FILES.get("file")
            if upload is None:
                raise EnvManagerError("Choose a file to import.")
            content = upload.read()
            filename = upload.name or ""  # always set on an upload; the stubs allow None
            rows = airflow_file_preview(
                user=request.user,
                workspace=workspace,
                deployment=deployment,
                object_type=AIRFLOW_SLUGS[type_slug],
                filename=filename,
                content=content,
                overwrite=overwrite,
            )
            context.update(
                preview=rows,
                filename=filename,
                type_slug=type_slug,
                overwrite=overwrite,
                # The file holds secrets: the browser only ever holds it encrypted.
                content=seal(
                    content,
                    purpose=_preview_purpose(request, workspace, deployment, type_slug, filename),
                ),
            )
        except SealBroken:
            messages.error(
                request,
                "The previewed file was changed in the page or the preview is older than an "
                "hour, so nothing was imported. Upload the file again.",
            )
        except EnvManagerError as exc:
            messages.error(request, exc.message)
    return render(request, "envmanager/airflow_files.html", context)


@login_required
def airflow_file_download(
    request: AuthenticatedHttpRequest, workspace_id: int, type_slug: str, file_format: str
) -> HttpResponse:
    workspace, deployment = _target(request, workspace_id)
    if type_slug not in AIRFLOW_SLUGS:
        raise Http404
    try:
        text = airflow_file_export(
            user=request.user,
            workspace=workspace,
            deployment=deployment,
            object_type=AIRFLOW_SLUGS[type_slug],
            file_format=file_format,
            serialization=request.GET.get("serialization", "uri"),
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
        return redirect("airflow-files", workspace_id=workspace.pk)
    return airflow_file_response(
        text,
        workspace=workspace,
        deployment=deployment,
        type_slug=type_slug,
        file_format=file_format,
    )
