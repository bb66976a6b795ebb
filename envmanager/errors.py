"""Domain errors raised by services. Views turn them into form messages, the API into 4xx
JSON errors, commands into exit messages. Messages never contain a secret value."""

from django.core.exceptions import ValidationError


class EnvManagerError(Exception):
    status_code = 400
    code = "error"

    def __init__(self, message: str, field_errors: dict[str, str] | None = None):
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
