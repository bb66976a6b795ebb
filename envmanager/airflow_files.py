"""Airflow's own file formats for connections and variables, both ways.

Reading follows `airflow.secrets.local_filesystem` (what `airflow connections import` and
`airflow variables import` accept); writing follows `airflow connections export` (JSON, YAML,
.env with URIs or JSON lines) and `airflow variables export` (JSON). Pure functions: they parse
and render text and never touch the database.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import yaml

from envmanager.connection_uri import EXTRA_KEY
from envmanager.kernel.json_limits import TOO_DEEP, JSONTooDeep, nests_too_deep, parse_json
from envmanager.object_types import ObjectType

MAX_FILE_BYTES = 5 * 1024 * 1024
CONNECTION_FORMATS = ("json", "yaml", "yml", "env")
VARIABLE_FORMATS = ("json", "yaml", "yml", "env")
CONNECTION_FIELDS = (
    "conn_type",
    "description",
    "host",
    "schema",
    "login",
    "password",
    "port",
    "extra",
)
_COMMENT = re.compile(r"\s*#")


class FileFormatError(ValueError):
    """The file as a whole cannot be read; the message says where and why (never a value)."""


@dataclass
class ParsedObject:
    """One connection or variable read from a file: its values, or why it cannot be used."""

    key: str
    values: dict[str, Any] = field(default_factory=dict, repr=False)
    error: str = ""


def file_format(filename: str, allowed: tuple[str, ...]) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in allowed:
        raise FileFormatError(
            f"Unsupported file type {('.' + ext) if ext else '(none)'}; use one of "
            + ", ".join(f".{e}" for e in allowed)
            + "."
        )
    return "yaml" if ext == "yml" else ext


def _text(content: bytes) -> str:
    if len(content) > MAX_FILE_BYTES:
        raise FileFormatError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"The file is not UTF-8 text (byte {exc.start}).") from None
    if not text.strip():
        raise FileFormatError("The file is empty.")
    return text


def _parse_env(text: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or _COMMENT.match(line):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value:
            raise FileFormatError(f"Line {line_no}: expected KEY=VALUE.")
        if key in entries:
            raise FileFormatError(f"Line {line_no}: {key!r} appears more than once.")
        entries[key] = value
    return entries


def _parse_mapping(text: str, fmt: str) -> dict[str, Any]:
    if fmt == "env":
        return _parse_env(text)
    if fmt == "json":
        try:
            data = parse_json(text)
        except json.JSONDecodeError as exc:  # JSONTooDeep is one too
            raise FileFormatError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise FileFormatError(f"Not valid YAML{where}.") from None
        except RecursionError:  # PyYAML recurses once per level as it builds the document
            raise FileFormatError(f"Not valid YAML: {TOO_DEEP.lower()}.") from None
        if nests_too_deep(data):
            raise FileFormatError(f"Not valid YAML: {TOO_DEEP.lower()}.")
    if not isinstance(data, dict):
        raise FileFormatError("The file must hold one object, keyed by connection id or key.")
    return {str(k): v for k, v in data.items()}


def _connection_from_dict(conn_id: str, value: dict) -> dict[str, Any]:
    allowed = {*CONNECTION_FIELDS, "extra_dejson", "conn_id"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"Unknown field(s): {', '.join(unknown)}.")
    if "extra" in value and "extra_dejson" in value:
        raise ValueError("extra and extra_dejson are mutually exclusive.")
    if value.get("conn_id", conn_id) != conn_id:
        raise ValueError("Its conn_id does not match its key.")
    extra = value.get("extra_dejson", value.get("extra"))
    if isinstance(extra, str):
        try:
            # Empty text: no extra, as Airflow reads an empty extra from a secrets backend.
            extra = parse_json(extra) if extra.strip() else None
        except JSONTooDeep:
            raise ValueError(f"Its extra is not valid JSON: {TOO_DEEP.lower()}.") from None
        except ValueError:
            raise ValueError("Its extra is not valid JSON.") from None
    # As `airflow connections import`: a field left out is unset (NULL), empty text stays
    # empty text.
    values = {name: value.get(name) for name in CONNECTION_FIELDS if name != "extra"}
    values["extra"] = extra
    return values


def _connection_from_uri(uri: str) -> dict[str, Any]:
    from envmanager.connection_uri import parse_connection_uri

    return parse_connection_uri(uri)


def parse_connections(filename: str, content: bytes) -> list[ParsedObject]:
    """Connections from an Airflow connections file; a bad entry gets an error, not the file."""
    fmt = file_format(filename, CONNECTION_FORMATS)
    parsed = []
    for conn_id, value in _parse_mapping(_text(content), fmt).items():
        try:
            if isinstance(value, str) and value.lstrip().startswith("{"):
                value = parse_json(value)  # a JSON line of `--serialization-format json`
            if isinstance(value, str):
                values = _connection_from_uri(value)
            elif isinstance(value, dict):
                values = _connection_from_dict(conn_id, value)
            else:
                raise ValueError("A connection is a URI or an object.")
            parsed.append(ParsedObject(conn_id, values))
        except ValueError as exc:
            parsed.append(ParsedObject(conn_id, error=str(exc).split("\n")[0]))
    return parsed


def parse_variables(filename: str, content: bytes) -> list[ParsedObject]:
    """Variables from an Airflow variables file. As `airflow variables import`: a value that is
    not text is stored as JSON; `{"value": …, "description": …}` carries a description."""
    fmt = file_format(filename, VARIABLE_FORMATS)
    parsed = []
    for key, value in _parse_mapping(_text(content), fmt).items():
        description = None  # as `airflow variables import`: no description is NULL
        if isinstance(value, dict) and "value" in value:
            value, description = value["value"], value.get("description")
        if not isinstance(value, str):
            value = json.dumps(value, indent=2)
        if description is not None:
            description = str(description)
        parsed.append(ParsedObject(key, {"value": value, "description": description}))
    return parsed


def parse_file(object_type: str, filename: str, content: bytes) -> list[ParsedObject]:
    if object_type == ObjectType.CONNECTION:
        return parse_connections(filename, content)
    if object_type == ObjectType.AIRFLOW_VARIABLE:
        return parse_variables(filename, content)
    raise FileFormatError("Only connections and Airflow variables have Airflow file formats.")


def _airflow_connection(values: dict[str, Any]) -> dict[str, Any]:
    """Our values as Airflow's export writes them, each as stored (unset as null, empty text
    as empty text), extra a JSON string."""
    extra = values.get("extra")
    return {
        "conn_type": values.get("conn_type") or None,
        "description": values.get("description"),
        "login": values.get("login"),
        "password": values.get("password"),
        "host": values.get("host"),
        "port": values.get("port"),
        "schema": values.get("schema"),
        "extra": None if extra is None else json.dumps(extra),
    }


def _uri_host(host: str) -> str:
    """The host quoted for a URI. Airflow reads the host with `urlsplit(…).hostname`, which
    lowercases it, so capital letters are percent-encoded: they come back as they were."""
    return "".join(f"%{ord(c):02X}" if "A" <= c <= "Z" else quote(c, safe="") for c in host)


def _flattens(extra: dict[str, Any]) -> bool:
    """Whether extra can be written as plain query parameters and read back unchanged: Airflow
    reads each parameter as JSON where it parses ("5432" becomes 5432, "true" True)."""
    if EXTRA_KEY in extra or not all(isinstance(v, str) for v in extra.values()):
        return False
    for value in extra.values():
        try:
            parse_json(value)
        except JSONTooDeep:
            return False  # JSON still, to Airflow
        except ValueError:
            continue
        return False
    return dict(parse_qsl(urlencode(extra), keep_blank_values=True)) == extra


def connection_to_uri(values: dict[str, Any]) -> str:
    """An Airflow connection URI (as `Connection.get_uri`), readable by `Connection(uri=…)`.
    Unlike Airflow's own, it keeps the case of the host and the type of every extra value; a
    URI has no place for the description, which is left out as Airflow leaves it out."""
    conn_type = (values.get("conn_type") or "").lower().replace("_", "-")
    uri = f"{conn_type}://" if conn_type else "//"
    host = values.get("host") or ""
    if "://" in host:
        protocol, rest = host.split("://", 1)
        if protocol != values.get("conn_type"):
            uri += f"{protocol}://"
            host = rest
    # An empty login is written too (`//@host`), so it reads back as empty text rather than
    # unset; so is an empty extra (`?__extra__={}`). A URI always gives a host and a schema,
    # empty when it has none, and no empty password, as Airflow reads it.
    login, password = values.get("login"), values.get("password")
    has_authority = login is not None or bool(password)
    if has_authority:
        authority = quote(login or "", safe="")
        if password:
            authority += ":" + quote(password, safe="")
        uri += authority + "@"
    host_block = _uri_host(host)
    if values.get("port"):
        host_block += (
            f":{values['port']}" if (host_block or has_authority) else f"@:{values['port']}"
        )
    if values.get("schema"):
        host_block += f"/{quote(values['schema'], safe='')}"
    uri += host_block
    extra = values.get("extra")
    if extra is not None:
        flat = bool(extra) and _flattens(extra)
        query = urlencode(extra if flat else {EXTRA_KEY: json.dumps(extra)})
        uri += f"{'/' if not values.get('schema') else ''}?{query}"
    return uri


def render_connections(
    objects: dict[str, dict[str, Any]], fmt: str, serialization: str = "uri"
) -> str:
    """Connections (conn_id → our values) as `airflow connections export` writes them."""
    fmt = file_format(f"x.{fmt}", CONNECTION_FORMATS)
    ordered = dict(sorted(objects.items()))
    if fmt == "env":
        if serialization not in ("uri", "json"):
            raise FileFormatError("The .env serialization is uri or json.")
        render = (
            connection_to_uri
            if serialization == "uri"
            else (lambda v: json.dumps(_airflow_connection(v)))
        )
        return "".join(f"{conn_id}={render(values)}\n" for conn_id, values in ordered.items())
    data = {conn_id: _airflow_connection(values) for conn_id, values in ordered.items()}
    if fmt == "yaml":
        return yaml.safe_dump(data, allow_unicode=True)
    return json.dumps(data, indent=2, ensure_ascii=False)


def _variable_file_value(value: str) -> Any:
    """A value as the variables file holds it. Airflow's import stores a non-text value as
    `json.dumps(value, indent=2)` (keys in the order of the file, which are sorted), so JSON is
    written parsed only where that gives back the very same text; any other text (compact JSON,
    "3.10") is written as text and stored unchanged."""
    try:
        decoded = parse_json(value)
    except ValueError:
        return value
    if isinstance(decoded, str) or json.dumps(decoded, indent=2, sort_keys=True) != value:
        return value
    return decoded


def render_variables(objects: dict[str, dict[str, Any]]) -> str:
    """Variables (key → our values) as `airflow variables export` writes them, each read back
    by `airflow variables import` as exactly the text we hold."""
    data = {}
    for key, values in sorted(objects.items()):
        value = _variable_file_value(values.get("value", ""))
        # Also an empty description, which `airflow variables import` reads back as ''.
        description = values.get("description")
        if description is not None or (isinstance(value, dict) and "value" in value):
            data[key] = {"value": value, "description": description}
        else:
            data[key] = value
    return json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False)
