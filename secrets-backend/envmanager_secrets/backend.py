"""Airflow secrets backend that reads Connections and Variables from envmanager's lookup API."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

from .transport import LookupTransport, TransportError

try:
    from airflow.secrets.base_secrets import BaseSecretsBackend
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        # A worker with only apache-airflow-task-sdk installed has no airflow.secrets.
        from airflow.sdk.bases.secrets_backend import (  # type: ignore[no-redef]
            BaseSecretsBackend,
        )
    except ImportError:
        # No Airflow at all (unit tests): the backend still works as a plain client.
        BaseSecretsBackend = object  # type: ignore[misc,assignment]

try:
    # Airflow lets every other exception of a backend fall through to the next source, logged
    # at debug level only: a server error would look like a missing connection. This one it
    # re-raises, so the task fails with our message instead (Airflow 3.2+).
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied as _NoFallThrough
except ImportError:  # pragma: no cover - depends on what is installed

    class _NoFallThrough(Exception):  # type: ignore[no-redef]
        pass


log = logging.getLogger(__name__)

# Airflow rejects connection JSON with any other key and then reports "not defined".
CONNECTION_KEYS = (
    "conn_type",
    "description",
    "host",
    "login",
    "password",
    "schema",
    "port",
    "extra",
)
# Sleeps between attempts: 3 attempts in all, short enough not to stall a task for long.
RETRY_BACKOFF = (0.1, 0.3)
MAX_CACHE_ENTRIES = 1000
_MISSING = object()


class EnvManagerBackendError(_NoFallThrough, RuntimeError):  # type: ignore[misc,valid-type]
    """The envmanager server could not answer a lookup, or refused the token: never "not
    found". Inside Airflow the lookup fails with this error rather than falling through to
    environment variables and the metastore, which may hold stale or no values."""


class EnvManagerSecretsBackend(BaseSecretsBackend):  # type: ignore[misc,valid-type]
    """Look up Connections and Variables at ``{base_url}/api/v1/lookup/...``."""

    def __init__(
        self,
        base_url: str = "",
        token: str = "",
        timeout: float = 5,
        cache_ttl: float = 10,
        connect_timeout: float = 2,
        total_timeout: float = 10,
        **kwargs: Any,  # unknown BACKEND_KWARGS are ignored so config typos don't break Airflow
    ) -> None:
        super().__init__()
        if not base_url or not token:
            raise ValueError("EnvManagerSecretsBackend needs base_url and token in BACKEND_KWARGS")
        self.base_url = base_url.rstrip("/")
        # Per-key env overrides (AIRFLOW__SECRETS__BACKEND_KWARG__TIMEOUT) arrive as strings.
        # `timeout`: the longest wait for the server's answer (read); `connect_timeout`: for the
        # TCP connection alone (a host that drops packets is known at once); `total_timeout`:
        # every attempt of one lookup together, retries and their pauses included, so a hung
        # server costs a task at most this long before the lookup fails.
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.total_timeout = float(total_timeout)
        self.cache_ttl = float(cache_ttl)
        self._transport = LookupTransport(self.base_url, token)
        # The names page's client (plugin) reuses its requests session: same proxies and trust.
        self._session = self._transport.session
        self._cache: OrderedDict[tuple[str, str], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        data = self._lookup("connections", conn_id)
        if data is None:
            return None
        return json.dumps({k: v for k, v in data.items() if k in CONNECTION_KEYS})

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        data = self._lookup("variables", key)
        return None if data is None else data.get("value")

    def get_config(self, key: str) -> str | None:
        return None

    def _lookup(self, kind: str, key: str) -> dict[str, Any] | None:
        cache_key = (kind, key)
        now = time.monotonic()
        with self._lock:
            expiry, value = self._cache.get(cache_key, (0.0, _MISSING))
            if value is not _MISSING and now < expiry:
                return value
        value = self._fetch(kind, key)
        if self.cache_ttl > 0:
            # Jitter spreads re-fetches of many workers that started together.
            ttl = self.cache_ttl * random.uniform(0.9, 1.1)
            with self._lock:
                self._cache.pop(cache_key, None)
                self._cache[cache_key] = (time.monotonic() + ttl, value)
                while len(self._cache) > MAX_CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return value

    def _fetch(self, kind: str, key: str) -> dict[str, Any] | None:
        path = f"/api/v1/lookup/{kind}/{quote(key, safe='')}"
        problem = ""
        deadline = time.monotonic() + self.total_timeout
        attempt = 0
        for attempt in range(len(RETRY_BACKOFF) + 1):
            if attempt:
                pause = RETRY_BACKOFF[attempt - 1]
                if deadline - time.monotonic() <= pause:
                    attempt -= 1
                    break  # no time left for another attempt
                time.sleep(pause)
            left = deadline - time.monotonic()
            try:
                status, content = self._transport.get(
                    path, min(self.connect_timeout, left), min(self.timeout, left)
                )
            except TransportError as exc:
                # Only the failure's kind: its text is not needed and stays out of logs.
                problem = str(exc)
                log.debug("envmanager lookup %s %r: %s", kind, key, problem)
                continue
            log.debug("envmanager lookup %s %r: HTTP %s", kind, key, status)
            if status == 200:
                try:
                    data = json.loads(content)
                except ValueError:
                    data = None
                if not isinstance(data, dict) or (kind == "variables" and "value" not in data):
                    # Not the lookup API (wrong base_url, a proxy page): an error, not "missing".
                    raise EnvManagerBackendError(f"envmanager GET {path}: unexpected 200 body")
                return data
            if status == 404:
                # Not found only when our server says so: its error body, not any 404 page.
                try:
                    body = json.loads(content)
                except ValueError:
                    body = None
                if isinstance(body, dict) and {"message", "statusCode"} <= body.keys():
                    return None
                raise EnvManagerBackendError(
                    f"envmanager GET {path}: HTTP 404 without envmanager's error body "
                    "(is base_url right?)"
                )
            if status in (401, 403):
                raise EnvManagerBackendError(
                    f"envmanager token rejected (HTTP {status}) for GET {path}"
                )
            problem = f"HTTP {status}"
            if status < 500:
                break  # other 4xx will not get better by retrying
        raise EnvManagerBackendError(
            f"envmanager lookup GET {path} failed after {attempt + 1} attempt(s): {problem}"
        )
