"""A Deployment's metrics exports as a Prometheus configuration, for a Prometheus in agent mode
running beside the Deployment: it scrapes the Deployment's Airflow metrics from a StatsD to
Prometheus bridge and remote-writes them to every export, each with its own URL, auth, headers
and labels.

The configuration is JSON, which is YAML too (every string quoted, so no value is ever read as
a number, a boolean or a null), after a few `#` comment lines: no YAML library is needed and
none can misquote a value. Whatever an export holds that Prometheus would refuse (a label name
it cannot carry, a header it sets itself) is left out and said so in a comment, so one bad
field never stops the whole pipeline; a comment never holds a secret.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Max

from envmanager.lookups import environment_version
from envmanager.models import Link
from envmanager.object_types import MetricsAuth, ObjectType
from envmanager.selectors import deployment_resolved_environment

# Where collectd's write_prometheus plugin serves what its statsd plugin received (README).
DEFAULT_SCRAPE_TARGET = "127.0.0.1:9103"
DEFAULT_SCRAPE_INTERVAL = 30
SCRAPE_JOB = "airflow"
_HOSTNAME = r"[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?"
_TARGET = re.compile(rf"^(?:{_HOSTNAME}|\[[0-9A-Fa-f:.]+\]):(\d{{1,5}})$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# What an HTTP header value cannot hold (RFC 9110 5.5; Go's net/http refuses to send it).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers Prometheus refuses in `headers` (its config.go reservedHeaders, and Authorization,
# which only its auth blocks may set).
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-encoding",
        "content-length",
        "content-type",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "www-authenticate",
        "accept-encoding",
        "x-prometheus-remote-write-version",
        "x-prometheus-remote-read-version",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)


class InvalidScrapeSettings(ValueError):
    """A scrape target or interval that cannot go into a configuration; the message says why."""


@dataclass(frozen=True)
class ScrapeSettings:
    """Where the agent scrapes the Deployment's Airflow metrics, and how often."""

    target: str = DEFAULT_SCRAPE_TARGET
    interval_seconds: int = DEFAULT_SCRAPE_INTERVAL

    @classmethod
    def parse(cls, target: str | None, interval: str | None) -> "ScrapeSettings":
        """From a request's text; raises InvalidScrapeSettings."""
        target = target or DEFAULT_SCRAPE_TARGET
        match = _TARGET.match(target)
        if not match or not 0 < int(match.group(1)) < 65536:
            raise InvalidScrapeSettings(
                "The scrape target must be HOST:PORT (a host name or an IP address, and a port "
                "from 1 to 65535)."
            )
        seconds = DEFAULT_SCRAPE_INTERVAL
        if interval:
            if not interval.isascii() or not interval.isdigit() or not 1 <= int(interval) <= 3600:
                raise InvalidScrapeSettings(
                    "The scrape interval is a whole number of seconds from 1 to 3600."
                )
            seconds = int(interval)
        return cls(target=target, interval_seconds=seconds)


def _valid_url(url: Any) -> bool:
    if not isinstance(url, str) or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _auth(values: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    kind = values.get("auth_type") or MetricsAuth.NONE
    if kind == MetricsAuth.BASIC:
        return {
            "basic_auth": {
                "username": values.get("username") or "",
                "password": values.get("password") or "",
            }
        }
    if kind == MetricsAuth.AUTH_TOKEN:
        if not values.get("basic_token"):
            problems.append("its auth token is empty, so it is sent without one")
            return {}
        return {"authorization": {"type": "Bearer", "credentials": values["basic_token"]}}
    if kind == MetricsAuth.SIGV4:
        sigv4 = {}
        if values.get("sig_v4_sts_region"):
            sigv4["region"] = values["sig_v4_sts_region"]
        if values.get("sig_v4_assume_arn"):
            sigv4["role_arn"] = values["sig_v4_assume_arn"]
        return {"sigv4": sigv4}
    return {}


def _headers(values: Mapping[str, Any], problems: list[str]) -> dict[str, str]:
    headers = values.get("headers") or {}
    kept = {
        name: value
        for name, value in headers.items()
        if _HEADER_NAME.match(name)
        and name.lower() not in RESERVED_HEADERS
        and isinstance(value, str)
        and not _CONTROL.search(value)
    }
    if len(kept) < len(headers):
        # Header names and values are secret: the count only.
        left_out = len(headers) - len(kept)
        problems.append(
            f"{left_out} header(s) left out: not a valid HTTP header, or one Prometheus sets itself"
        )
    return kept


def _label_rules(values: Mapping[str, Any], problems: list[str]) -> list[dict[str, Any]]:
    rules = []
    for name, value in sorted((values.get("labels") or {}).items()):
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            problems.append(
                f"label {json.dumps(name)} left out: a Prometheus label name is letters, digits "
                "and underscores, not starting with a digit or with two underscores"
            )
            continue
        # `replace` with no source labels matches every series (regex (.*) on ""), so the label
        # is set on all of them; `$` would start a capture group reference, `$$` is a `$`.
        replacement = str(value).replace("$", "$$")
        rules.append({"action": "replace", "target_label": name, "replacement": replacement})
    return rules


def remote_write_entry(key: str, values: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list]:
    """One export's `remote_write` entry (None when it cannot have one) and what was left out."""
    problems: list[str] = []
    if values.get("exporter_type", "PROMETHEUS") != "PROMETHEUS":
        return None, ["its exporter type is not Prometheus remote write, so it is left out"]
    if not _valid_url(values.get("endpoint")):
        return None, ["its endpoint is not an http:// or https:// URL, so it is left out"]
    entry: dict[str, Any] = {"name": key, "url": values["endpoint"]}
    entry.update(_auth(values, problems))
    headers = _headers(values, problems)
    if headers:
        entry["headers"] = headers
    rules = _label_rules(values, problems)
    if rules:
        entry["write_relabel_configs"] = rules
    return entry, problems


def render(
    exports: Mapping[str, Mapping[str, Any]], scrape: ScrapeSettings, *, title: str = ""
) -> str:
    """The Prometheus configuration (YAML) for these exports (key -> resolved values): a scrape
    job for the Airflow metrics bridge and one remote write per export, in key order."""
    comments = [
        f"Prometheus configuration made by envmanager{f' for {title}' if title else ''}.",
        "Run Prometheus in agent mode (2.x: --enable-feature=agent; 3.x: --agent).",
        "It holds credentials: keep this file private (mode 0600).",
        "envmanager-env prometheus-config rewrites it when an export changes; edits are lost.",
    ]
    remote_write = []
    for key in sorted(exports):
        entry, problems = remote_write_entry(key, exports[key])
        if entry is not None:
            remote_write.append(entry)
        comments.extend(f"Export {key}: {problem}." for problem in problems)
    if not remote_write:
        comments.append("No metrics export: the agent scrapes, but sends nothing anywhere.")
    config = {
        "global": {
            "scrape_interval": f"{scrape.interval_seconds}s",
            "scrape_timeout": f"{min(scrape.interval_seconds, 10)}s",
        },
        "scrape_configs": [
            {"job_name": SCRAPE_JOB, "static_configs": [{"targets": [scrape.target]}]}
        ],
        "remote_write": remote_write,
    }
    # ensure_ascii: the file stays ASCII whatever a value holds; YAML reads \u escapes alike.
    body = json.dumps(config, indent=2, sort_keys=False, ensure_ascii=True)
    return "".join(f"# {line}\n" for line in comments) + body + "\n"


def deployment_exports(deployment_id: int) -> dict[str, dict[str, Any]]:
    """The Deployment's resolved metrics exports (overrides applied), key -> values."""
    resolved = deployment_resolved_environment(deployment_id, ObjectType.METRICS_EXPORT)
    return {key: item.values for key, item in resolved[ObjectType.METRICS_EXPORT].items()}


def prometheus_config_version(deployment_id: int, scrape: ScrapeSettings) -> str:
    """Changes whenever one of the Deployment's metrics exports, their links or the scrape
    settings change (one aggregate query): the served configuration's ETag."""
    version = environment_version(deployment_id, ObjectType.METRICS_EXPORT)
    raw = f"{version}|{scrape.target}|{scrape.interval_seconds}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def deployment_prometheus_config(deployment_id: int, scrape: ScrapeSettings) -> str:
    """The configuration a Deployment's Prometheus agent runs with."""
    return render(deployment_exports(deployment_id), scrape, title=f"Deployment {deployment_id}")


def metrics_exports_changed_at(deployment_id: int) -> datetime | None:
    """When an export the Deployment resolves, or its link, last changed (None: it has none)."""
    agg = Link.objects.filter(
        deployment=deployment_id, object_type=ObjectType.METRICS_EXPORT
    ).aggregate(link_at=Max("updated_at"), object_at=Max("environment_object__updated_at"))
    times = [t for t in agg.values() if t is not None]
    return max(times) if times else None
