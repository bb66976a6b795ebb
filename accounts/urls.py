from django.urls import path

from accounts import views

urlpatterns = [
    path("account/tokens/", views.api_tokens, name="api-tokens"),
    path("account/tokens/new/", views.api_token_create, name="api-token-create"),
    path("account/tokens/revoke/", views.api_token_revoke, name="api-token-revoke"),
]
