"""The Deployment tokens page: create (shown once) and revoke the tokens of a Deployment's
secrets backend, and see what they looked up."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.models import DeploymentPermission, WorkspacePermission
from accounts.page_context import workspace_page
from accounts.permissions import has_deployment_perm, has_workspace_perm
from accounts.token_pages import revoke_posted, show_once, shown_once
from deployments import services
from deployments.selectors import deployment_for_user, deployment_lookup_counts
from envmanager.kernel.errors import EnvManagerError


def _page(deployment_id: int) -> str:
    return f"deployment-tokens:{deployment_id}"


@never_cache  # the page that shows a new token: no browser or proxy may keep it
@login_required
@require_GET
def deployment_tokens(request: AuthenticatedHttpRequest, deployment_id: int) -> HttpResponse:
    deployment = deployment_for_user(request.user, deployment_id)
    may_manage = has_deployment_perm(request.user, DeploymentPermission.CREATE_TOKENS, deployment)
    page = _page(deployment.pk)
    created = None
    shown = shown_once(request, page=page)
    if shown:
        base_url = request.build_absolute_uri("/").rstrip("/")
        created = {
            "token": shown,
            "base_url": base_url,
            "kwargs": json.dumps({"base_url": base_url, "token": shown}),
        }
    return render(
        request,
        "deployments/tokens.html",
        workspace_page(
            request,
            deployment.workspace,
            deployment=deployment,
            tokens=deployment.tokens.all(),
            may_manage=may_manage,
            created=created,
            # Which keys Airflow asks for is environment information: Authors and above.
            lookups=deployment_lookup_counts(deployment)
            if has_workspace_perm(
                request.user, WorkspacePermission.VIEW_ENV_OBJECTS, deployment.workspace
            )
            else None,
        ),
    )


@login_required
@require_POST
def deployment_token_create(request: AuthenticatedHttpRequest, deployment_id: int) -> HttpResponse:
    deployment = deployment_for_user(request.user, deployment_id)
    try:
        token, plain = services.deployment_token_create(
            user=request.user, deployment=deployment, name=request.POST.get("name", "")
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        show_once(request, plain, page=_page(deployment.pk))
        messages.success(request, f"Created {token.name}.")
    return redirect("deployment-tokens", deployment_id=deployment.pk)


@login_required
@require_POST
def deployment_token_revoke(request: AuthenticatedHttpRequest, deployment_id: int) -> HttpResponse:
    deployment = deployment_for_user(request.user, deployment_id)
    revoke_posted(
        request,
        deployment.tokens.all(),
        lambda token: services.deployment_token_revoke(user=request.user, token=token),
    )
    return redirect("deployment-tokens", deployment_id=deployment.pk)
