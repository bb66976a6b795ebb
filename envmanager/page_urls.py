from django.urls import path

from envmanager import views

urlpatterns = [
    path("workspaces/<int:workspace_id>/", views.workspace_detail, name="workspace"),
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
]
