from django.urls import path

from envmanager import audit_views as views

urlpatterns = [
    path("workspaces/<int:workspace_id>/audit/", views.audit_log, name="audit-log"),
    path(
        "workspaces/<int:workspace_id>/environment/deleted/",
        views.deleted_objects,
        name="deleted-objects",
    ),
    path(
        "workspaces/<int:workspace_id>/environment/<int:object_id>/history/",
        views.object_history,
        name="object-history",
    ),
    path(
        "workspaces/<int:workspace_id>/versions/<int:version_id>/restore/",
        views.version_restore,
        name="version-restore",
    ),
]
