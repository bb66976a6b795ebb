"""Local development: where a Workspace allows it, Authors and above may fetch environment
objects with their secret values (for a local Airflow, as the reference vendor's CLI does),
or a Deployment's whole environment (`envmanager-env pull`), and every such fetch is in the
audit log."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from accounts.audit import audit_event
from accounts.models import AuditEvent, User, Workspace, WorkspacePermission
from accounts.permissions import require_workspace_perm
from deployments.models import Deployment
from envmanager import airflow_files, object_types
from envmanager.kernel.errors import NotPermitted
from envmanager.models import EnvironmentObject
from envmanager.object_types import ObjectType
from envmanager.selectors import deployment_resolved_environment


def require_secrets_shown_allowed(*, user: User, workspace: Workspace) -> None:
    """Secret values are shown only where the Workspace allows local development, and only to
    those who may see its environment objects at all (Authors and above)."""
    if not workspace.local_development_secrets:
        raise NotPermitted(
            "This Workspace does not allow showing secrets: an Owner can turn on local "
            "development with secrets in the Workspace settings."
        )
    require_workspace_perm(
        user, WorkspacePermission.VIEW_ENV_OBJECTS, workspace, "see secret values"
    )


def secrets_reveal(
    *,
    user: User,
    workspace: Workspace,
    objects: Sequence[EnvironmentObject],
    deployment: Deployment | None = None,
    via: str = "api",
) -> None:
    """Record that `user` is about to be shown the secret values of `objects`: one audit row
    per object (so an Owner can ask who saw one key), written before any value leaves. If
    the rows cannot be written, the caller gets an exception and shows nothing."""
    require_secrets_shown_allowed(user=user, workspace=workspace)
    with transaction.atomic():
        AuditEvent.objects.bulk_create(
            audit_event(
                workspace=workspace,
                actor=user,
                action="secrets.reveal",
                obj=obj,
                deployment_id=deployment.pk if deployment is not None else None,
                detail={"via": via},
            )
            for obj in objects
        )


@dataclass(frozen=True)
class LocalEnvironment:
    """What a Deployment resolves, for a developer's own machine: the environment variables
    (and the same as a dotenv file), and its connections and Airflow variables as the files
    `airflow connections import` and `airflow variables import` read."""

    environment_variables: dict[str, str]
    dotenv: str
    connections_file: str
    variables_file: str


def _dotenv(env_vars: dict[str, str]) -> str:
    lines = []
    for key, value in env_vars.items():
        try:
            lines.append(f"{key}={object_types.dotenv_value(value)}\n")
        except ValueError:
            # Stored before such values were refused: left out rather than written unsafely.
            lines.append(f"# {key} is left out: its value cannot be written in a dotenv file.\n")
    return "".join(lines)


def local_development_pull(*, user: User, deployment: Deployment) -> LocalEnvironment:
    """A Deployment's whole resolved environment with its secrets, for `envmanager-env pull`:
    under the same rule as showing secrets (the Workspace allows local development; Authors
    and above) and audited the same way, one row per object, before any value leaves."""
    workspace = deployment.workspace
    require_secrets_shown_allowed(user=user, workspace=workspace)
    resolved = deployment_resolved_environment(deployment)
    env_vars = resolved[ObjectType.ENVIRONMENT_VARIABLE]
    connections = resolved[ObjectType.CONNECTION]
    variables = resolved[ObjectType.AIRFLOW_VARIABLE]
    groups = (env_vars, connections, variables)
    secrets_reveal(
        user=user,
        workspace=workspace,
        objects=[r.environment_object for group in groups for r in group.values()],
        deployment=deployment,
        via="pull",
    )
    values = {key: r.values["value"] for key, r in env_vars.items()}
    return LocalEnvironment(
        environment_variables=values,
        dotenv=_dotenv(values),
        connections_file=airflow_files.render_connections(
            {key: r.values for key, r in connections.items()}, "json"
        ),
        variables_file=airflow_files.render_variables(
            {key: r.values for key, r in variables.items()}
        ),
    )
