from django.urls import path

from deployments import views

urlpatterns = [
    path(
        "deployments/<int:deployment_id>/tokens/", views.deployment_tokens, name="deployment-tokens"
    ),
]
