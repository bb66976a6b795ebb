from django.urls import path

from envmanager.api import views

urlpatterns = [
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
]
