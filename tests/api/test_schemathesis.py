"""Schemathesis against our OpenAPI schema: every operation it describes gets a bounded number of
generated requests (valid and invalid bodies, query strings and headers) sent through the WSGI
application as a Workspace Owner with a personal API token, with path parameters pointing at real
rows. No request may end in a server error, and every answer must be one the schema describes.

Schemathesis' coverage phase sends each operation its boundary and invalid values, its fuzzing
phase `max-examples` generated requests more; with a fixed seed that is about 2,900 requests,
the same every run, in under a minute on a two-core machine, so it runs with the rest of the
suite.
"""

import json
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from accounts.services import api_token_create
from deployments.services import deployment_token_create
from envmanager.models import MigrationItem, MigrationRun, ObjectVersion
from envmanager.services import environment_object_create, environment_object_update, link_create
from envmanager.wsgi import application
from tests.api.conftest import STORED

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261124,
        "suppress-health-check": ["all"],
        "generation": {"max-examples": 15, "deterministic": True, "database": "none"},
    }
)


def _openapi() -> dict:
    """The schema `/api/v1/schema/` serves, generated in-process (no request, no database)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG)
schema.app = application

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Seeded:
    token: str
    ids: dict[str, int]
    promotable_id: int
    revocable_token_id: int


@pytest.fixture
def seeded(team) -> Seeded:
    """A Workspace with one object of each type (one linked with an override and with a
    version to restore), a Deployment-scoped object to promote, a Deployment token and a failed
    migration run; the Owner's personal API token, and a second one to revoke (never the one
    the requests authenticate with). Member removal targets the Member, never the Owner."""
    owner, workspace = team.owner, team.workspace
    objects = {
        object_type: environment_object_create(
            user=owner,
            workspace=workspace,
            object_type=object_type,
            key=key,
            values=STORED[object_type],
        )
        for object_type, key in (
            ("CONNECTION", "warehouse"),
            ("AIRFLOW_VARIABLE", "partner_api_key"),
            ("ENVIRONMENT_VARIABLE", "SERVICE_TOKEN"),
            ("METRICS_EXPORT", "prometheus"),
        )
    }
    conn = objects["CONNECTION"]
    environment_object_update(user=owner, obj=conn, values={**STORED["CONNECTION"], "port": 6432})
    link_create(user=owner, obj=conn, deployment=team.deployment, overrides={"login": "prod"})
    promotable = environment_object_create(
        user=owner,
        workspace=workspace,
        object_type="CONNECTION",
        key="deployment_only",
        values={"conn_type": "http", "host": "api.example.com"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    token, _ = deployment_token_create(user=owner, deployment=team.deployment, name="airflow")
    run = MigrationRun.objects.create(
        workspace=workspace,
        deployment=team.other_deployment,
        object_type="CONNECTION",
        status=MigrationRun.Status.FAILED,
        created_by=owner,
    )
    MigrationItem.objects.create(
        run=run, object_key="warehouse", state=MigrationItem.State.FAILED, reason="Unreachable."
    )
    _, plain = api_token_create(user=owner, name="schemathesis")
    revocable, _ = api_token_create(user=owner, name="to-revoke")
    return Seeded(
        token=plain,
        ids={
            "workspace_id": workspace.pk,
            "deployment_id": team.deployment.pk,
            "object_id": conn.pk,
            "version_id": ObjectVersion.objects.filter(environment_object_id=conn.pk)
            .order_by("created_at")
            .first()
            .pk,
            "token_id": token.pk,
            "run_id": run.pk,
            "user_id": team.member.pk,
        },
        promotable_id=promotable.pk,
        revocable_token_id=revocable.pk,
    )


@pytest.fixture
def in_process():
    """Requests handled in the test's own thread and database transaction, as Django's test
    client does: the end of a request must not close the connection the test is using."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
def test_generated_requests_get_no_server_error_and_match_the_schema(case, seeded, in_process):
    real = dict(seeded.ids)
    if case.path.endswith("/promote"):
        real["object_id"] = seeded.promotable_id
    if case.path.startswith("/api/v1/me/tokens/"):
        real["token_id"] = seeded.revocable_token_id
    case.path_parameters = {
        name: real.get(name, value) for name, value in (case.path_parameters or {}).items()
    }
    response = case.call(headers={"Authorization": f"Bearer {seeded.token}"})
    case.validate_response(response, checks=CHECKS)


def test_the_schema_under_test_is_the_one_served(api, team):
    served = api.as_user(team.member).get("/api/v1/schema/", {"format": "json"})
    assert served.json() == _openapi()
