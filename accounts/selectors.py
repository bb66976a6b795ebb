from django.http import Http404

from accounts.models import Membership, User, Workspace


def workspace_for_user(user: User, workspace_id) -> Workspace:
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


def workspace_members(workspace: Workspace):
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__email")
    )
