"""What a Deployment's metadata-DB URL can reach.

The URL names a database that the *server* opens on the user's behalf, so it is a door. It
opens only onto what the operator lists in `ENVMANAGER_METADATA_DB_ALLOWLIST`:

- `host` or `host:port` entries (IPv6 as `[addr]:port`) admit PostgreSQL servers: a URL's
  host is admitted when one of its addresses is an address of a listed host (and the port
  matches, where the entry names one). The gateway then connects to that checked address, so
  a DNS answer that changes after the check cannot send it elsewhere;
- absolute directories admit SQLite files inside them, after `..` and symlinks are resolved.

Never admitted, even when listed: the app's own database (the `DATABASE_URL` database, its
SQLite file) and anything in the app's data folder outside the demo's metadata-DB folder.

Every refusal says the same thing (`MetadataDbUnusable`), whether the target is off the allowlist,
missing, unreadable, not a database or on a wrong port, so no answer tells what exists on the
server. A target's `fingerprint` names the database itself (its admitting host, port and name,
or its resolved path): one database belongs to at most one Deployment, and a migration run is
pinned to the fingerprint of the database it read.
"""

import hashlib
import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings
from django.db import connection

from envmanager.kernel.errors import InvalidInput, MetadataDbUnusable

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class MetadataDbTarget:
    """A checked metadata database: where to connect, and which database that is."""

    engine: str  # "postgresql" or "sqlite"
    identity: str  # the database itself, normalised (no credentials)
    path: str = ""  # SQLite: the resolved file
    host: str = ""  # PostgreSQL: the host as written (TLS checks the certificate against it)
    address: str = ""  # PostgreSQL: the checked address the gateway connects to
    port: int = 5432
    dbname: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    sslmode: str = "prefer"

    @property
    def fingerprint(self) -> str:
        """The database's identity as stored: unique across Deployments, pinned by runs."""
        return hashlib.sha256(self.identity.encode()).hexdigest()


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, {"metadata_db_url": message})


def metadata_db_target(url: str) -> MetadataDbTarget:
    """Check a metadata-DB URL against the allowlist and return what it reaches, or raise
    `InvalidInput` (a malformed URL, with what is wrong with its form) or `MetadataDbUnusable`
    (anything the server may not open). Touches no file and opens no connection: only DNS
    lookups of the URL's host and of the listed hosts."""
    url = (url or "").strip()
    if "\x00" in url or any(c.isspace() for c in url):
        raise _invalid("The metadata database URL may not contain spaces or control characters.")
    if url.startswith("sqlite:"):
        return _sqlite_target(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in POSTGRES_SCHEMES:
        return _postgres_target(url)
    raise _invalid(
        "The metadata database URL must be postgresql://user:password@host:port/database "
        "or sqlite:////absolute/path/airflow.db."
    )


# SQLite


def _sqlite_target(url: str) -> MetadataDbTarget:
    if not url.startswith("sqlite:////"):
        raise _invalid(
            "A SQLite metadata DB is named by its absolute path: sqlite:////path/airflow.db."
        )
    raw = url[len("sqlite:///") :]
    if "?" in raw or "#" in raw:
        raise _invalid("A SQLite metadata DB URL takes no query or fragment.")
    resolved = os.path.realpath(raw)
    if not any(_inside(resolved, folder) for folder in _allowed_folders()):
        raise MetadataDbUnusable()
    if _is_own_file(resolved):
        raise MetadataDbUnusable()
    return MetadataDbTarget(engine="sqlite", identity=f"sqlite:{resolved}", path=resolved)


def _inside(path: str, folder: str) -> bool:
    try:
        return path != folder and os.path.commonpath([path, folder]) == folder
    except ValueError:
        return False


def _allowed_folders() -> list[str]:
    return [
        os.path.realpath(entry)
        for entry in settings.ENVMANAGER_METADATA_DB_ALLOWLIST
        if entry.startswith("/")
    ]


def _is_own_file(resolved: str) -> bool:
    """The app's own SQLite file, or anything of its data folder but the demo's DB folder."""
    own = []
    if connection.vendor == "sqlite":
        own.append(os.path.realpath(str(connection.settings_dict["NAME"])))
    if resolved in own:
        return True
    data = os.path.realpath(settings.DATA_DIR)
    demo = os.path.realpath(settings.ENVMANAGER_DEMO_METADATA_DIR)
    return (resolved == data or _inside(resolved, data)) and not _inside(resolved, demo)


# PostgreSQL


@dataclass(frozen=True)
class _HostEntry:
    host: str
    port: int | None


def _canonical_host(host: str) -> str:
    host = host.strip().lower().strip("[]")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.rstrip(".")


def _host_entries() -> list[_HostEntry]:
    entries = []
    for entry in settings.ENVMANAGER_METADATA_DB_ALLOWLIST:
        if entry.startswith("/"):
            continue
        host, port = entry, None
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else None
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        try:
            entries.append(_HostEntry(_canonical_host(host), int(port) if port else None))
        except ValueError:
            continue  # an entry that is not host[:port] admits nothing
    return entries


def _addresses(host: str, port: int) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).compressed for info in infos}


def _postgres_target(url: str) -> MetadataDbTarget:
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        raise _invalid("The metadata database URL has a malformed host or port.") from None
    host = _canonical_host(parts.hostname or "")
    if not host:
        raise _invalid("The metadata database URL needs a host (sockets are not opened).")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise _invalid("The metadata database URL's host is not a host name.") from None
    dbname = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not dbname or "/" in dbname:
        raise _invalid("The metadata database URL needs a database name: …/airflow.")
    user = unquote(parts.username or "")
    if not user:
        raise _invalid("The metadata database URL needs a user name: postgresql://user@host/db.")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if set(query) - {"sslmode"} or parts.fragment:
        raise _invalid("The metadata database URL may carry only sslmode in its query.")
    sslmode = query.get("sslmode", "prefer")
    if sslmode not in SSL_MODES:
        raise _invalid(f"sslmode must be one of {', '.join(SSL_MODES)}.")
    wanted = _addresses(host, port)
    for entry in _host_entries():
        if entry.port is not None and entry.port != port:
            continue
        common = wanted & _addresses(entry.host, port)
        if not common:
            continue
        address = sorted(common)[0]
        if _is_own_database(common, port, dbname):
            raise MetadataDbUnusable()
        return MetadataDbTarget(
            engine="postgresql",
            identity=f"postgresql://{entry.host}:{port}/{dbname}",
            host=host,
            address=address,
            port=port,
            dbname=dbname,
            user=user,
            password=unquote(parts.password or ""),
            sslmode=sslmode,
        )
    raise MetadataDbUnusable()


def _is_own_database(addresses: set[str], port: int, dbname: str) -> bool:
    if connection.vendor != "postgresql":
        return False
    own = connection.settings_dict
    if str(own.get("NAME")) != dbname or int(own.get("PORT") or 5432) != port:
        return False
    own_host = own.get("HOST") or ""
    if not own_host or own_host.startswith("/"):
        # A socket: the same server answers on this machine's own addresses.
        own_addresses = _addresses("localhost", port) | _addresses(socket.gethostname(), port)
        own_addresses |= {"127.0.0.1", "::1"}
    else:
        own_addresses = _addresses(own_host, port)
    if addresses & own_addresses:
        return True
    # 127.0.0.1 and ::1 reach the same server when both are this machine's.
    return _any_loopback(addresses) and _any_loopback(own_addresses)


def _any_loopback(addresses: set[str]) -> bool:
    return any(ipaddress.ip_address(a).is_loopback for a in addresses)
