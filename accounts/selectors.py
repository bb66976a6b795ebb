from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Membership, User, Workspace


def workspace_for_user(user: User, workspace_id: int | str) -> Workspace:
    """The Workspace if the user is a member; any other id is a 404, never a 403."""
    try:
        return Workspace.objects.visible_to(user).get(pk=int(workspace_id))
    except (Workspace.DoesNotExist, TypeError, ValueError):
        raise Http404("No such Workspace.") from None


def role_of(user: User, workspace: Workspace) -> str | None:
    return (
        Membership.objects.filter(user=user, workspace=workspace)
        .values_list("role", flat=True)
        .first()
    )


def workspace_members(workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__email")
    )


def workspace_member(workspace: Workspace, user_id: int | str | None) -> Membership:
    """The membership of one user of this Workspace, by the user's id; a user who is not a
    member (or no id at all) is a 404."""
    if user_id is None:
        raise Http404("That user is not a member of this Workspace.")
    try:
        return workspace.memberships.select_related("user").get(user_id=int(user_id))
    except (Membership.DoesNotExist, TypeError, ValueError):
        raise Http404("That user is not a member of this Workspace.") from None
