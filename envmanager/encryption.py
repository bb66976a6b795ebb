"""Encryption of secrets at rest: the one place that touches ciphertext.

Keys come from settings (`ENVMANAGER_ENCRYPTION_KEYS`, newest first), never from the
database. Model fields that hold secrets are `EncryptedTextField` or `EncryptedJSONField`;
they store a Fernet token and hand the code plain values.
"""

import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("ENVMANAGER_ENCRYPTION_KEYS holds no key.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "ENVMANAGER_ENCRYPTION_KEYS must hold url-safe base64 Fernet keys."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.ENVMANAGER_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        # Never include the token: a caller may log this message.
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with ENVMANAGER_ENCRYPTION_KEYS; "
            "was a key removed before rotation finished?"
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt a stored token with the newest key."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text value stored as a Fernet token. Empty string and NULL are stored as they are."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def value_to_string(self, obj) -> str:
        return "********"


class EncryptedJSONField(models.TextField):
    """A JSON document (dict) stored as one Fernet token."""

    def from_db_value(self, value, expression, connection) -> Any:
        if value is None:
            return value
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value)
        return value

    def get_prep_value(self, value):
        if value is None:
            return value
        return encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def value_to_string(self, obj) -> str:
        return "********"


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted columns and the names of those columns (for key rotation)."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, EncryptedTextField | EncryptedJSONField)
        ]
        if names:
            found.append((model, names))
    return found
