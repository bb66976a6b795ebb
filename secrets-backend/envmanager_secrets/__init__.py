"""envmanager secrets backend for Apache Airflow."""

from envmanager_secrets.backend import EnvManagerBackendError, EnvManagerSecretsBackend

__all__ = ["EnvManagerBackendError", "EnvManagerSecretsBackend"]
