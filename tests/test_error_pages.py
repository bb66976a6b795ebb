"""What a request gets when it goes wrong: JSON for the API, a page in our layout for a browser,
never a traceback or a secret."""

import pytest
from django.test import Client


@pytest.fixture
def failing(settings):
    settings.ROOT_URLCONF = "tests.error_urls"
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    return client


def test_an_api_path_that_does_not_exist_answers_our_json_error(api, team):
    for path in (
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects/abc",
        "/api/v1/migrations/abc",
        "/api/v1/nothing-here",
    ):
        response = api.as_user(team.owner).get(path)
        assert response.status_code == 404
        body = response.json()
        assert body["statusCode"] == 404 and body["message"] and body["requestId"]


def test_a_page_that_does_not_exist_is_a_page_in_our_layout(team):
    client = Client()
    client.force_login(team.member)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Not found" in page and 'href="/"' in page and "topbar" in page


def test_a_failing_page_is_our_500_page_without_the_error(failing, team, caplog):
    failing.force_login(team.member)
    response = failing.get("/broken/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page and "topbar" in page
    assert "err-page-S3CRET" not in page and "Traceback" not in page


def test_a_failing_api_call_is_our_json_500_without_the_error(failing):
    response = failing.get("/api/v1/broken")
    assert response.status_code == 500
    assert response.json()["statusCode"] == 500
    assert "err-page-S3CRET" not in response.content.decode()


def test_the_favicon_is_ours(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert b"<svg" in b"".join(response.streaming_content)
