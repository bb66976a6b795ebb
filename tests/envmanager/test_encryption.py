import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from deployments.models import Deployment
from envmanager.kernel.encryption import encrypted_fields
from envmanager.models import EnvironmentObject, Link
from envmanager.services import environment_object_create, link_create

SECRETS = ["p@ss:/w#rd%é", "s3cr3t-variable-value", "TOP_SECRET_ENV", "metrics-token-123"]


def _raw_rows(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
        return json.dumps(cursor.fetchall(), default=str)


@pytest.fixture
def stored_secrets(team):
    workspace, user = team.workspace, team.owner
    conn = environment_object_create(
        user=user,
        workspace=workspace,
        object_type="CONNECTION",
        key="warehouse",
        values={
            "conn_type": "postgres",
            "host": "db.internal",
            "password": SECRETS[0],
            "extra": {"sslkey": "extra-secret-xyz"},
        },
    )
    environment_object_create(
        user=user,
        workspace=workspace,
        object_type="AIRFLOW_VARIABLE",
        key="api_key",
        values={"value": SECRETS[1], "is_secret": True},
    )
    environment_object_create(
        user=user,
        workspace=workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="TOKEN",
        values={"value": SECRETS[2], "is_secret": True},
    )
    environment_object_create(
        user=user,
        workspace=workspace,
        object_type="METRICS_EXPORT",
        key="prom",
        values={
            "endpoint": "https://prom.example.com/api/v1/write",
            "auth_type": "AUTH_TOKEN",
            "basic_token": SECRETS[3],
        },
    )
    link_create(
        user=user,
        obj=conn,
        deployment=team.deployment,
        overrides={"password": "override-secret-777"},
    )
    # Stored as the service stores them (the URL's own checks are tested elsewhere).
    Deployment.objects.filter(pk=team.deployment.pk).update(
        metadata_db_url="postgresql://airflow:dbpass-999@db/airflow",
        fernet_key=Fernet.generate_key().decode(),
    )
    return team


def test_no_secret_is_stored_in_plaintext(stored_secrets):
    raw = "".join(
        _raw_rows(t)
        for t in ("envmanager_environmentobject", "envmanager_link", "deployments_deployment")
    )
    fernet_key = Deployment.objects.get(pk=stored_secrets.deployment.pk).fernet_key
    for secret in [*SECRETS, "extra-secret-xyz", "override-secret-777", "dbpass-999", fernet_key]:
        assert secret not in raw
        assert json.dumps(secret)[1:-1] not in raw


def test_secrets_read_back_decrypted(stored_secrets):
    conn = EnvironmentObject.objects.get(key="warehouse")
    assert conn.values["password"] == SECRETS[0]
    assert Link.objects.get(environment_object=conn).overrides == {
        "password": "override-secret-777"
    }


def test_rotation_reencrypts_everything_with_the_new_key(stored_secrets, settings):
    old_key = settings.ENVMANAGER_ENCRYPTION_KEYS[0]
    before = _raw_rows("envmanager_environmentobject")
    new_key = Fernet.generate_key().decode()
    settings.ENVMANAGER_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys")
    assert _raw_rows("envmanager_environmentobject") != before
    settings.ENVMANAGER_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert EnvironmentObject.objects.get(key="warehouse").values["password"] == SECRETS[0]
    assert Deployment.objects.get(pk=stored_secrets.deployment.pk).metadata_db_url.startswith(
        "postgresql://airflow:dbpass-999@"
    )


def test_a_missing_key_is_a_clear_error_without_the_secret(stored_secrets, settings):
    settings.ENVMANAGER_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ImproperlyConfigured) as error:
        EnvironmentObject.objects.get(key="warehouse").values  # noqa: B018
    assert "ENVMANAGER_ENCRYPTION_KEYS" in str(error.value)


def test_every_secret_column_is_known_to_rotation():
    found = {model._meta.label: set(names) for model, names in encrypted_fields()}
    assert found == {
        "deployments.Deployment": {"metadata_db_url", "fernet_key"},
        "envmanager.EnvironmentObject": {"values"},
        "envmanager.Link": {"overrides"},
        "envmanager.MigrationItem": {"source_row", "previous_overrides"},
        "envmanager.ObjectVersion": {"snapshot"},
    }
