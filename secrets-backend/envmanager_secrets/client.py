"""What every `envmanager-env` subcommand stands on: the settings it reads, its exit codes and
failure, fetching a Deployment's environment document (retrying an unreachable server within a
bound) and the process environment made from it. The subcommands' modules (`env`, `watch`,
`prometheus`, `pull`) import this one; it imports none of them."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from typing import Any

import requests

BACKEND = "envmanager_secrets.EnvManagerSecretsBackend"
ENVIRONMENT_PATH = "/api/v1/lookup/environment"
USAGE, NOT_CONFIGURED, TOKEN_REFUSED, UNREACHABLE, NOT_FOUND = 2, 3, 4, 5, 127
# Pauses between attempts while the server is unreachable: 0.5 s doubling up to 5 s.
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 5.0


class Failure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def settings() -> tuple[str, str]:
    url = os.environ.get("ENVMANAGER_URL", "").strip().rstrip("/")
    token = os.environ.get("ENVMANAGER_TOKEN", "").strip()
    if not url or not token:
        raise Failure(
            NOT_CONFIGURED,
            "Set ENVMANAGER_URL (the envmanager server, e.g. https://envmanager.example.com) "
            "and ENVMANAGER_TOKEN (a Deployment token).",
        )
    return url, token


def valid_document(document: Any) -> dict[str, Any]:
    """The document, whole, or a Failure: never a partial environment."""
    if not isinstance(document, dict):
        raise Failure(UNREACHABLE, "The server's answer is not an environment document.")
    env = document.get("environmentVariables")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise Failure(UNREACHABLE, "The server's answer has no environment variables list.")
    return document


def fetch_environment(url: str, token: str, wait: float, timeout: float = 5) -> dict[str, Any]:
    """The Deployment's resolved environment document. Retries an unreachable server or a 5xx
    for up to `wait` seconds; a refused token or a URL that is not envmanager's fails at once."""
    deadline = time.monotonic() + wait
    pause = FIRST_PAUSE
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while True:
        problem = ""
        try:
            left = max(deadline - time.monotonic(), 0.1)
            resp = session.get(url + ENVIRONMENT_PATH, timeout=(min(2.0, left), min(timeout, left)))
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem = type(exc).__name__  # never the exception's text: it may name the URL's auth
        else:
            if resp.status_code == 200:
                try:
                    return valid_document(resp.json())
                except ValueError:
                    raise Failure(UNREACHABLE, "The server's answer is not JSON.") from None
            if resp.status_code in (401, 403):
                raise Failure(
                    TOKEN_REFUSED,
                    f"The server refused the token (HTTP {resp.status_code}): "
                    "is ENVMANAGER_TOKEN a Deployment token that is not revoked?",
                )
            if resp.status_code < 500:
                raise Failure(
                    UNREACHABLE,
                    f"HTTP {resp.status_code} from {ENVIRONMENT_PATH}: is ENVMANAGER_URL the "
                    "envmanager server's base URL?",
                )
            problem = f"HTTP {resp.status_code}"
        if time.monotonic() + pause > deadline:
            raise Failure(
                UNREACHABLE,
                f"envmanager did not answer within {wait:g} s ({problem}); nothing was started.",
            )
        print(f"envmanager-env: {problem}; trying again in {pause:g} s", file=sys.stderr)
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


def process_environment(
    document: dict[str, Any], url: str, token: str, base: dict[str, str]
) -> dict[str, str]:
    """`base` with the Deployment's environment variables set over it, and the secrets backend
    pointed at the same server and token unless the caller configured one already (and
    Airflow's StatsD settings for a Deployment with a metrics export: `statsd_settings`)."""
    env = dict(base)
    env.update(document["environmentVariables"])
    env.setdefault("AIRFLOW__SECRETS__BACKEND", BACKEND)
    env.setdefault(
        "AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps({"base_url": url, "token": token})
    )
    for name, value in statsd_settings(document).items():
        env.setdefault(name, value)
    return env


STATSD_SETTINGS = {
    "AIRFLOW__METRICS__STATSD_ON": "True",
    "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
    "AIRFLOW__METRICS__STATSD_PORT": "8125",
    "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
}


def statsd_settings(document: dict[str, Any]) -> dict[str, str]:
    """What `envmanager-env exec` adds (where not set already) so Airflow emits the metrics a
    Deployment's exports ship: only for a Deployment with a metrics export, and only where
    Airflow's StatsD client (the `statsd` package) is installed: without it Airflow 3 logs
    "Could not configure StatsClient" in every process and sends nothing."""
    if not document.get("metricsExports") or importlib.util.find_spec("statsd") is None:
        return {}
    return dict(STATSD_SETTINGS)
