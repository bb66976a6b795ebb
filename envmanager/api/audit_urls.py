from django.urls import path

from envmanager.api import audit as views

urlpatterns = [
    path(
        "workspaces/<int:workspace_id>/audit-log",
        views.AuditLogView.as_view(),
        name="api-audit-log",
    ),
    path(
        "workspaces/<int:workspace_id>/audit-log/export",
        views.AuditLogExportView.as_view(),
        name="api-audit-log-export",
    ),
    path(
        "workspaces/<int:workspace_id>/deleted-environment-objects",
        views.DeletedObjectsView.as_view(),
        name="api-deleted-objects",
    ),
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/versions",
        views.ObjectVersionsView.as_view(),
        name="api-object-versions",
    ),
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/versions/"
        "<int:version_id>/restore",
        views.ObjectVersionRestoreView.as_view(),
        name="api-object-version-restore",
    ),
]
