from django.urls import path

from envmanager import airflow_file_views as views

urlpatterns = [
    path("workspaces/<int:workspace_id>/airflow-files/", views.airflow_files, name="airflow-files"),
    path(
        "workspaces/<int:workspace_id>/airflow-files/<slug:type_slug>.<slug:file_format>",
        views.airflow_file_download,
        name="airflow-file-download",
    ),
]
