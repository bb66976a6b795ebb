from django.urls import path

from deployments.api import views

urlpatterns = [
    path(
        "workspaces/<int:workspace_id>/deployments",
        views.DeploymentListView.as_view(),
        name="api-deployments",
    ),
    path(
        "workspaces/<int:workspace_id>/deployments/<int:deployment_id>",
        views.DeploymentDetailView.as_view(),
        name="api-deployment",
    ),
    path(
        "deployments/<int:deployment_id>/tokens",
        views.DeploymentTokenListView.as_view(),
        name="api-deployment-tokens",
    ),
    path(
        "deployments/<int:deployment_id>/metadata-db/test",
        views.DeploymentMetadataDbTestView.as_view(),
        name="api-deployment-metadata-db-test",
    ),
    path(
        "deployments/<int:deployment_id>/lookup-counts",
        views.DeploymentLookupCountsView.as_view(),
        name="api-deployment-lookup-counts",
    ),
    path(
        "deployments/<int:deployment_id>/tokens/<int:token_id>/revoke",
        views.DeploymentTokenRevokeView.as_view(),
        name="api-deployment-token-revoke",
    ),
]
