"""The envmanager app's API: environment objects, IDE projects, lookups, migration, audit and
versions, promotion, Airflow files."""

from django.urls import path

from envmanager.api import (
    airflow_files,
    audit,
    lookup,
    lookup_names,
    metrics_lookup,
    migration,
    promotion,
    views,
)
from envmanager.api.local_development import LocalEnvironmentView

urlpatterns = [
    # Environment objects and IDE projects
    path(
        "workspaces/<int:workspace_id>/environment-objects",
        views.EnvironmentObjectListView.as_view(),
        name="api-environment-objects",
    ),
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>",
        views.EnvironmentObjectDetailView.as_view(),
        name="api-environment-object",
    ),
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/exclude-linking",
        views.ExcludeLinkingView.as_view(),
        name="api-environment-object-exclude-linking",
    ),
    path(
        "workspaces/<int:workspace_id>/ide-projects",
        views.IdeProjectListView.as_view(),
        name="api-ide-projects",
    ),
    path(
        "workspaces/<int:workspace_id>/ide-projects/<int:project_id>",
        views.IdeProjectDetailView.as_view(),
        name="api-ide-project",
    ),
    # Lookups for the secrets backend (Deployment tokens)
    path("lookup/connections/<path:conn_id>", lookup.connection, name="lookup-connection"),
    path("lookup/variables/<path:key>", lookup.variable, name="lookup-variable"),
    path("lookup/environment", lookup.environment, name="lookup-environment"),
    path("lookup/names", lookup_names.names, name="lookup-names"),
    path(
        "lookup/prometheus-config",
        metrics_lookup.prometheus_config,
        name="lookup-prometheus-config",
    ),
    # Local development (a personal token, where the Workspace allows it)
    path(
        "deployments/<int:deployment_id>/local-development",
        LocalEnvironmentView.as_view(),
        name="api-local-development",
    ),
    # Migration from Airflow
    path(
        "deployments/<int:deployment_id>/migration-candidates",
        migration.MigrationCandidatesView.as_view(),
        name="api-migration-candidates",
    ),
    path(
        "deployments/<int:deployment_id>/migrations",
        migration.DeploymentMigrationsView.as_view(),
        name="api-deployment-migrations",
    ),
    path("migrations/<int:run_id>", migration.MigrationRunView.as_view(), name="api-migration"),
    path(
        "migrations/<int:run_id>/undo",
        migration.MigrationRunUndoView.as_view(),
        name="api-migration-undo",
    ),
    path(
        "migrations/<int:run_id>/retry",
        migration.MigrationRunRetryView.as_view(),
        name="api-migration-retry",
    ),
    # Audit log, deleted objects, versions
    path(
        "workspaces/<int:workspace_id>/audit-log",
        audit.AuditLogView.as_view(),
        name="api-audit-log",
    ),
    path(
        "workspaces/<int:workspace_id>/audit-log/export",
        audit.AuditLogExportView.as_view(),
        name="api-audit-log-export",
    ),
    path(
        "workspaces/<int:workspace_id>/deleted-environment-objects",
        audit.DeletedObjectsView.as_view(),
        name="api-deleted-objects",
    ),
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/versions",
        audit.ObjectVersionsView.as_view(),
        name="api-object-versions",
    ),
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/versions/"
        "<int:version_id>/diff",
        audit.ObjectVersionDiffView.as_view(),
        name="api-object-version-diff",
    ),
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/versions/"
        "<int:version_id>/restore",
        audit.ObjectVersionRestoreView.as_view(),
        name="api-object-version-restore",
    ),
    # Promotion
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/promote",
        promotion.PromoteView.as_view(),
        name="api-environment-object-promote",
    ),
    # Airflow files
    path(
        "workspaces/<int:workspace_id>/airflow-files/<str:file_type>/preview",
        airflow_files.AirflowFilePreviewView.as_view(),
        name="api-airflow-file-preview",
    ),
    path(
        "workspaces/<int:workspace_id>/airflow-files/<str:file_type>/import",
        airflow_files.AirflowFileImportView.as_view(),
        name="api-airflow-file-import",
    ),
    path(
        "workspaces/<int:workspace_id>/airflow-files/<str:file_type>/export",
        airflow_files.AirflowFileExportView.as_view(),
        name="api-airflow-file-export",
    ),
]
