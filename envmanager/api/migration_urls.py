from django.urls import path

from envmanager.api import migration as views

urlpatterns = [
    path(
        "deployments/<int:deployment_id>/migration-candidates",
        views.MigrationCandidatesView.as_view(),
        name="api-migration-candidates",
    ),
    path(
        "deployments/<int:deployment_id>/migrations",
        views.DeploymentMigrationsView.as_view(),
        name="api-deployment-migrations",
    ),
    path("migrations/<int:run_id>", views.MigrationRunView.as_view(), name="api-migration"),
    path(
        "migrations/<int:run_id>/undo",
        views.MigrationRunUndoView.as_view(),
        name="api-migration-undo",
    ),
    path(
        "migrations/<int:run_id>/retry",
        views.MigrationRunRetryView.as_view(),
        name="api-migration-retry",
    ),
]
