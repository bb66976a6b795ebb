from django.urls import path

from envmanager.api import airflow_files as views

urlpatterns = [
    path(
        "workspaces/<int:workspace_id>/airflow-files/<str:file_type>/preview",
        views.AirflowFilePreviewView.as_view(),
        name="api-airflow-file-preview",
    ),
    path(
        "workspaces/<int:workspace_id>/airflow-files/<str:file_type>/import",
        views.AirflowFileImportView.as_view(),
        name="api-airflow-file-import",
    ),
    path(
        "workspaces/<int:workspace_id>/airflow-files/<str:file_type>/export",
        views.AirflowFileExportView.as_view(),
        name="api-airflow-file-export",
    ),
]
