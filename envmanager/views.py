from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import Workspace


@login_required
def home(request: HttpRequest) -> HttpResponse:
    workspaces = Workspace.objects.visible_to(request.user)
    return render(request, "envmanager/home.html", {"workspaces": workspaces})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
