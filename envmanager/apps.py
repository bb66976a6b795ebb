from django.apps import AppConfig


class EnvmanagerConfig(AppConfig):
    name = "envmanager"
    verbose_name = "Environment objects"

    def ready(self) -> None:
        from deployments.signals import deployment_created
        from envmanager import tasks  # noqa: F401 - registers the tasks services enqueue by name
        from envmanager.services import auto_link_new_deployment

        def link_auto_linked_objects(sender, deployment, **kwargs) -> None:
            auto_link_new_deployment(deployment=deployment)

        deployment_created.connect(link_auto_linked_objects, weak=False, dispatch_uid="auto-link")
