from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User, Workspace
from accounts.services import membership_set, workspace_create
from deployments.models import Deployment
from deployments.services import deployment_create, ide_project_create
from envmanager.services import environment_object_create, link_create

DEMO_PASSWORD = "envmanager-demo"
DEMO_WORKSPACE = "Demo Workspace"
DEMO_USERS = {
    Role.OWNER: "owner@demo.local",
    Role.OPERATOR: "operator@demo.local",
    Role.AUTHOR: "author@demo.local",
    Role.MEMBER: "member@demo.local",
}

# What the demo's Airflow metadata DB holds, ready to migrate. `snowflake_bi` also exists in
# the Workspace (linked to staging only), so the migration page shows it as "exists in the
# Workspace"; `warehouse` is a Workspace object linked to production already, so its stale row
# there is shadowed and shows as a conflict.
DEMO_AIRFLOW_CONNECTIONS: dict[str, dict[str, Any]] = {
    "warehouse": {
        "conn_type": "postgres",
        "host": "prod-db.internal",
        "login": "etl",
        "password": "prod-only-p@ss",
        "schema": "analytics",
        "port": 5432,
        "extra": {"sslmode": "require"},
    },
    "s3_raw": {
        "conn_type": "aws",
        "login": "AKIAEXAMPLE",
        "password": "aws/secret+key",
        "extra": {"region_name": "eu-west-1"},
    },
    "slack_alerts": {
        "conn_type": "http",
        "host": "https://hooks.slack.com",
        "password": "xoxb-demo",
    },
    "snowflake_bi": {
        "conn_type": "snowflake",
        "login": "bi",
        "password": "snow#flake",
        "schema": "PUBLIC",
        "extra": {"account": "ab12345", "warehouse": "BI_WH"},
    },
    "legacy_ftp": {"conn_type": "ftp", "host": "ftp.partner.example", "login": "anonymous"},
}
DEMO_AIRFLOW_VARIABLES = {
    "environment": "production",
    "retention_days": "30",
    "feature_flags": '{"new_loader": true, "beta_reports": false}',
    "partner_api_key": {"value": "pk_live_demo", "description": "Partner API key"},
}


class Command(BaseCommand):
    help = "Create a demo Workspace with a user of every role, Deployments and sample objects."

    def handle(self, *args: Any, **options: Any) -> None:
        if Workspace.objects.filter(name=DEMO_WORKSPACE).exists():
            self._relocate_old_demo_db()
            self.stdout.write("The demo Workspace exists already.")
            return
        # The demo's metadata DB lives in the one folder the default allowlist admits; it
        # exists before its Deployment, which tests the connection when it is saved.
        fernet_key = Fernet.generate_key().decode()
        airflow_db = settings.ENVMANAGER_DEMO_METADATA_DIR / "production.sqlite3"
        self._airflow_db(airflow_db, fernet_key)
        with transaction.atomic():
            users = {
                role: User.objects.filter(email=email).first()
                or User.objects.create_user(email=email, password=DEMO_PASSWORD)
                for role, email in DEMO_USERS.items()
            }
            owner = users[Role.OWNER]
            workspace = workspace_create(
                user=owner, name=DEMO_WORKSPACE, description="Sample data to try envmanager."
            )
            for role, user in users.items():
                if role != Role.OWNER:
                    membership_set(actor=owner, workspace=workspace, email=user.email, role=role)
            production = deployment_create(
                user=owner,
                workspace=workspace,
                name="production",
                description="Airflow 3 production",
                metadata_db_url=f"sqlite:///{airflow_db}",
                fernet_key=fernet_key,
            )
            staging = deployment_create(user=owner, workspace=workspace, name="staging")
            deployment_create(
                user=owner,
                workspace=workspace,
                name="edge-remote",
                kind=Deployment.Kind.REMOTE_EXECUTION,
            )
            ide_project_create(user=owner, workspace=workspace, name="analytics-notebooks")
            self._objects(owner, workspace, production, staging)
        self.stdout.write(self.style.SUCCESS(f"Created {DEMO_WORKSPACE}."))

    def _objects(
        self, owner: User, workspace: Workspace, production: Deployment, staging: Deployment
    ) -> None:
        warehouse = environment_object_create(
            user=owner,
            workspace=workspace,
            object_type="CONNECTION",
            key="warehouse",
            values={
                "conn_type": "postgres",
                "host": "staging-db.internal",
                "login": "etl",
                "password": "staging-pass",
                "schema": "analytics",
                "port": 5432,
                "extra": {"sslmode": "prefer"},
            },
        )
        link_create(user=owner, obj=warehouse, deployment=staging)
        link_create(
            user=owner,
            obj=warehouse,
            deployment=production,
            overrides={"host": "prod-db.internal", "password": "prod-pass"},
        )
        snowflake = environment_object_create(
            user=owner,
            workspace=workspace,
            object_type="CONNECTION",
            key="snowflake_bi",
            values={
                "conn_type": "snowflake",
                "login": "bi_staging",
                "password": "staging-snow",
                "schema": "PUBLIC",
                "extra": {"account": "ab12345", "warehouse": "BI_WH_STAGING"},
            },
        )
        link_create(user=owner, obj=snowflake, deployment=staging)
        environment_object_create(
            user=owner,
            workspace=workspace,
            object_type="AIRFLOW_VARIABLE",
            key="team_email",
            values={"value": "data-platform@example.com", "description": "Alerts go here"},
            auto_link_deployments=True,
        )
        environment_object_create(
            user=owner,
            workspace=workspace,
            object_type="ENVIRONMENT_VARIABLE",
            key="DBT_PROFILES_DIR",
            values={"value": "/usr/local/airflow/dbt"},
            auto_link_deployments=True,
        )
        environment_object_create(
            user=owner,
            workspace=workspace,
            object_type="METRICS_EXPORT",
            key="grafana-cloud",
            values={
                "endpoint": "https://prometheus.example.com/api/prom/push",
                "auth_type": "BASIC",
                "username": "12345",
                "password": "glc_demo_token",
                "labels": {"team": "data"},
            },
        )
        environment_object_create(
            user=owner,
            workspace=workspace,
            object_type="ENVIRONMENT_VARIABLE",
            key="SENTRY_DSN",
            scope="DEPLOYMENT",
            deployment=production,
            values={"value": "https://key@sentry.example.com/1", "is_secret": True},
        )

    def _relocate_old_demo_db(self) -> None:
        """A demo seeded before the allowlist kept its metadata DB in the data folder itself,
        which no URL may reach now: move it into the demo folder and point the URL there."""
        from deployments.metadata_db_target import metadata_db_target

        old = settings.DATA_DIR / "demo-airflow-production.sqlite3"
        new = settings.ENVMANAGER_DEMO_METADATA_DIR / "production.sqlite3"
        deployment = Deployment.objects.filter(
            workspace__name=DEMO_WORKSPACE, name="production"
        ).first()
        if deployment is None or not old.exists() or new.exists():
            return
        new.parent.mkdir(parents=True, exist_ok=True)
        old.rename(new)
        url = f"sqlite:///{new}"
        deployment.metadata_db_url = url
        deployment.metadata_db_fingerprint = metadata_db_target(url).fingerprint
        deployment.save(update_fields=["metadata_db_url", "metadata_db_fingerprint"])
        self.stdout.write(f"Moved the demo's metadata DB to {new}.")

    def _airflow_db(self, path: Path, fernet_key: str) -> None:
        from deployments.airflow_metadata import create_airflow_shaped_sqlite

        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        create_airflow_shaped_sqlite(
            path, fernet_key, DEMO_AIRFLOW_CONNECTIONS, DEMO_AIRFLOW_VARIABLES
        )
