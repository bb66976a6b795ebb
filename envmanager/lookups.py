"""What a running Airflow reads: one connection, one variable, or the whole resolved
environment of its Deployment, for a Deployment token. This is the hot path of every task, so
a lookup costs two indexed queries (token, then the key) and never rebuilds the environment.

Nothing is cached across requests: a change is visible the moment it commits. Lookups are
counted per token and key in memory and written in batches.
"""

import hashlib
import json
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Max, Sum
from django.utils import timezone

from accounts.models import hash_token
from deployments.models import DeploymentToken
from envmanager.models import Link, LookupCount
from envmanager.object_types import ObjectType
from envmanager.selectors import deployment_resolve_one, deployment_resolved_environment

LAST_USED_RESOLUTION = timedelta(minutes=1)
COUNT_FLUSH_SECONDS = 10


def token_for(plain: str | None) -> DeploymentToken | None:
    """The active Deployment token for a bearer value, or None."""
    if not plain or not plain.startswith("emd_"):
        return None
    token = (
        DeploymentToken.objects.filter(token_hash=hash_token(plain), revoked_at__isnull=True)
        .only("id", "deployment_id", "last_used_at", "name", "hint")
        .first()
    )
    if token is not None:
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            DeploymentToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def airflow_connection(values: dict[str, Any]) -> dict[str, Any]:
    """A connection as Airflow's `get_conn_value` JSON: exactly these eight keys, empty text
    as null (as Airflow's own metastore has it), extra as a JSON string."""
    extra = values.get("extra") or {}
    return {
        "conn_type": values.get("conn_type") or None,
        "description": values.get("description") or None,
        "host": values.get("host") or None,
        "login": values.get("login") or None,
        "password": values.get("password") or None,
        "schema": values.get("schema") or None,
        "port": values.get("port"),
        "extra": json.dumps(extra) if extra else None,
    }


def lookup_connection(token: DeploymentToken, conn_id: str) -> dict[str, Any] | None:
    item = deployment_resolve_one(token.deployment_id, ObjectType.CONNECTION, conn_id)
    lookup_counter.add(token.pk, ObjectType.CONNECTION, conn_id, item is not None)
    return airflow_connection(item.values) if item else None


def lookup_variable(token: DeploymentToken, key: str) -> str | None:
    item = deployment_resolve_one(token.deployment_id, ObjectType.AIRFLOW_VARIABLE, key)
    lookup_counter.add(token.pk, ObjectType.AIRFLOW_VARIABLE, key, item is not None)
    return item.values["value"] if item else None


def environment_version(deployment_id: int) -> str:
    """A version of everything a Deployment resolves, from one aggregate query: it changes
    whenever a link or a linked object is created, changed or deleted."""
    links = Link.objects.filter(deployment=deployment_id)
    agg = links.aggregate(
        n=Count("id"),
        ids=Sum("id"),
        link_at=Max("updated_at"),
        object_at=Max("environment_object__updated_at"),
        keys=Sum("environment_object_id"),
    )
    raw = "|".join(str(agg[k]) for k in ("n", "ids", "link_at", "object_at", "keys"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _dotenv_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


METRICS_FIELDS = {
    "endpoint": "endpoint",
    "exporter_type": "exporterType",
    "auth_type": "authType",
    "basic_token": "basicToken",
    "username": "username",
    "password": "password",
    "sig_v4_assume_arn": "sigV4AssumeArn",
    "sig_v4_sts_region": "sigV4StsRegion",
    "headers": "headers",
    "labels": "labels",
}


def environment_document(deployment_id: int) -> dict[str, Any]:
    """The whole resolved environment, for a Deployment's start-up."""
    resolved = deployment_resolved_environment(deployment_id)
    env_vars = {k: r.values["value"] for k, r in resolved[ObjectType.ENVIRONMENT_VARIABLE].items()}
    return {
        "connections": {
            k: airflow_connection(r.values) for k, r in resolved[ObjectType.CONNECTION].items()
        },
        "variables": {
            k: r.values["value"] for k, r in resolved[ObjectType.AIRFLOW_VARIABLE].items()
        },
        "environmentVariables": env_vars,
        "dotenv": "".join(f"{k}={_dotenv_value(v)}\n" for k, v in env_vars.items()),
        "metricsExports": {
            k: {METRICS_FIELDS[f]: v for f, v in r.values.items() if f in METRICS_FIELDS}
            for k, r in resolved[ObjectType.METRICS_EXPORT].items()
        },
    }


class LookupCounter:
    """Counts lookups per (token, type, key, found) in this process and adds them to the
    database at most every few seconds, so the hot path does not write per lookup."""

    def __init__(self) -> None:
        self._counts: Counter = Counter()
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()

    def add(self, token_id: int, object_type: str, key: str, found: bool) -> None:
        with self._lock:
            self._counts[(token_id, object_type, key, found)] += 1
            due = time.monotonic() - self._flushed_at >= COUNT_FLUSH_SECONDS
        if due:
            self.flush()

    def reset(self) -> None:
        with self._lock:
            self._counts = Counter()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._flushed_at = time.monotonic()
        now = timezone.now()
        valid = set(
            DeploymentToken.objects.filter(pk__in={k[0] for k in counts}).values_list(
                "pk", flat=True
            )
        )
        for (token_id, object_type, key, found), n in counts.items():
            if token_id not in valid:
                continue  # the token was deleted meanwhile
            updated = LookupCount.objects.filter(
                token_id=token_id, object_type=object_type, object_key=key, found=found
            ).update(count=F("count") + n, last_at=now)
            if not updated:
                LookupCount.objects.get_or_create(
                    token_id=token_id,
                    object_type=object_type,
                    object_key=key,
                    found=found,
                    defaults={"count": n, "last_at": now},
                )


lookup_counter = LookupCounter()
