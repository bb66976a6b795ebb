from django.urls import path

from envmanager.api.promotion import PromoteView

urlpatterns = [
    path(
        "workspaces/<int:workspace_id>/environment-objects/<int:object_id>/promote",
        PromoteView.as_view(),
        name="api-environment-object-promote",
    ),
]
