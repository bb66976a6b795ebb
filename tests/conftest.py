"""Shared fixtures: a Workspace with one user per role, two Deployments, and a second
Workspace with its own Owner (to check that tenants never see each other)."""

from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from rest_framework.test import APIClient

from accounts.models import Role, User, Workspace
from accounts.services import membership_set, workspace_create
from deployments.models import Deployment
from deployments.services import deployment_create

TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _encryption_keys(settings):
    settings.ENVMANAGER_ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]
    settings.ENVMANAGER_PROPAGATION_SECONDS = 0
    # Hashing passwords properly is slow by design; tests only need it to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Team:
    workspace: Workspace
    owner: User
    operator: User
    author: User
    member: User
    deployment: Deployment
    other_deployment: Deployment

    def user(self, role: str) -> User:
        return getattr(self, role.lower())


def make_user(email: str, password: str = "pw-for-tests-123") -> User:
    return User.objects.create_user(email=email, password=password)


def make_team(name: str = "Data Platform", prefix: str = "") -> Team:
    owner = make_user(f"{prefix}owner@example.com")
    workspace = workspace_create(user=owner, name=name)
    users = {}
    for role in (Role.OPERATOR, Role.AUTHOR, Role.MEMBER):
        users[role] = make_user(f"{prefix}{role.lower()}@example.com")
        membership_set(actor=owner, workspace=workspace, email=users[role].email, role=role)
    deployment = deployment_create(user=owner, workspace=workspace, name="production")
    other = deployment_create(user=owner, workspace=workspace, name="staging")
    return Team(
        workspace=workspace,
        owner=owner,
        operator=users[Role.OPERATOR],
        author=users[Role.AUTHOR],
        member=users[Role.MEMBER],
        deployment=deployment,
        other_deployment=other,
    )


@pytest.fixture
def team(db) -> Team:
    return make_team()


@pytest.fixture
def other_team(db) -> Team:
    return make_team(name="Other Company", prefix="other-")


@pytest.fixture
def api(db):
    """An API client; `api.as_user(user)` signs it in with the session."""

    client = APIClient()

    def as_user(user: User) -> APIClient:
        client.force_authenticate(user=user)
        return client

    client.as_user = as_user
    return client
