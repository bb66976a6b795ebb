"""An id posted by a page that is not a whole number ("abc", "1.5", "²", "") is a 404 or a
message, never a 500, and changes nothing."""

from urllib.parse import quote

import pytest

from envmanager.models import Link
from envmanager.services import link_create
from tests.envmanager.test_environment_objects import create
from tests.pages.test_pages import browser

NOT_IDS = ["abc", "1.5", "²", "", " ", "-1", "1e3", "0x1"]


@pytest.fixture
def linked(team):
    obj = create(team, "AIRFLOW_VARIABLE", "mode", {"value": "live"}, auto_link_deployments=True)
    team.obj = obj
    team.url = f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/"
    return team


@pytest.mark.parametrize("action", ["unlink", "exclude", "override"])
@pytest.mark.parametrize("link_id", NOT_IDS)
def test_a_link_id_that_is_not_a_number_is_a_404(linked, action, link_id):
    before = sorted(Link.objects.values_list("pk", "overrides"))
    url = f"{linked.url}links/{quote(link_id, safe='')}/{action}/"
    response = browser(linked.operator).post(url)
    assert response.status_code == 404
    assert sorted(Link.objects.values_list("pk", "overrides")) == before


def test_a_link_id_of_another_object_is_a_404(linked):
    other = create(linked, "AIRFLOW_VARIABLE", "other", {"value": "1"})
    link = link_create(user=linked.owner, obj=other, deployment=linked.deployment)
    response = browser(linked.operator).post(f"{linked.url}links/{link.pk}/unlink/")
    assert response.status_code == 404
    assert Link.objects.filter(pk=link.pk).exists()


@pytest.mark.parametrize(
    "target", ["deployment:abc", "deployment:²", "ide:1.5", "deployment:", ":"]
)
def test_a_link_target_that_is_not_a_number_asks_for_a_target(linked, target):
    linked.obj.links.all().delete()
    response = browser(linked.operator).post(f"{linked.url}links/new/", {"target": target})
    assert response.status_code == 200
    assert "Choose a Deployment or IDE project." in response.content.decode()
    assert not linked.obj.links.exists()


@pytest.mark.parametrize("action", ["remove_member", "change_role"])
@pytest.mark.parametrize("user_id", NOT_IDS)
def test_a_member_id_that_is_not_a_number_is_a_404(team, action, user_id):
    step = "remove" if action == "remove_member" else "role"
    url = f"/workspaces/{team.workspace.pk}/members/{quote(user_id, safe='')}/{step}/"
    assert browser(team.owner).post(url, {"role": "OWNER"}).status_code == 404
    assert team.workspace.memberships.count() == 4
    assert team.workspace.memberships.filter(role="OWNER").count() == 1
