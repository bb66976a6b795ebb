"""The app's URLs plus one view that fails, to see what a browser and an API client get."""

from django.urls import path

from envmanager.urls import handler400, handler403, handler404, handler500, urlpatterns


def broken(request):
    raise RuntimeError("a bug, with a secret in its message: err-page-S3CRET")


urlpatterns = [
    *urlpatterns,
    path("broken/", broken),
    path("api/v1/broken", broken),
]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
