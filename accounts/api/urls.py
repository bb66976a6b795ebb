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
    path(
        "workspaces/<int:workspace_id>/members/<int:user_id>",
        views.MemberDetailView.as_view(),
        name="api-member",
    ),
    path("me/tokens", views.ApiTokenListView.as_view(), name="api-me-tokens"),
    path(
        "me/tokens/<int:token_id>/revoke",
        views.ApiTokenRevokeView.as_view(),
        name="api-me-token-revoke",
    ),
]
