"""A form that comes back with an error never holds a secret that was typed into it: not in a
password box, not in a textarea, not in the URI box. It says which secrets to type again."""

import json

import pytest

from envmanager.models import EnvironmentObject
from envmanager.services import link_create
from tests.envmanager.test_environment_objects import create
from tests.pages.test_pages import browser

TYPED = "typed-Secret-4711"


@pytest.fixture
def objects(team):
    secret = {"is_secret": True}
    team.conn = create(
        team, "CONNECTION", "warehouse", {"conn_type": "pg", "password": "stored-pw"}
    )
    team.link = link_create(user=team.owner, obj=team.conn, deployment=team.deployment)
    team.var = create(team, "AIRFLOW_VARIABLE", "api_key", {"value": "stored-value", **secret})
    team.plain = create(team, "AIRFLOW_VARIABLE", "mode", {"value": "live"})
    team.own = create(
        team,
        "ENVIRONMENT_VARIABLE",
        "TOKEN",
        {"value": "stored-env", **secret},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    return team


def env_url(team, slug: str) -> str:
    return f"/workspaces/{team.workspace.pk}/environment/?type={slug}"


def tab_url(team, slug: str) -> str:
    return f"/deployments/{team.deployment.pk}/environment/?type={slug}"


CONNECTION = {
    "new-key": "my key",
    "new-conn_type": "mysql",
    "new-host": "visible-host",
    "new-password": TYPED + "-pw",
    "new-extra": json.dumps({"token": TYPED + "-extra"}),
    "new-uri": f"mysql://u:{TYPED}-uri@h:3306/db",
}
SUBMISSIONS = {
    "connection": ("env", "connections", CONNECTION),
    "secret airflow variable": (
        "env",
        "airflow-variables",
        {"new-key": "my key", "new-value": TYPED + "\r\nline2", "new-is_secret": "on"},
    ),
    "secret environment variable": (
        "env",
        "environment-variables",
        {"new-key": "MY KEY", "new-value": TYPED, "new-is_secret": "on"},
    ),
    "metrics export": (
        "env",
        "metrics-exports",
        {
            "new-key": "my key",
            "new-endpoint": "https://prom.example.com/write",
            "new-auth_type": "BASIC",
            "new-username": "u",
            "new-password": TYPED + "-pw",
            "new-basic_token": TYPED + "-token",
            "new-headers": json.dumps({"Authorization": f"Bearer {TYPED}-header"}),
        },
    ),
    "deployment connection": ("tab", "connections", CONNECTION),
    "deployment secret environment variable": (
        "tab",
        "environment-variables",
        {"new-key": "MY KEY", "new-value": TYPED, "new-is_secret": "on"},
    ),
}


@pytest.mark.parametrize("case", list(SUBMISSIONS))
def test_a_create_form_with_an_error_holds_no_typed_secret(objects, case):
    where, slug, data = SUBMISSIONS[case]
    url = (env_url if where == "env" else tab_url)(objects, slug)
    before = EnvironmentObject.objects.count()
    response = browser(objects.operator).post(url, {"type": slug, **data})
    html = response.content.decode()
    assert response.status_code == 200 and "may contain only" in html
    assert TYPED not in html
    assert "secrets are never sent back to your browser" in html
    assert EnvironmentObject.objects.count() == before


def test_the_notice_names_the_secrets_to_type_again_and_non_secrets_stay(objects):
    response = browser(objects.operator).post(
        env_url(objects, "connections"), {"type": "connections", **CONNECTION}
    )
    html = response.content.decode()
    assert "type …or paste an Airflow connection URI, Password, Extra (JSON object) again" in html
    assert 'value="visible-host"' in html  # what is not secret is kept for the user


def test_a_variable_not_marked_secret_comes_back_as_typed(objects):
    response = browser(objects.operator).post(
        env_url(objects, "airflow-variables"),
        {"type": "airflow-variables", "new-key": "my key", "new-value": "plain-value"},
    )
    html = response.content.decode()
    assert "plain-value" in html and "never sent back" not in html


def object_url(team, obj) -> str:
    return f"/workspaces/{team.workspace.pk}/environment/{obj.pk}/"


EDITS = {
    "connection": (
        "conn",
        {
            "key": "bad key",
            "conn_type": "postgres",
            "password": TYPED + "-pw",
            "extra": json.dumps({"token": TYPED}),
            "uri": f"postgres://u:{TYPED}@h/db",
        },
    ),
    "secret variable": (
        "var",
        {"key": "bad key", "value": TYPED, "is_secret": "on"},
    ),
    "variable made secret while editing": (
        "plain",
        {"key": "bad key", "value": TYPED, "is_secret": "on"},
    ),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_an_edit_form_with_an_error_holds_no_typed_secret(objects, case):
    which, data = EDITS[case]
    obj = getattr(objects, which)
    url = f"{object_url(objects, obj)}update/"
    html = browser(objects.operator).post(url, data).content.decode()
    assert "may contain only" in html
    assert TYPED not in html and "stored-pw" not in html and "stored-value" not in html
    assert "never sent back" in html


def test_the_deployment_object_edit_form_holds_no_typed_secret(objects):
    url = f"/deployments/{objects.deployment.pk}/environment/{objects.own.pk}/update/"
    html = (
        browser(objects.operator)
        .post(url, {"key": "BAD KEY", "value": TYPED, "is_secret": "on"})
        .content.decode()
    )
    assert "may contain only" in html and TYPED not in html and "stored-env" not in html


def test_the_override_dialog_with_an_error_holds_no_typed_secret(objects):
    prefix = f"link{objects.link.pk}"
    response = browser(objects.operator).post(
        f"{object_url(objects, objects.conn)}links/{objects.link.pk}/override/",
        {
            f"{prefix}-port": "99999",
            f"{prefix}-password": TYPED + "-pw",
            f"{prefix}-extra": json.dumps({"token": TYPED + "-whole"}),
            f"{prefix}-extra_keys": json.dumps({"token": TYPED + "-key"}),
            f"{prefix}-host": "visible-override-host",
        },
    )
    html = response.content.decode()
    assert (
        "65535" in html
        and f'id="override-{objects.link.pk}" class="wide" data-open-on-load' in html
    )
    assert TYPED not in html
    assert "type Password, Extra, whole (JSON object), Override single keys of extra" in html
    assert 'value="visible-override-host"' in html
    objects.link.refresh_from_db()
    assert objects.link.overrides == {}


def test_the_link_form_with_an_error_holds_no_typed_secret_variable_value(objects):
    response = browser(objects.operator).post(
        f"{object_url(objects, objects.var)}links/new/",
        {"target": "", "link-value": TYPED + "\r\nsecond line"},
    )
    html = response.content.decode()
    assert "Choose a Deployment or IDE project." in html
    assert TYPED not in html and "never sent back" in html


def test_a_secret_variables_value_override_is_never_rendered(objects):
    from envmanager.forms import OverrideForm

    form = OverrideForm(
        {"link-value": TYPED},
        object_type="AIRFLOW_VARIABLE",
        is_secret=True,
        prefix="link",
    )
    assert TYPED not in str(form["value"])
    plain = OverrideForm(
        {"link-value": "shown"}, object_type="AIRFLOW_VARIABLE", is_secret=False, prefix="link"
    )
    assert "shown" in str(plain["value"])
