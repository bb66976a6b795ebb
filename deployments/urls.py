from django.urls import path

from deployments import views

urlpatterns = [
    path(
        "deployments/<int:deployment_id>/tokens/", views.deployment_tokens, name="deployment-tokens"
    ),
    path(
        "deployments/<int:deployment_id>/tokens/new/",
        views.deployment_token_create,
        name="deployment-token-create",
    ),
    path(
        "deployments/<int:deployment_id>/tokens/revoke/",
        views.deployment_token_revoke,
        name="deployment-token-revoke",
    ),
]
