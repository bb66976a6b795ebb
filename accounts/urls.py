from django.urls import path

from accounts import views

urlpatterns = [
    path("account/tokens/", views.api_tokens, name="api-tokens"),
]
