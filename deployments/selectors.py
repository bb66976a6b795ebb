from django.http import Http404

from deployments.models import Deployment


def deployment_for_user(user, deployment_id, workspace=None) -> Deployment:
    """A Deployment of one of the user's Workspaces; anything else is a 404."""
    deployments = Deployment.objects.visible_to(user).select_related("workspace")
    if workspace is not None:
        deployments = deployments.filter(workspace=workspace)
    try:
        return deployments.get(pk=int(deployment_id))
    except (Deployment.DoesNotExist, TypeError, ValueError):
        raise Http404("No such Deployment.") from None
