"""Encryption of secrets at rest: the one place that touches ciphertext.

Keys come from settings (`ENVMANAGER_ENCRYPTION_KEYS`, newest first), never from the
database. Model fields that hold secrets are `EncryptedTextField` or `EncryptedJSONField`;
they store a Fernet token and hand the code plain values. `seal`/`unseal` do the same for a
value a page must hand back without the browser reading it.
"""

import json
from functools import cache
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models


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


# Never include the token: a caller may log this message.
_UNREADABLE = (
    "A stored secret cannot be decrypted with ENVMANAGER_ENCRYPTION_KEYS; "
    "was a key removed before rotation finished?"
)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(_UNREADABLE) from None


class SealBroken(ValueError):
    """A sealed value came back changed, too old, or sealed for another purpose."""


def _sealed_for(purpose: str) -> bytes:
    return purpose.encode("utf-8", "backslashreplace") + b"\0"


def seal(data: bytes, *, purpose: str) -> str:
    """`data` as a Fernet token to hand to a browser that must keep it but not read it (the
    Airflow-file preview keeps the uploaded file in the page so). `purpose` is sealed in with
    it, so a token made for one user and page cannot be replayed for another."""
    return fernet().encrypt(_sealed_for(purpose) + data).decode()


def unseal(token: str, *, purpose: str, max_age: int) -> bytes:
    """The data `seal` was given for this `purpose`, if the token is unchanged and at most
    `max_age` seconds old; otherwise `SealBroken`."""
    try:
        plaintext = fernet().decrypt(token.encode(), ttl=max_age)
    except (InvalidToken, UnicodeEncodeError):
        raise SealBroken("The sealed value was changed or is too old.") from None
    prefix = _sealed_for(purpose)
    if not plaintext.startswith(prefix):
        raise SealBroken("The sealed value was made for another purpose.")
    return plaintext[len(prefix) :]


def rotate(token: str) -> str:
    """Re-encrypt a stored token with the newest key. Works on the token alone
    (MultiFernet.rotate): the plaintext never leaves this module."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(_UNREADABLE) from None


def is_current(token: str | None) -> bool:
    """Whether a stored value needs no rotation: under the newest key already, or empty (NULL
    and "" are stored as they are)."""
    if token is None or token == "":
        return True
    newest = _fernet_for((settings.ENVMANAGER_ENCRYPTION_KEYS[0],))
    try:
        newest.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def _with_stored_tokens(model: type[models.Model], names: list[str]) -> models.QuerySet[Any]:
    # The columns as plain text: an encrypted field's own converters would decrypt them.
    queryset: models.QuerySet[Any] = model._base_manager.annotate(
        **{
            f"_stored_{name}": models.ExpressionWrapper(
                models.F(name), output_field=models.TextField()
            )
            for name in names
        }
    )
    return queryset


def stored_tokens(model: type[models.Model], names: list[str]) -> models.QuerySet[Any]:
    """Rows of `model` as tuples `(pk, token, …)`: the encrypted columns `names` as the Fernet
    tokens they store, not decrypted (for key rotation, which needs no plaintext)."""
    return _with_stored_tokens(model, names).values_list(
        "pk", *(f"_stored_{name}" for name in names)
    )


def replace_stored_tokens(
    model: type[models.Model],
    names: list[str],
    rows: list[tuple[Any, tuple[str | None, ...], tuple[str | None, ...]]],
) -> set[Any]:
    """Compare-and-swap of rows' tokens, in one statement: each `(pk, old, new)` (tokens of
    the columns `names`, None for NULL) writes `new` only if the row still holds `old`.
    Returns the pks written; a row that changed or went meanwhile is left as it is. (UPDATE …
    FROM … RETURNING: PostgreSQL, and SQLite from 3.35.)"""
    if not rows:
        return set()
    quote = connection.ops.quote_name
    table, pk_column = quote(model._meta.db_table), quote(model._meta.pk.column)
    columns = [
        quote(cast("models.Field[Any, Any]", model._meta.get_field(name)).column) for name in names
    ]
    n = range(len(columns))
    # Only quoted names from the model's own metadata go into the text; tokens are parameters.
    values_columns = ", ".join(["pk", *(f"o{i}, n{i}" for i in n)])
    row = "(" + ", ".join(["%s"] * (1 + 2 * len(columns))) + ")"
    assignments = ", ".join(f"{columns[i]} = v.n{i}" for i in n)
    unchanged = " AND ".join(
        f"({table}.{columns[i]} = v.o{i} OR ({table}.{columns[i]} IS NULL AND v.o{i} IS NULL))"
        for i in n
    )
    sql = (
        f"WITH v({values_columns}) AS (VALUES {', '.join([row] * len(rows))}) "  # noqa: S608
        f"UPDATE {table} SET {assignments} FROM v "
        f"WHERE {table}.{pk_column} = v.pk AND {unchanged} RETURNING {pk_column}"
    )
    params = []
    for pk, old, new in rows:
        params.append(pk)
        for before, after in zip(old, new, strict=True):
            params += [before, after]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {pk for (pk,) in cursor.fetchall()}


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text value stored as a Fernet token. Empty string and NULL are stored as they are."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def value_to_string(self, obj: Any) -> str:
        return "********"


class EncryptedJSONField(models.TextField):  # type: ignore[type-arg]
    """A JSON document (dict) stored as one Fernet token."""

    # What django-stubs takes as the type a model attribute of this field holds and accepts.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return value
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return value
        # Keys in the order given: a connection's extra reaches Airflow as the same text
        # (`conn.extra`) as it came, not re-sorted.
        return encrypt(json.dumps(value, separators=(",", ":")))

    def value_to_string(self, obj: Any) -> str:
        return "********"


def json_tokens(values: list[Any], *, share_empty: bool = False) -> list[str | None]:
    """The tokens an `EncryptedJSONField` stores for `values`, in order (None stays NULL), for
    bulk writes that pass tokens themselves. `share_empty`: every `{}` among them gets one
    token, encrypted once (a chunk's links without overrides). A shared token tells a reader of
    the table no more than its length already does: that those rows hold nothing."""
    empty: str | None = None
    tokens: list[str | None] = []
    for value in values:
        if value is None:
            tokens.append(None)
        elif share_empty and value == {} and isinstance(value, dict):
            if empty is None:
                empty = encrypt("{}")
            tokens.append(empty)
        else:
            tokens.append(encrypt(json.dumps(value, separators=(",", ":"))))
    return tokens


class JSONTokenReader:
    """Reads tokens of an `EncryptedJSONField` taken from the table as they are stored (see
    `stored_tokens`), decrypting each distinct token once: rows that share one (see
    `json_tokens`) cost one decryption between them, and each is still read from what is
    stored, not from what was meant to be written."""

    def __init__(self) -> None:
        self._read: dict[str, str] = {}

    def __call__(self, token: str | None) -> Any:
        if token is None:
            return None
        text = self._read.get(token)
        if text is None:
            text = self._read[token] = decrypt(token)
        # Parsed for each row: callers may change what they get.
        return json.loads(text)


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
