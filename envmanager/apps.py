from typing import Any

from django.apps import AppConfig


class EnvmanagerConfig(AppConfig):
    name = "envmanager"
    verbose_name = "Environment objects"

    def ready(self) -> None:
        from deployments.models import Deployment
        from deployments.signals import deployment_created, deployment_deleted, deployment_deleting
        from envmanager import tasks  # noqa: F401 - registers the tasks services enqueue by name
        from envmanager.lookups import document_cache
        from envmanager.services import auto_link_new_deployment
        from envmanager.services.deployment_deletion import deployment_deletion_prepare

        def link_auto_linked_objects(
            sender: type[Deployment], deployment: Deployment, **kwargs: Any
        ) -> None:
            auto_link_new_deployment(deployment=deployment)

        deployment_created.connect(link_auto_linked_objects, weak=False, dispatch_uid="auto-link")

        def prepare_deletion(
            sender: type[Deployment], deployment: Deployment, **kwargs: Any
        ) -> dict[str, Any]:
            return deployment_deletion_prepare(deployment=deployment)

        def forget_deleted(sender: type[Deployment], deployment_id: int, **kwargs: Any) -> None:
            document_cache.forget(deployment_id)

        deployment_deleting.connect(prepare_deletion, weak=False, dispatch_uid="deletion")
        deployment_deleted.connect(forget_deleted, weak=False, dispatch_uid="forget-document")
