"""`envmanager-env pull --deployment ID`: a Deployment's environment on a developer's machine.

ENVMANAGER_TOKEN is a personal API token here (not a Deployment token). Where the Workspace
allows local development, and to Authors and above, the server gives the Deployment's whole
resolved environment, secrets included (each object recorded in its audit log as revealed).

Written into --out DIR (default: the current directory), each file readable by its owner only:

    .env               the environment variables (docker compose env_file, `set -a; . .env`)
    connections.json   for `airflow connections import connections.json`
    variables.json     for `airflow variables import variables.json`

With --import, the connections and variables go straight into the local Airflow (`airflow`
on PATH, or --airflow PATH), overwriting keys it already has, and only .env is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import requests

from envmanager_secrets.client import (
    FIRST_PAUSE,
    LONGEST_PAUSE,
    TOKEN_REFUSED,
    UNREACHABLE,
    USAGE,
    Failure,
)

REFUSED, IMPORT_FAILED = 7, 8  # 6 is prometheus-config's
PULL_PATH = "/api/v1/deployments/{id}/local-development"
FIELDS = ("environmentVariables", "dotenv", "connectionsFile", "variablesFile")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _reason(resp: requests.Response) -> str:
    """The server's own message (one line, no control characters), or the status."""
    try:
        message = resp.json().get("message")
    except (ValueError, AttributeError):
        message = None
    if not isinstance(message, str) or not message:
        return f"HTTP {resp.status_code}"
    return _CONTROL.sub("", message)[:500]


def fetch_local_environment(url: str, token: str, deployment: int, wait: float) -> dict[str, Any]:
    """The pulled environment, whole, or a Failure. An unreachable server or a 5xx is tried
    again for up to `wait` seconds; a refusal fails at once with the server's reason."""
    deadline = time.monotonic() + wait
    pause = FIRST_PAUSE
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    target = url + PULL_PATH.format(id=deployment)
    while True:
        try:
            left = max(deadline - time.monotonic(), 0.1)
            resp = session.get(target, timeout=(min(2.0, left), min(30.0, left + 5)))
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem = type(exc).__name__  # never the text: it may name the URL's auth
        else:
            if resp.status_code == 200:
                try:
                    body = resp.json()
                except ValueError:
                    raise Failure(UNREACHABLE, "The server's answer is not JSON.") from None
                if not isinstance(body, dict) or any(f not in body for f in FIELDS):
                    raise Failure(UNREACHABLE, "The server's answer is not a local environment.")
                return body
            if resp.status_code == 401:
                raise Failure(
                    TOKEN_REFUSED,
                    "The server refused the token (HTTP 401): pull needs a personal API token "
                    "in ENVMANAGER_TOKEN (Account → API tokens), not a Deployment token.",
                )
            if resp.status_code in (403, 404):
                raise Failure(REFUSED, f"Refused (HTTP {resp.status_code}): {_reason(resp)}")
            if resp.status_code < 500:
                raise Failure(
                    UNREACHABLE,
                    f"HTTP {resp.status_code}: is ENVMANAGER_URL the envmanager server's base URL?",
                )
            problem = f"HTTP {resp.status_code}"
        if time.monotonic() + pause > deadline:
            raise Failure(UNREACHABLE, f"envmanager did not answer within {wait:g} s ({problem}).")
        print(f"envmanager-env: {problem}; trying again in {pause:g} s", file=sys.stderr)
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


def write_private(path: str, text: str) -> None:
    """`text` at `path`, readable and writable by its owner only, also when it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _values(body: dict[str, Any]) -> list[str]:
    """Every value pulled that could be a secret, longest first, to mask in Airflow's output."""
    found: set[str] = set(body["environmentVariables"].values())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            found.add(node)
            if node.startswith("{"):
                with contextlib.suppress(ValueError):
                    walk(json.loads(node))

    for name in ("connectionsFile", "variablesFile"):
        with contextlib.suppress(ValueError):
            walk(json.loads(body[name]))
    return sorted((v for v in found if len(v) >= 3), key=len, reverse=True)


def _masked(text: str, values: list[str]) -> str:
    for value in values:
        text = text.replace(value, "***")
    return text


def _airflow_import(airflow: str, kind: str, path: str, values: list[str]) -> None:
    overwrite = ["--action-on-existing-key", "overwrite"] if kind == "variables" else []
    options = ["--overwrite"] if kind == "connections" else overwrite
    try:
        result = subprocess.run(  # noqa: S603 - the user's own Airflow
            [airflow, kind, "import", *options, path],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except FileNotFoundError:
        raise Failure(IMPORT_FAILED, f"Airflow not found: {airflow} (--airflow PATH)") from None
    except subprocess.TimeoutExpired:
        raise Failure(IMPORT_FAILED, f"airflow {kind} import did not finish in 600 s") from None
    if result.returncode:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise Failure(
            IMPORT_FAILED,
            f"airflow {kind} import failed (exit {result.returncode}):\n{_masked(tail, values)}",
        )


def pull(url: str, token: str, deployment: int, out: str, wait: float, airflow: str | None) -> int:
    body = fetch_local_environment(url, token, deployment, wait)
    if not os.path.isdir(out):
        raise Failure(USAGE, f"No such directory: {out}")
    env_vars = body["environmentVariables"]
    connections = body["connectionsFile"]
    variables = body["variablesFile"]
    n_conns, n_vars = len(json.loads(connections)), len(json.loads(variables))
    write_private(os.path.join(out, ".env"), body["dotenv"])
    written = [".env"]
    if airflow is None:
        write_private(os.path.join(out, "connections.json"), connections)
        write_private(os.path.join(out, "variables.json"), variables)
        written += ["connections.json", "variables.json"]
    else:
        values = _values(body)
        with tempfile.TemporaryDirectory(prefix="envmanager-pull-") as private:
            for kind, text, count in (
                ("connections", connections, n_conns),
                ("variables", variables, n_vars),
            ):
                if not count:
                    continue
                path = os.path.join(private, f"{kind}.json")
                write_private(path, text)
                _airflow_import(airflow, kind, path, values)
    print(
        f"Deployment {deployment}: {len(env_vars)} environment variables, {n_conns} "
        f"connections, {n_vars} Airflow variables."
    )
    print(f"Written in {os.path.abspath(out)}: {', '.join(written)} (owner only).")
    if airflow is not None:
        print(f"Imported into the local Airflow ({airflow}): connections and variables.")
    return 0
