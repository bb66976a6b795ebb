"""The envmanager app's pages: the Workspace and its Environment, a Deployment's Environment
and settings, migration from Airflow, the audit log and history, Airflow files."""

from django.urls import path

from envmanager import airflow_file_views, audit_views, migration_views, views

urlpatterns = [
    # Workspace, Environment, Deployment
    path("workspaces/<int:workspace_id>/", views.workspace_detail, name="workspace"),
    path(
        "workspaces/<int:workspace_id>/deployments/new/",
        views.workspace_deployment_create,
        name="workspace-deployment-create",
    ),
    path(
        "workspaces/<int:workspace_id>/ide-projects/new/",
        views.workspace_ide_project_create,
        name="workspace-ide-project-create",
    ),
    path(
        "workspaces/<int:workspace_id>/members/",
        views.workspace_member_add,
        name="workspace-member-add",
    ),
    path(
        "workspaces/<int:workspace_id>/members/<int:user_id>/role/",
        views.workspace_member_role,
        name="workspace-member-role",
    ),
    path(
        "workspaces/<int:workspace_id>/members/<int:user_id>/remove/",
        views.workspace_member_remove,
        name="workspace-member-remove",
    ),
    path(
        "workspaces/<int:workspace_id>/settings/",
        views.workspace_settings,
        name="workspace-settings",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/",
        views.workspace_environment,
        name="workspace-environment",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/",
        views.environment_object_detail,
        name="environment-object",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/update/",
        views.object_page_update,
        name="environment-object-update",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/delete/",
        views.object_page_delete,
        name="environment-object-delete",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/links/new/",
        views.object_page_link,
        name="environment-object-link",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/links/<int:link_id>/override/",
        views.object_page_override,
        name="environment-object-override",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/links/<int:link_id>/unlink/",
        views.object_page_unlink,
        name="environment-object-unlink",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/links/<int:link_id>/exclude/",
        views.object_page_exclude,
        name="environment-object-exclude",
    ),
    path(
        "deployments/<int:deployment_id>/environment/",
        views.deployment_environment,
        name="deployment-environment",
    ),
    path(
        "deployments/<int:deployment_id>/environment/<int:object_id>/",
        views.deployment_object,
        name="deployment-object",
    ),
    path(
        "deployments/<int:deployment_id>/settings/",
        views.deployment_settings,
        name="deployment-settings",
    ),
    path(
        "deployments/<int:deployment_id>/settings/test-metadata-db/",
        views.deployment_metadata_db_test,
        name="deployment-metadata-db-test",
    ),
    # Migration from Airflow
    path(
        "deployments/<int:deployment_id>/migrate/<slug:type_slug>/",
        migration_views.migration_select,
        name="migration-select",
    ),
    path(
        "deployments/<int:deployment_id>/migrate/<slug:type_slug>/start/",
        migration_views.migration_start,
        name="migration-start",
    ),
    path("migrations/<int:run_id>/", migration_views.migration_run, name="migration-run"),
    path(
        "migrations/<int:run_id>/<slug:action>/",
        migration_views.migration_run_action,
        name="migration-run-action",
    ),
    # Audit log, deleted objects, history
    path("workspaces/<int:workspace_id>/audit/", audit_views.audit_log, name="audit-log"),
    path(
        "workspaces/<int:workspace_id>/environment/deleted/",
        audit_views.deleted_objects,
        name="deleted-objects",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/history/",
        audit_views.object_history,
        name="object-history",
    ),
    path(
        "workspaces/<int:workspace_id>/versions/<int:version_id>/restore/",
        audit_views.version_restore,
        name="version-restore",
    ),
    # Airflow files
    path(
        "workspaces/<int:workspace_id>/airflow-files/",
        airflow_file_views.airflow_files,
        name="airflow-files",
    ),
    path(
        "workspaces/<int:workspace_id>/airflow-files/<slug:type_slug>.<slug:file_format>",
        airflow_file_views.airflow_file_download,
        name="airflow-file-download",
    ),
]
