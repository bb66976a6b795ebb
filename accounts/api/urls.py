from django.urls import path

from accounts.api import views

urlpatterns = [
    path("workspaces", views.WorkspaceListView.as_view(), name="api-workspaces"),
    path(
        "workspaces/<int:workspace_id>", views.WorkspaceDetailView.as_view(), name="api-workspace"
    ),
    path(
        "workspaces/<int:workspace_id>/members", views.MemberListView.as_view(), name="api-members"
    ),
]
