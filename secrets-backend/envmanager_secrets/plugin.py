"""The Airflow 3 plugin (``airflow.plugins`` entry point "envmanager"): a page in the Airflow UI,
"Environment (envmanager)" under Admin, that lists what the Deployment resolves from envmanager
(keys, where each comes from, a connection's type and host, which metastore rows they shadow)
and never a value.

A FastAPI app mounted on the API server at ``/envmanager/`` serves the page; an external view
with a ``url_route`` shows it inside the UI. Only users Airflow's auth manager lets read
connections see it. It reads the names lookup with the secrets backend Airflow configured
(``[secrets] backend`` / ``backend_kwargs``: its URL, token and time bounds) and keeps the
answer for the backend's ``cache_ttl``.

Airflow loads plugins in every process, task runs too (for macros), so importing this module
costs nothing: the FastAPI app is built the first time the API server asks for it.
"""

from __future__ import annotations

import functools
import logging
import secrets
from typing import Any

try:
    from airflow.plugins_manager import AirflowPlugin
except ImportError:  # pragma: no cover - a worker with only the Task SDK installed
    from airflow.sdk.plugins_manager import AirflowPlugin  # type: ignore[no-redef]

from envmanager_secrets.backend import EnvManagerBackendError, EnvManagerSecretsBackend
from envmanager_secrets.names import names_cache
from envmanager_secrets.page import render_page

log = logging.getLogger(__name__)

URL_PREFIX = "/envmanager"
# In Airflow's own metastore: the key column of each type that has one.
METASTORE_KINDS = ("connections", "variables")
CHUNK = 500


def headers(nonce: str = "") -> dict[str, str]:
    """Our own styles and our one script only, no request anywhere; framed by Airflow only."""
    script = f"script-src 'nonce-{nonce}'; " if nonce else ""
    return {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            f"default-src 'none'; {script}style-src 'unsafe-inline'; frame-ancestors 'self'; "
            "base-uri 'none'; form-action 'none'"
        ),
        "Referrer-Policy": "no-referrer",
    }


REFUSED = {
    401: "Sign in to Airflow to see this page.",
    403: "You may not see this page: it needs permission to read connections in Airflow.",
}


def configured_backend() -> EnvManagerSecretsBackend | None:
    """The envmanager backend among the secrets backends this Airflow process uses, or None."""
    from airflow.configuration import ensure_secrets_loaded

    for backend in ensure_secrets_loaded():
        if isinstance(backend, EnvManagerSecretsBackend):
            return backend
    return None


def metastore_keys(document: dict[str, Any]) -> dict[str, set[str]]:
    """Of the connections and variables envmanager serves, those with a row of the same key in
    Airflow's metastore: Airflow never reads those rows while envmanager serves the key."""
    from airflow.models import Connection, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    columns = {"connections": Connection.conn_id, "variables": Variable.key}
    found: dict[str, set[str]] = {}
    with create_session() as session:
        for kind in METASTORE_KINDS:
            keys = [e["key"] for e in document.get(kind, []) if isinstance(e.get("key"), str)]
            found[kind] = set()
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                column = columns[kind]
                found[kind].update(session.scalars(select(column).where(column.in_(chunk))))
    return found


def page_html(nonce: str = "") -> str:
    """The page for a user Airflow has let through."""
    from airflow.configuration import conf

    backend = configured_backend()
    if backend is None:
        return render_page(
            document=None,
            shadowed={},
            ui_url="",
            nonce=nonce,
            error="This Airflow does not use the envmanager secrets backend: set [secrets] "
            "backend = envmanager_secrets.EnvManagerSecretsBackend and its backend_kwargs.",
        )
    ui_url = conf.get("envmanager", "ui_url", fallback="") or backend.base_url
    try:
        document, read_at = names_cache.get(backend)
    except EnvManagerBackendError as exc:
        # The message names the path and the status, never the token.
        return render_page(
            document=None,
            shadowed={},
            ui_url=ui_url,
            nonce=nonce,
            error=f"envmanager did not answer: {exc}",
        )
    error = ""
    try:
        shadowed = metastore_keys(document)
    except Exception as exc:  # noqa: BLE001 - the list is still worth showing
        log.warning("envmanager page: metastore not read: %s", type(exc).__name__)
        shadowed = {}
        error = "Airflow's metastore could not be read: shadowed rows are not shown."
    return render_page(
        document=document,
        shadowed=shadowed,
        ui_url=ui_url,
        read_at=read_at,
        cache_ttl=backend.cache_ttl,
        error=error,
        nonce=nonce,
    )


@functools.cache
def fastapi_app() -> Any:
    """The page's FastAPI app; the API server mounts it at URL_PREFIX."""
    from airflow.api_fastapi.core_api.security import requires_access_connection
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="envmanager", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Any:
        if exc.status_code in REFUSED:
            message = REFUSED[exc.status_code]
            page = render_page(document=None, shadowed={}, ui_url="", error=message)
            return HTMLResponse(page, status_code=exc.status_code, headers=headers())
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers())

    # Airflow's own check, as its connections list uses: the auth manager decides.
    @app.get("/", dependencies=[Depends(requires_access_connection(method="GET"))])
    def environment_page() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(page_html(nonce), headers=headers(nonce))

    return app


class EnvManagerPlugin(AirflowPlugin):
    name = "envmanager"
    external_views = [
        {
            "name": "Environment (envmanager)",
            # Relative to the UI's base URL: the app below, shown in a frame at /plugin/envmanager.
            "href": "envmanager/",
            "url_route": "envmanager",
            "destination": "nav",
            "category": "admin",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": fastapi_app(), "url_prefix": URL_PREFIX, "name": "envmanager"}]
