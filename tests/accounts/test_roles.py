import pytest
from guardian.shortcuts import assign_perm

from accounts.models import ROLE_PERMISSIONS, Role, WorkspacePermission
from accounts.permissions import has_deployment_perm, has_workspace_perm
from accounts.services import membership_remove, membership_set
from envmanager.kernel.errors import Conflict, NotPermitted
from tests.conftest import make_user

ALL_WORKSPACE_PERMS = ROLE_PERMISSIONS[Role.OWNER]["workspace"]


@pytest.mark.parametrize("role", Role.values)
def test_each_role_holds_exactly_its_workspace_permissions(team, role):
    user = team.user(role)
    granted = {p for p in ALL_WORKSPACE_PERMS if has_workspace_perm(user, p, team.workspace)}
    assert granted == set(ROLE_PERMISSIONS[role]["workspace"])


@pytest.mark.parametrize("role", Role.values)
def test_each_role_holds_exactly_its_deployment_permissions(team, role):
    user = team.user(role)
    for deployment in (team.deployment, team.other_deployment):
        granted = {
            p
            for p in ("view_deployment", "update_deployment", "create_deployment_tokens")
            if has_deployment_perm(user, p, deployment)
        }
        assert granted == set(ROLE_PERMISSIONS[role]["deployment"])


def test_roles_grow_from_member_to_owner():
    order = [Role.MEMBER, Role.AUTHOR, Role.OPERATOR, Role.OWNER]
    for lower, higher in zip(order, order[1:], strict=False):
        assert set(ROLE_PERMISSIONS[lower]["workspace"]) < set(
            ROLE_PERMISSIONS[higher]["workspace"]
        )


def test_only_owners_migrate_and_manage_members(team):
    for role in (Role.OPERATOR, Role.AUTHOR, Role.MEMBER):
        assert not has_workspace_perm(
            team.user(role), WorkspacePermission.MIGRATE_FROM_AIRFLOW, team.workspace
        )
    assert has_workspace_perm(team.owner, WorkspacePermission.MIGRATE_FROM_AIRFLOW, team.workspace)


def test_changing_a_role_replaces_its_permissions(team):
    membership_set(
        actor=team.owner, workspace=team.workspace, email=team.member.email, role="OPERATOR"
    )
    member = type(team.member).objects.get(pk=team.member.pk)  # fresh permission cache
    assert has_workspace_perm(member, WorkspacePermission.CREATE_ENV_OBJECTS, team.workspace)
    membership_set(actor=team.owner, workspace=team.workspace, email=member.email, role="MEMBER")
    member = type(member).objects.get(pk=member.pk)
    assert not has_workspace_perm(member, WorkspacePermission.CREATE_ENV_OBJECTS, team.workspace)
    assert has_workspace_perm(member, WorkspacePermission.VIEW, team.workspace)


def test_removed_member_loses_everything(team):
    membership_remove(actor=team.owner, workspace=team.workspace, user=team.author)
    author = type(team.author).objects.get(pk=team.author.pk)
    assert not has_workspace_perm(author, WorkspacePermission.VIEW, team.workspace)
    assert not has_deployment_perm(author, "view_deployment", team.deployment)


def test_roles_do_not_reach_another_workspace(team, other_team):
    for role in Role.values:
        user = team.user(role)
        assert not has_workspace_perm(user, WorkspacePermission.VIEW, other_team.workspace)
        assert not has_deployment_perm(user, "view_deployment", other_team.deployment)


def test_only_an_owner_manages_members(team):
    newcomer = make_user("new@example.com")
    with pytest.raises(NotPermitted):
        membership_set(
            actor=team.operator, workspace=team.workspace, email=newcomer.email, role="OWNER"
        )


def test_the_last_owner_cannot_step_down(team):
    with pytest.raises(Conflict):
        membership_set(
            actor=team.owner, workspace=team.workspace, email=team.owner.email, role="MEMBER"
        )
    with pytest.raises(Conflict):
        membership_remove(actor=team.owner, workspace=team.workspace, user=team.owner)


def test_per_deployment_grant_gives_update_on_that_deployment_only(team):
    assign_perm("deployments.update_deployment", team.author, team.deployment)
    assert has_deployment_perm(team.author, "update_deployment", team.deployment)
    assert not has_deployment_perm(team.author, "update_deployment", team.other_deployment)
    assert not has_workspace_perm(
        team.author, WorkspacePermission.CREATE_ENV_OBJECTS, team.workspace
    )
