"""Airflow connection URIs (`postgres://user:pa%2Fss@host:5432/db?sslmode=require`), parsed as
Airflow's `Connection(uri=…)` does. `airflow_files.connection_to_uri` writes them."""

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from envmanager.kernel.json_limits import parse_json

EXTRA_KEY = "__extra__"


def _conn_type(scheme: str) -> str:
    conn_type = scheme.replace("-", "_")
    return "postgres" if conn_type == "postgresql" else conn_type


def parse_connection_uri(uri: str) -> dict[str, Any]:
    """Our connection values from an Airflow connection URI; ValueError when it is not one
    (the message never repeats the URI, which may hold a password)."""
    uri = uri.strip()
    if uri.count("://") > 2 or "://" not in uri:
        raise ValueError("Not an Airflow connection URI (expected type://…).")
    scheme = uri.split("://", 1)[0]
    if not scheme:
        raise ValueError("The URI has no connection type (its scheme).")
    host_with_protocol = uri.count("://") == 2
    rest = uri.replace(f"{scheme}://", "" if host_with_protocol else "//", 1)
    protocol = None
    if host_with_protocol:
        protocol, after = rest.split("://", 1)
        if "@" in protocol or ":" in protocol:
            raise ValueError("Not a valid Airflow connection URI.")
        rest = "//" + after
    try:
        parts = urlsplit(rest)
        port = parts.port
    except ValueError:
        raise ValueError("The URI's port is not a number from 0 to 65535.") from None
    host = unquote(parts.hostname or "")
    if "/" in host:  # a quoted path-like host: take it from the netloc, as Airflow does
        host = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        host = unquote(host)
    if host and protocol:
        host = f"{protocol}://{host}"
    extra: dict[str, Any] | None = None  # no query: no extra, as Airflow has it
    if parts.query:
        extra = {}
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if EXTRA_KEY in query:
            try:
                extra = parse_json(query[EXTRA_KEY])
            except ValueError:
                raise ValueError("The URI's __extra__ is not valid JSON.") from None
            if not isinstance(extra, dict):
                raise ValueError("The URI's __extra__ must be a JSON object.")
        else:
            for key, value in query.items():
                try:
                    extra[key] = parse_json(value) if value else value
                except ValueError:
                    extra[key] = value
    # Unset and empty as Airflow's `Connection(uri=…)` leaves them: host and schema are empty
    # text when the URI has none; the login unset unless the URI has one (`//@host` gives an
    # empty login); the password unset unless it has one (Airflow keeps no empty password
    # from a URI); no description.
    return {
        "conn_type": _conn_type(scheme),
        "description": None,
        "host": host,
        "schema": unquote(parts.path[1:]) if parts.path else "",
        "login": unquote(parts.username) if parts.username else parts.username,
        "password": unquote(parts.password) if parts.password else None,
        "port": port,
        "extra": extra,
    }
