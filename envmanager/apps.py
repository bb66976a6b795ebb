from django.apps import AppConfig


class EnvmanagerConfig(AppConfig):
    name = "envmanager"
    verbose_name = "Environment objects"
