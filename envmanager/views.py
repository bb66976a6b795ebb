"""The pages: Workspaces, the Workspace Environment, a Deployment's Environment tab, and the
forms around them. Each view fetches the tenant-scoped object first (another Workspace's id is
a 404), checks each permission once per request, and calls a service."""

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import services as account_services
from accounts.http import AuthenticatedHttpRequest
from accounts.models import DeploymentPermission, Role, Workspace
from accounts.page_context import workspace_page
from accounts.permissions import has_deployment_perm
from accounts.selectors import workspace_for_user, workspace_member, workspace_members
from deployments import services as deployment_services
from deployments.models import Deployment
from deployments.selectors import deployment_for_user
from envmanager import object_types, services
from envmanager.forms import (
    CONNECTION_TYPES,
    DeploymentForm,
    EnvironmentObjectForm,
    IdeProjectForm,
    OverrideForm,
    WorkspaceForm,
)
from envmanager.kernel.errors import EnvManagerError, NotPermitted
from envmanager.metrics_config import metrics_exports_changed_at
from envmanager.models import EnvironmentObject, Link
from envmanager.object_types import PAGE_SLUGS, SPECS, TYPE_LABELS, ObjectType, Scope
from envmanager.selectors import (
    ResolvedObject,
    deployment_deletion,
    environment_object_for_user,
)

PAGE_SIZE = 50


def _id_from(value: str | None) -> int | None:
    """A posted id as a number, or None for anything else ("abc", "1.5", "²"): never a 500."""
    if value and value.isascii() and value.isdigit():
        return int(value)
    return None


def _type_from(request: AuthenticatedHttpRequest) -> str:
    slug = request.GET.get("type") or request.POST.get("type") or "connections"
    if slug not in PAGE_SLUGS:
        raise Http404("Unknown object type.")
    return PAGE_SLUGS[slug]


def _tabs(object_type: str) -> list[dict]:
    return [
        {"slug": s, "label": TYPE_LABELS[t], "active": t == object_type}
        for s, t in PAGE_SLUGS.items()
    ]


def _apply_errors(
    request: AuthenticatedHttpRequest, form: forms.Form, error: EnvManagerError
) -> None:
    """A service's field errors next to the form's fields; the rest at the top. A refusal goes
    to the page's messages too: a user who may not act may not see the form either."""
    if isinstance(error, NotPermitted):
        messages.error(request, error.message)
    placed, unplaced = False, []
    for name, message in error.field_errors.items():
        field = name.removeprefix("overrides.")
        if field.startswith("extra."):
            field = "extra_keys"
        target = {"objectKey": "key", "scopeEntityId": None}.get(field, field)
        if target in form.fields:
            form.add_error(target, message)
            placed = True
        else:
            unplaced.append((name, message))
    if not placed:
        text = error.message
        for name, message in unplaced:
            # The message names fields as the API does ("value: …"); a page says it in words.
            text = text.replace(f"{name}: {message}", message)
        form.add_error(None, text)


def summary(object_type: str, values: dict) -> str:
    """One line that tells objects apart in a list; never a secret."""
    hidden = set(object_types.secret_fields(object_type, values))
    if object_type == ObjectType.CONNECTION:
        parts = [values.get("conn_type", ""), values.get("host", "")]
        if values.get("login"):
            parts.append(f"as {values['login']}")
        return " ".join(p for p in parts if p)
    if object_type == ObjectType.METRICS_EXPORT:
        return values.get("endpoint", "")
    if "value" in hidden:
        return "•••••••• (secret)"
    value = values.get("value", "")
    return value if len(value) <= 80 else value[:77] + "…"


def readonly_values(object_type: str, values: dict, form: EnvironmentObjectForm) -> list[dict]:
    """Every field of an object, for a role that may read it but not change it: secrets masked
    (only whether one is set), unset and empty told apart. Labels are the edit form's."""
    hidden = set(object_types.secret_fields(object_type, values))
    rows = []
    for name in SPECS[object_type].fields:
        value = values.get(name)
        field = form.fields.get(name)
        label = field.label if field is not None and field.label else name.replace("_", " ")
        row = {"name": name, "label": label, "text": "", "note": "", "block": False}
        if name == "is_secret":
            row.update(label="Secret", text="Yes" if value else "No")
        elif value is None or value == {}:
            row["note"] = "not set"
        elif name in hidden:
            row.update(text="••••••••", note="secret, set")
        elif value == "":
            row["note"] = "empty"
        elif isinstance(value, dict | list):
            row.update(text=json.dumps(value, indent=2, sort_keys=True), block=True)
        else:
            row.update(text=str(value), block="\n" in str(value))
        rows.append(row)
    return rows


def _list_context(
    request: AuthenticatedHttpRequest,
    object_type: str,
    page: Page[EnvironmentObject] | Page[ResolvedObject],
    rows: list[dict[str, Any]],
    form: EnvironmentObjectForm,
    query: str,
) -> dict:
    """What both object lists (Workspace Environment, Deployment tab) render."""
    return {
        "object_type": object_type,
        "type_label": TYPE_LABELS[object_type],
        "tabs": _tabs(object_type),
        "slug": SPECS[object_type].slug,
        "page": page,
        "rows": rows,
        "form": form,
        "query": query,
        "connection_types": CONNECTION_TYPES,
        "open_create": request.method == "POST",
    }


# Workspaces


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    workspaces = list(Workspace.objects.visible_to(request.user))
    form = WorkspaceForm()
    if request.method == "POST":
        form = WorkspaceForm(request.POST)
        if form.is_valid():
            try:
                workspace = account_services.workspace_create(
                    user=request.user, name=form.cleaned_data["name"]
                )
            except EnvManagerError as exc:
                _apply_errors(request, form, exc)
            else:
                return redirect("workspace", workspace_id=workspace.pk)
    if len(workspaces) == 1 and request.method == "GET" and not request.GET.get("all"):
        return redirect("workspace", workspace_id=workspaces[0].pk)
    return render(request, "envmanager/home.html", {"workspaces": workspaces, "form": form})


def _workspace_page(
    request: AuthenticatedHttpRequest,
    workspace: Workspace,
    *,
    deployment_form: DeploymentForm | None = None,
    project_form: IdeProjectForm | None = None,
) -> HttpResponse:
    """The Workspace overview: its Deployments and IDE projects, members and settings (with a
    form that failed to validate, bound, so what was typed stays)."""
    context = workspace_page(request, workspace)
    members = list(workspace_members(workspace))
    owners = [m.user_id for m in members if m.role == Role.OWNER]
    context.update(
        # A new member is a Member unless the Owner chooses more.
        default_role=Role.MEMBER,
        deployments=workspace.deployments.all(),
        ide_projects=workspace.ide_projects.all(),
        members=members,
        # The Remove button of the last Owner is disabled (membership_remove refuses it).
        sole_owner_id=owners[0] if len(owners) == 1 else None,
        roles=Role.choices,
        deployment_form=deployment_form
        or DeploymentForm(
            prefix="deployment", may_set_metadata_db=context["can"]["set_metadata_db"]
        ),
        project_form=project_form or IdeProjectForm(prefix="project"),
    )
    return render(request, "envmanager/workspace.html", context)


def _back_to(workspace: Workspace) -> HttpResponse:
    return redirect("workspace", workspace_id=workspace.pk)


@login_required
@require_GET
def workspace_detail(request: AuthenticatedHttpRequest, workspace_id: int) -> HttpResponse:
    """The Workspace overview; each of its forms posts to a view of its own below."""
    return _workspace_page(request, workspace_for_user(request.user, workspace_id))


@login_required
@require_POST
def workspace_deployment_create(
    request: AuthenticatedHttpRequest, workspace_id: int
) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    may_set_db = workspace_page(request, workspace)["can"]["set_metadata_db"]
    form = DeploymentForm(request.POST, prefix="deployment", may_set_metadata_db=may_set_db)
    if form.is_valid():
        try:
            deployment = deployment_services.deployment_create(
                user=request.user, workspace=workspace, **form.changes()
            )
        except EnvManagerError as exc:
            _apply_errors(request, form, exc)
        else:
            messages.success(request, f"Created Deployment {deployment.name}.")
            return _back_to(workspace)
    return _workspace_page(request, workspace, deployment_form=form)


@login_required
@require_POST
def workspace_ide_project_create(
    request: AuthenticatedHttpRequest, workspace_id: int
) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    form = IdeProjectForm(request.POST, prefix="project")
    if form.is_valid():
        try:
            project = deployment_services.ide_project_create(
                user=request.user,
                workspace=workspace,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except EnvManagerError as exc:
            _apply_errors(request, form, exc)
        else:
            messages.success(request, f"Created IDE project {project.name}.")
            return _back_to(workspace)
    return _workspace_page(request, workspace, project_form=form)


def _member_set(
    request: AuthenticatedHttpRequest, workspace: Workspace, email: str
) -> HttpResponse:
    try:
        membership = account_services.membership_set(
            actor=request.user,
            workspace=workspace,
            email=email,
            role=request.POST.get("role", ""),
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"{membership.user.email} is now {membership.get_role_display()} in {workspace.name}.",
        )
    return _back_to(workspace)


@login_required
@require_POST
def workspace_member_add(request: AuthenticatedHttpRequest, workspace_id: int) -> HttpResponse:
    """Add a member by email (or set the role of one who is already a member)."""
    workspace = workspace_for_user(request.user, workspace_id)
    return _member_set(request, workspace, request.POST.get("email", ""))


@login_required
@require_POST
def workspace_member_role(
    request: AuthenticatedHttpRequest, workspace_id: int, user_id: int
) -> HttpResponse:
    """Change one listed member's role, from their row."""
    workspace = workspace_for_user(request.user, workspace_id)
    return _member_set(request, workspace, workspace_member(workspace, user_id).user.email)


@login_required
@require_POST
def workspace_member_remove(
    request: AuthenticatedHttpRequest, workspace_id: int, user_id: int
) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    membership = workspace_member(workspace, user_id)
    try:
        account_services.membership_remove(
            actor=request.user, workspace=workspace, user=membership.user
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
        return _back_to(workspace)
    messages.success(request, f"Removed {membership.user.email} from {workspace.name}.")
    if membership.user_id == request.user.pk:
        return redirect("home")
    return _back_to(workspace)


@login_required
@require_POST
def workspace_settings(request: AuthenticatedHttpRequest, workspace_id: int) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    try:
        account_services.workspace_update(
            user=request.user,
            workspace=workspace,
            local_development_secrets=request.POST.get("local_development_secrets") == "on",
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Saved.")
    return _back_to(workspace)


def _update(
    request: AuthenticatedHttpRequest, obj: EnvironmentObject, form: EnvironmentObjectForm
) -> None:
    """Save an edit form: only what the user changed on it, refused where the same field was
    changed by someone else since the page was opened."""
    key, values, auto_link, seen = form.changes()
    services.environment_object_update(
        user=request.user,
        obj=obj,
        key=key,
        values=values,
        auto_link_deployments=auto_link,
        seen=seen,
    )


# Workspace Environment


@login_required
def workspace_environment(request: AuthenticatedHttpRequest, workspace_id: int) -> HttpResponse:
    workspace = workspace_for_user(request.user, workspace_id)
    context = workspace_page(request, workspace)
    if not context["can"]["view_objects"]:
        return render(
            request,
            "envmanager/forbidden.html",
            {
                "message": "Members see the Workspace and its Deployments, not its environment "
                "objects. Ask an Owner for the Author role."
            },
            status=403,
        )
    object_type = _type_from(request)
    form = EnvironmentObjectForm(object_type=object_type, prefix="new")
    if request.method == "POST":
        form = EnvironmentObjectForm(request.POST, object_type=object_type, prefix="new")
        if form.is_valid():
            try:
                obj = services.environment_object_create(
                    user=request.user,
                    workspace=workspace,
                    object_type=object_type,
                    key=form.cleaned_data["key"],
                    values=form.values(),
                    auto_link_deployments=form.cleaned_data.get("auto_link_deployments", False),
                )
            except EnvManagerError as exc:
                _apply_errors(request, form, exc)
            else:
                messages.success(request, f"Created {obj.key}.")
                return redirect(f"{request.path}?type={SPECS[object_type].slug}")
    objects = (
        EnvironmentObject.objects.filter(
            workspace=workspace, scope=Scope.WORKSPACE, object_type=object_type
        )
        .prefetch_related(
            Prefetch("links", queryset=Link.objects.select_related("deployment", "ide_project"))
        )
        .order_by("key")
    )
    query = request.GET.get("q", "").strip()
    if query:
        objects = objects.filter(key__icontains=query)
    page = Paginator(objects, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"obj": o, "summary": summary(object_type, o.values), "links": list(o.links.all())}
        for o in page
    ]
    context.update(_list_context(request, object_type, page, rows, form, query))
    return render(request, "envmanager/workspace_environment.html", context)


def _workspace_object(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int
) -> tuple[Workspace, EnvironmentObject]:
    workspace = workspace_for_user(request.user, workspace_id)
    return workspace, environment_object_for_user(request.user, object_id, workspace)


def _to_object(obj: EnvironmentObject) -> HttpResponse:
    """Back to the object's page (a Deployment-scoped object's page is its Deployment's)."""
    if obj.scope != Scope.WORKSPACE:
        return redirect("deployment-object", deployment_id=obj.deployment_id, object_id=obj.pk)
    return redirect("environment-object", workspace_id=obj.workspace_id, object_id=obj.pk)


def _object_link(obj: EnvironmentObject, link_id: int) -> Link:
    link = obj.links.select_related("deployment", "ide_project").filter(pk=link_id).first()
    if link is None:
        raise Http404("That link is not one of this object's.")
    return link


def _override_form(obj: EnvironmentObject, link: Link, data: Any = None) -> OverrideForm:
    return OverrideForm(
        data,
        object_type=obj.object_type,
        current=link.overrides,
        is_secret=bool(obj.values.get("is_secret")),
        workspace_values=obj.values,
        prefix=f"link{link.pk}",
    )


def _object_page(
    request: AuthenticatedHttpRequest,
    workspace: Workspace,
    obj: EnvironmentObject,
    *,
    form: EnvironmentObjectForm | None = None,
    link_form: OverrideForm | None = None,
    bound_override: tuple[int, OverrideForm] | None = None,
) -> HttpResponse:
    """One Workspace object, its links and their overrides (with a form that failed to
    validate, bound, so what was typed stays)."""
    context = workspace_page(request, workspace)
    is_secret = bool(obj.values.get("is_secret"))
    links = list(obj.links.select_related("deployment", "ide_project"))
    linked_deployments = {link.deployment_id for link in links if link.deployment_id}
    linked_projects = {link.ide_project_id for link in links if link.ide_project_id}
    secret = set(object_types.secret_fields(obj.object_type, obj.values))
    context.update(
        obj=obj,
        form=form
        or EnvironmentObjectForm(
            object_type=obj.object_type,
            stored=obj.values,
            initial={"key": obj.key, "auto_link_deployments": obj.auto_link_deployments},
        ),
        link_form=link_form
        or OverrideForm(
            object_type=obj.object_type,
            is_secret=is_secret,
            workspace_values=obj.values,
            prefix="link",
        ),
        type_label=TYPE_LABELS[obj.object_type],
        slug=SPECS[obj.object_type].slug,
        summary=summary(obj.object_type, obj.values),
        links=[
            {
                "link": link,
                "override_form": (
                    bound_override[1]
                    if bound_override and bound_override[0] == link.pk
                    else _override_form(obj, link)
                ),
                "open": bool(bound_override and bound_override[0] == link.pk),
                "overrides": [
                    (k, "••••••••" if k.split(".")[0] in secret else v)
                    for k, v in sorted(link.overrides.items())
                ],
            }
            for link in links
        ],
        free_deployments=[d for d in workspace.deployments.all() if d.pk not in linked_deployments],
        free_projects=[p for p in workspace.ide_projects.all() if p.pk not in linked_projects],
        excluded=list(obj.auto_link_excluded.all()),
        connection_types=CONNECTION_TYPES,
    )
    context["readonly"] = readonly_values(obj.object_type, obj.values, context["form"])
    return render(request, "envmanager/environment_object.html", context)


@login_required
@require_GET
def environment_object_detail(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int
) -> HttpResponse:
    """One Workspace object; each of its forms posts to a view of its own below."""
    workspace, obj = _workspace_object(request, workspace_id, object_id)
    if obj.scope != Scope.WORKSPACE:
        return _to_object(obj)
    return _object_page(request, workspace, obj)


@login_required
@require_POST
def object_page_update(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int
) -> HttpResponse:
    workspace, obj = _workspace_object(request, workspace_id, object_id)
    if obj.scope != Scope.WORKSPACE:
        return _to_object(obj)
    form = EnvironmentObjectForm(request.POST, object_type=obj.object_type, stored=obj.values)
    if form.is_valid():
        try:
            _update(request, obj, form)
        except EnvManagerError as exc:
            _apply_errors(request, form, exc)
        else:
            messages.success(request, "Saved.")
            return _to_object(obj)
    return _object_page(request, workspace, obj, form=form)


@login_required
@require_POST
def object_page_delete(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int
) -> HttpResponse:
    workspace, obj = _workspace_object(request, workspace_id, object_id)
    if obj.scope != Scope.WORKSPACE:
        return _to_object(obj)
    try:
        services.environment_object_delete(user=request.user, obj=obj)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
        return _to_object(obj)
    messages.success(request, f"Deleted {obj.key}. It can be restored for 30 days.")
    return redirect(f"/workspaces/{workspace.pk}/environment/?type={SPECS[obj.object_type].slug}")


@login_required
@require_POST
def object_page_link(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int
) -> HttpResponse:
    """Link the object to a Deployment or IDE project, with overrides if any are typed."""
    workspace, obj = _workspace_object(request, workspace_id, object_id)
    if obj.scope != Scope.WORKSPACE:
        return _to_object(obj)
    is_secret = bool(obj.values.get("is_secret"))
    link_form = OverrideForm(
        request.POST,
        object_type=obj.object_type,
        is_secret=is_secret,
        workspace_values=obj.values,
        prefix="link",
    )
    if link_form.is_valid():
        overrides, _ = link_form.overrides()
        kind, _, pk_text = request.POST.get("target", "").partition(":")
        pk = _id_from(pk_text)
        deployment = (
            workspace.deployments.filter(pk=pk).first() if kind == "deployment" and pk else None
        )
        project = workspace.ide_projects.filter(pk=pk).first() if kind == "ide" and pk else None
        if deployment is None and project is None:
            link_form.add_error(None, "Choose a Deployment or IDE project.")
        else:
            try:
                services.link_create(
                    user=request.user,
                    obj=obj,
                    deployment=deployment,
                    ide_project=project,
                    overrides=overrides,
                )
            except EnvManagerError as exc:
                _apply_errors(request, link_form, exc)
            else:
                messages.success(request, "Linked.")
                return _to_object(obj)
    return _object_page(request, workspace, obj, link_form=link_form)


@login_required
@require_POST
def object_page_unlink(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int, link_id: int
) -> HttpResponse:
    _, obj = _workspace_object(request, workspace_id, object_id)
    if obj.scope != Scope.WORKSPACE:
        return _to_object(obj)
    link = _object_link(obj, link_id)
    try:
        services.link_delete(user=request.user, link=link)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Unlinked.")
    return _to_object(obj)


@login_required
@require_POST
def object_page_exclude(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int, link_id: int
) -> HttpResponse:
    """Leave one Deployment out of an auto-linked object."""
    _, obj = _workspace_object(request, workspace_id, object_id)
    if obj.scope != Scope.WORKSPACE:
        return _to_object(obj)
    link = _object_link(obj, link_id)
    if link.deployment is None:  # an IDE project's link: no auto-link to leave
        raise Http404("That link is not one of this object's Deployment links.")
    try:
        services.auto_link_exclude(user=request.user, obj=obj, deployment=link.deployment)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Excluded from the auto-link.")
    return _to_object(obj)


@login_required
@require_POST
def object_page_override(
    request: AuthenticatedHttpRequest, workspace_id: int, object_id: int, link_id: int
) -> HttpResponse:
    """Set and unset a link's override fields (in its dialog; errors reopen it)."""
    workspace, obj = _workspace_object(request, workspace_id, object_id)
    if obj.scope != Scope.WORKSPACE:
        return _to_object(obj)
    link = _object_link(obj, link_id)
    form = _override_form(obj, link, request.POST)
    if form.is_valid():
        overrides, unset = form.overrides()
        try:
            services.link_set_overrides(
                user=request.user, link=link, overrides=overrides, unset_fields=unset
            )
        except EnvManagerError as exc:
            _apply_errors(request, form, exc)
        else:
            messages.success(request, f"Override for {link.target.name} saved.")
            return _to_object(obj)
    return _object_page(request, workspace, obj, bound_override=(link.pk, form))


# A Deployment's Environment tab


def _deployment_context(request: AuthenticatedHttpRequest, deployment: Deployment) -> dict:
    context = workspace_page(request, deployment.workspace, deployment=deployment)
    may_update = has_deployment_perm(request.user, DeploymentPermission.UPDATE, deployment)
    context["may_edit_own"] = context["can"]["create_objects"] or may_update
    context["may_promote"] = context["can"]["create_objects"] and may_update
    context["may_update_deployment"] = may_update
    return context


def _migration_buttons(deployment: Deployment, perms: dict) -> dict[str, str]:
    """Why "Migrate from Airflow" is disabled for each type ("" when it is enabled)."""
    from deployments.airflow_metadata import MetadataDbError
    from envmanager.selectors import migration_source_counts

    if not perms["migrate"]:
        reason = "Only Workspace Owners can migrate from Airflow."
        return {ObjectType.CONNECTION: reason, ObjectType.AIRFLOW_VARIABLE: reason}
    if deployment.is_remote_execution:
        reason = "Not available for remote-execution Deployments."
        return {ObjectType.CONNECTION: reason, ObjectType.AIRFLOW_VARIABLE: reason}
    try:
        counts = migration_source_counts(deployment)
    except MetadataDbError as exc:
        return {ObjectType.CONNECTION: str(exc), ObjectType.AIRFLOW_VARIABLE: str(exc)}
    return {t: "" if n else "The metadata database holds none." for t, n in counts.items()}


def _resolved_page(deployment: Deployment, object_type: str, query: str, number: Any) -> Any:
    """One page of what the Deployment resolves of one type, paged in the database (a count and
    one page of links with their objects: two queries, whatever the number of objects). Each
    Link is resolved as `selectors.deployment_resolved_environment` does."""
    links = (
        Link.objects.filter(deployment=deployment, object_type=object_type)
        .select_related("environment_object")
        .order_by("object_key")
    )
    if query:
        links = links.filter(object_key__icontains=query)
    page = Paginator(links, PAGE_SIZE).get_page(number)
    # The page shows what each link resolves to.
    page.object_list = [
        ResolvedObject(  # type: ignore[misc]
            object_type=link.object_type,
            key=link.object_key,
            values=object_types.apply_overrides(
                link.environment_object.values, link.overrides or {}
            ),
            environment_object=link.environment_object,
            link=link,
            overridden_fields=tuple(sorted(link.overrides or {})),
        )
        for link in page.object_list
    ]
    return page


@login_required
def deployment_environment(request: AuthenticatedHttpRequest, deployment_id: int) -> HttpResponse:
    deployment = deployment_for_user(request.user, deployment_id)
    context = _deployment_context(request, deployment)
    if not context["can"]["view_objects"]:
        return render(
            request,
            "envmanager/forbidden.html",
            {"message": "Members see the Deployment, not its environment objects."},
            status=403,
        )
    object_type = _type_from(request)
    form = EnvironmentObjectForm(object_type=object_type, prefix="new", workspace_scope=False)
    if request.method == "POST":
        form = EnvironmentObjectForm(
            request.POST, object_type=object_type, prefix="new", workspace_scope=False
        )
        if form.is_valid():
            try:
                services.environment_object_create(
                    user=request.user,
                    workspace=deployment.workspace,
                    object_type=object_type,
                    key=form.cleaned_data["key"],
                    values=form.values(),
                    scope=Scope.DEPLOYMENT,
                    deployment=deployment,
                )
            except EnvManagerError as exc:
                _apply_errors(request, form, exc)
            else:
                messages.success(request, f"Created {form.cleaned_data['key']}.")
                return redirect(f"{request.path}?type={SPECS[object_type].slug}")
    query = request.GET.get("q", "").strip()
    page = _resolved_page(deployment, object_type, query, request.GET.get("page"))
    rows = [
        {"item": item, "obj": item.environment_object, "summary": summary(object_type, item.values)}
        for item in page.object_list
    ]
    # Which of the page's keys the Workspace has an object for: an own object's promote dialog
    # says up front that it adds an override there. (All the page's keys, linked ones too: one
    # query whatever the page holds.)
    context["workspace_keys"] = _workspace_keys(
        deployment, object_type, [r["obj"].key for r in rows]
    )
    migration = {}
    if object_type in (ObjectType.CONNECTION, ObjectType.AIRFLOW_VARIABLE):
        migration = {
            "reason": _migration_buttons(deployment, context["can"])[object_type],
            "slug": "connections" if object_type == ObjectType.CONNECTION else "variables",
        }
    if object_type == ObjectType.METRICS_EXPORT:
        context["metrics"] = {
            "changed_at": metrics_exports_changed_at(deployment.pk),
            "base_url": request.build_absolute_uri("/").rstrip("/"),
        }
    context.update(
        _list_context(request, object_type, page, rows, form, query), migration=migration
    )
    return render(request, "envmanager/deployment_environment.html", context)


def _workspace_keys(deployment: Deployment, object_type: str, keys: list[str]) -> set[str]:
    """Those of `keys` the Workspace holds an object of this type for."""
    if not keys:
        return set()
    return set(
        EnvironmentObject.objects.filter(
            workspace=deployment.workspace_id,
            scope=Scope.WORKSPACE,
            object_type=object_type,
            key__in=keys,
        ).values_list("key", flat=True)
    )


def _deployment_own_object(
    request: AuthenticatedHttpRequest, deployment_id: int, object_id: int
) -> tuple[Deployment, EnvironmentObject]:
    """One of the Deployment's own objects; anything else is a 404."""
    deployment = deployment_for_user(request.user, deployment_id)
    obj = environment_object_for_user(request.user, object_id, deployment.workspace)
    if obj.deployment_id != deployment.pk:
        raise Http404
    return deployment, obj


def _deployment_tab(deployment: Deployment, obj: EnvironmentObject) -> HttpResponse:
    return redirect(f"/deployments/{deployment.pk}/environment/?type={SPECS[obj.object_type].slug}")


def _deployment_object_page(
    request: AuthenticatedHttpRequest,
    deployment: Deployment,
    obj: EnvironmentObject,
    form: EnvironmentObjectForm | None = None,
) -> HttpResponse:
    context = _deployment_context(request, deployment)
    context.update(
        obj=obj,
        form=form
        or EnvironmentObjectForm(
            object_type=obj.object_type,
            stored=obj.values,
            initial={"key": obj.key},
            workspace_scope=False,
        ),
        type_label=TYPE_LABELS[obj.object_type],
        slug=SPECS[obj.object_type].slug,
        summary=summary(obj.object_type, obj.values),
        connection_types=CONNECTION_TYPES,
        workspace_keys=_workspace_keys(deployment, obj.object_type, [obj.key]),
    )
    context["readonly"] = readonly_values(obj.object_type, obj.values, context["form"])
    return render(request, "envmanager/deployment_object.html", context)


@login_required
@require_GET
def deployment_object(
    request: AuthenticatedHttpRequest, deployment_id: int, object_id: int
) -> HttpResponse:
    """One of a Deployment's own objects; its edit, delete and promote forms post to the views
    below."""
    deployment, obj = _deployment_own_object(request, deployment_id, object_id)
    return _deployment_object_page(request, deployment, obj)


@login_required
@require_POST
def deployment_object_update(
    request: AuthenticatedHttpRequest, deployment_id: int, object_id: int
) -> HttpResponse:
    deployment, obj = _deployment_own_object(request, deployment_id, object_id)
    form = EnvironmentObjectForm(
        request.POST, object_type=obj.object_type, stored=obj.values, workspace_scope=False
    )
    if form.is_valid():
        try:
            _update(request, obj, form)
        except EnvManagerError as exc:
            _apply_errors(request, form, exc)
        else:
            messages.success(request, "Saved.")
            return _deployment_tab(deployment, obj)
    return _deployment_object_page(request, deployment, obj, form)


@login_required
@require_POST
def deployment_object_delete(
    request: AuthenticatedHttpRequest, deployment_id: int, object_id: int
) -> HttpResponse:
    deployment, obj = _deployment_own_object(request, deployment_id, object_id)
    try:
        services.environment_object_delete(user=request.user, obj=obj)
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted {obj.key}.")
    return _deployment_tab(deployment, obj)


@login_required
@require_POST
def deployment_object_promote(
    request: AuthenticatedHttpRequest, deployment_id: int, object_id: int
) -> HttpResponse:
    """Make the object a Workspace object (or an override on the one with its key)."""
    deployment, obj = _deployment_own_object(request, deployment_id, object_id)
    try:
        promoted, override = services.environment_object_promote(
            user=request.user, obj=obj, confirm_key=request.POST.get("confirm_key")
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
        return _deployment_tab(deployment, obj)
    messages.success(
        request,
        (
            f"{promoted.key} is now an override on the Workspace object."
            if override
            else f"{promoted.key} is now a Workspace object linked to "
            f"{deployment.name}. Link it to other Deployments from here."
        ),
    )
    return redirect(
        "environment-object", workspace_id=deployment.workspace_id, object_id=promoted.pk
    )


@login_required
def deployment_settings(request: AuthenticatedHttpRequest, deployment_id: int) -> HttpResponse:
    """Name, kind and (for Owners) the write-only metadata DB URL and Fernet keys of one
    Deployment, with "Test connection"."""
    deployment = deployment_for_user(request.user, deployment_id)
    context = _deployment_context(request, deployment)
    may_set_db = context["can"]["set_metadata_db"]
    form = DeploymentForm(deployment=deployment, may_set_metadata_db=may_set_db)
    if request.method == "POST":
        form = DeploymentForm(request.POST, deployment=deployment, may_set_metadata_db=may_set_db)
        if form.is_valid():
            try:
                deployment_services.deployment_update(
                    user=request.user, deployment=deployment, **form.changes()
                )
            except EnvManagerError as exc:
                _apply_errors(request, form, exc)
                deployment.refresh_from_db()
            else:
                messages.success(request, "Deployment saved.")
                return redirect("deployment-settings", deployment_id=deployment.pk)
    context.update(form=form, deletion=deployment_deletion(deployment))
    return render(request, "envmanager/deployment_settings.html", context)


@login_required
@require_POST
def deployment_metadata_db_test(
    request: AuthenticatedHttpRequest, deployment_id: int
) -> HttpResponse:
    """ "Test connection" on the settings page: the result as a message."""
    deployment = deployment_for_user(request.user, deployment_id)
    try:
        report = deployment_services.deployment_metadata_db_test(
            user=request.user, deployment=deployment
        )
    except EnvManagerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Connected. The metadata database holds {_count(report.connections, 'connection')} "
            f"and {_count(report.variables, 'variable')}; the Fernet key decrypts all "
            f"{_count(report.decrypted_values, 'encrypted value')}.",
        )
    return redirect("deployment-settings", deployment_id=deployment.pk)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
