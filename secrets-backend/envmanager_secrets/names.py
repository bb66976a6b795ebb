"""The names lookup (``GET /api/v1/lookup/names``) as the Airflow plugin reads it: the keys a
Deployment resolves and where each comes from, never a value. Read with the secrets backend's
own session (its token) and time bounds, kept for the backend's ``cache_ttl`` and then
revalidated by ETag."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from envmanager_secrets.backend import EnvManagerBackendError, EnvManagerSecretsBackend

PATH = "/api/v1/lookup/names"
TYPES = ("connections", "variables", "environmentVariables", "metricsExports")


@dataclass
class _Entry:
    expires: float
    etag: str
    document: dict[str, Any]
    read_at: float  # wall-clock time of the last answer from the server


class NamesCache:
    """One names document per backend configuration (base URL and token), in this process."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get(self, backend: EnvManagerSecretsBackend) -> tuple[dict[str, Any], float]:
        """The document and when it was read from the server. Raises EnvManagerBackendError
        when the server cannot answer or refuses the token (never with the token in it)."""
        key = (backend.base_url, hash(backend._session.headers.get("Authorization")))
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now < entry.expires:
            return entry.document, entry.read_at
        status, etag, document = _fetch(backend, entry.etag if entry else "")
        if status == 304 and entry is not None:
            document = entry.document
            etag = etag or entry.etag
        entry = _Entry(now + backend.cache_ttl, etag, document, time.time())
        with self._lock:
            self._entries[key] = entry
        return entry.document, entry.read_at


def _fetch(backend: EnvManagerSecretsBackend, etag: str) -> tuple[int, str, dict[str, Any]]:
    headers = {"If-None-Match": etag} if etag else {}
    timeouts = (backend.connect_timeout, min(backend.timeout, backend.total_timeout))
    try:
        # The backend's session: its token, proxies and CA bundle, read once.
        resp = backend._session.get(backend.base_url + PATH, headers=headers, timeout=timeouts)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise EnvManagerBackendError(
            f"envmanager GET {PATH} failed: {type(exc).__name__}"
        ) from None
    if resp.status_code == 304 and etag:
        return 304, resp.headers.get("ETag", ""), {}
    if resp.status_code in (401, 403):
        raise EnvManagerBackendError(f"envmanager token rejected (HTTP {resp.status_code})")
    if resp.status_code == 404:
        raise EnvManagerBackendError(
            f"envmanager GET {PATH}: HTTP 404 (is base_url right, and the server recent "
            "enough to answer the names lookup?)"
        )
    if resp.status_code != 200:
        raise EnvManagerBackendError(f"envmanager GET {PATH} failed: HTTP {resp.status_code}")
    try:
        document = resp.json()
    except ValueError:
        document = None
    if not isinstance(document, dict) or not all(isinstance(document.get(t), list) for t in TYPES):
        raise EnvManagerBackendError(f"envmanager GET {PATH}: unexpected 200 body")
    return 200, resp.headers.get("ETag", ""), document


names_cache = NamesCache()
