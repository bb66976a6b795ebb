from django.urls import path

from envmanager import migration_views as views

urlpatterns = [
    path(
        "deployments/<int:deployment_id>/migrate/<slug:type_slug>/",
        views.migration_select,
        name="migration-select",
    ),
    path(
        "deployments/<int:deployment_id>/migrate/<slug:type_slug>/start/",
        views.migration_start,
        name="migration-start",
    ),
    path("migrations/<int:run_id>/", views.migration_run, name="migration-run"),
    path(
        "migrations/<int:run_id>/<slug:action>/",
        views.migration_run_action,
        name="migration-run-action",
    ),
]
