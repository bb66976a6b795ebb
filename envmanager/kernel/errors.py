"""Domain errors raised by services. Views turn them into form messages, the API into 4xx
JSON errors, commands into exit messages. Messages never contain a secret value."""

from django.core.exceptions import ValidationError


class EnvManagerError(Exception):
    status_code = 400
    code = "error"

    def __init__(self, message: str, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class InvalidInput(EnvManagerError):
    code = "invalid"

    @classmethod
    def from_validation_error(cls, error: ValidationError, prefix: str = "") -> "InvalidInput":
        if hasattr(error, "error_dict"):
            fields = {
                f"{prefix}{name}": " ".join(str(m) for e in errs for m in e.messages)
                for name, errs in error.error_dict.items()
            }
        else:
            fields = {}
        message = "; ".join(f"{k}: {v}" for k, v in fields.items()) or " ".join(error.messages)
        return cls(message, fields)


class NotPermitted(EnvManagerError):
    status_code = 403
    code = "permission_denied"


class NotFound(EnvManagerError):
    status_code = 404
    code = "not_found"


class Conflict(EnvManagerError):
    status_code = 409
    code = "conflict"


class PreconditionFailed(EnvManagerError):
    """An `If-Match` that no longer names the resource as it is."""

    status_code = 412
    code = "precondition_failed"


class MetadataDbError(InvalidInput):
    """A Deployment's Airflow metadata database cannot be used for this; the message is for
    the user and never holds a password, a key or a value."""

    code = "metadata_db"

    def __init__(self, message: str, field: str = "metadata_db_url") -> None:
        super().__init__(message, {field: message})


class MetadataDbUnusable(MetadataDbError):
    """The URL reaches nothing envmanager may open. Always the same message, whether the
    target is off the allowlist, missing, unreadable, not a database or on a wrong port, so
    no answer tells what exists on the server."""

    MESSAGE = (
        "This metadata database cannot be used: it is not on this server's allowlist, cannot "
        "be reached, or is not an Airflow metadata database. Check the URL, or ask your "
        "operator which databases envmanager may open (ENVMANAGER_METADATA_DB_ALLOWLIST)."
    )

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class WrongFernetKey(MetadataDbError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "fernet_key")


class MetadataDbChanged(MetadataDbError):
    """A migration run is pinned to the database it read; the Deployment's URL names another
    one now."""

    status_code = 409
    code = "conflict"
