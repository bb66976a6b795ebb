from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.forms import ThrottledAuthenticationForm
from envmanager import views

api_v1: list[URLPattern | URLResolver] = [
    path("", include("accounts.api.urls")),
    path("", include("deployments.api.urls")),
    path("", include("envmanager.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file of its own: the docs page keeps our
    # CSP (no inline script), and Swagger UI comes from drf-spectacular-sidecar, not a CDN.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("envmanager.page_urls")),
    path("", include("deployments.urls")),
    path("", include("accounts.urls")),
    path("api/v1/", include(api_v1)),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for it on pages that name no icon (a JSON answer, say).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
]

# The API answers errors in its JSON shape, browsers get a page (envmanager.error_pages).
handler400 = "envmanager.error_pages.bad_request"
handler403 = "envmanager.error_pages.permission_denied"
handler404 = "envmanager.error_pages.page_not_found"
handler500 = "envmanager.error_pages.server_error"
