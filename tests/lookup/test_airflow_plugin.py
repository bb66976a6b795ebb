"""The envmanager page inside Airflow's UI, with real parts: a real `airflow api-server` (simple
auth manager) with the secrets-backend distribution's plugin, our app on loopback, and headless
Chromium that signs in to Airflow, opens "Admin → Environment (envmanager)" and reads what the
Deployment resolves, with no secret in the page or in any response it loaded; a user who may not
read connections in Airflow is refused.

It costs about 30-40 s (most of it the API server starting), so it runs once: in the PostgreSQL
pass, the database production runs on.
"""

import json
import os
import secrets
import signal
import subprocess
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.airflow_support import (
    ROOT,
    airflow_env,
    airflow_python,
    ensure_airflow,
    make_metadata_db,
)
from tests.browser.conftest import CHROMIUM
from tests.gunicorn_server import free_port
from tests.lookup.test_airflow_e2e import app_server  # noqa: F401 (a fixture)
from tests.lookup.test_lookup_names import VALUES, env  # noqa: F401 (env is a fixture)

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.browser,
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
PAGE = "Environment (envmanager)"
# Airflow's simple auth manager: OP may read connections, VIEWER may not.
PASSWORDS = {"op": "op-pw-" + secrets.token_hex(6), "viewer": "viewer-pw-" + secrets.token_hex(6)}
# What Airflow's own metastore holds under keys envmanager also serves (shadowed rows).
METASTORE_PASSWORD = "metastore-conn-pw-S3CRET"
METASTORE_VARIABLE = "metastore-variable-S3CRET"
START_SECONDS = 90
SEED = f"""
from airflow.models import Connection, Variable
from airflow.utils.session import create_session
with create_session() as session:
    session.add(Connection(conn_id="warehouse", conn_type="postgres", host="old-db",
                           password={METASTORE_PASSWORD!r}))
    session.add(Variable(key="mode", val={METASTORE_VARIABLE!r}))
"""


def plugin_site(tmp_path: Path, venv: Path) -> str | None:
    """A folder for PYTHONPATH with this checkout's secrets-backend as an installed
    distribution (its package, and its entry points as pyproject.toml declares them), or None
    when the Airflow environment already has this checkout's plugin. The shared Airflow
    environment is never changed."""
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, importlib.util as u;"
            "d = m.distribution('envmanager-secrets');"
            "print(any(e.group == 'airflow.plugins' for e in d.entry_points));"
            "print(u.find_spec('envmanager_secrets').origin)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = probe.stdout.split()
    source = ROOT / "secrets-backend" / "envmanager_secrets"
    if probe.returncode == 0 and lines[0] == "True" and Path(lines[1]).parent == source:
        return None
    project = tomllib.loads((ROOT / "secrets-backend" / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    info = site / f"envmanager_secrets-{project['version']}.dist-info"
    info.mkdir(parents=True)
    subprocess.run(["cp", "-r", str(source), str(site)], check=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    groups = {"console_scripts": project.get("scripts", {}), **project["entry-points"]}
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items())
            for group, eps in groups.items()
        )
    )
    return str(site)


class ApiServer:
    """`airflow api-server` with one worker on a free loopback port, in a process group of its
    own (stopped with it)."""

    def __init__(self, environ: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        venv = ensure_airflow()
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [str(venv / "bin" / "airflow"), "api-server", "-H", "127.0.0.1"]
                + ["-p", str(self.port), "-w", "1"],
                env=environ,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    def wait(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow api-server exited:\n{self.text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"airflow api-server did not start:\n{self.text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def airflow_ui(env, app_server, tmp_path):  # noqa: F811 - fixtures
    """A real Airflow API server whose secrets backend reads the team's production Deployment
    from our app, with a metastore that also holds a `warehouse` connection and a `mode`
    variable (which envmanager's shadow)."""
    venv = ensure_airflow()
    fernet = Fernet.generate_key().decode()
    metastore = make_metadata_db(tmp_path, fernet_key=fernet)
    home = tmp_path / "airflow-home"
    home.mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    settings = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metastore,
        "AIRFLOW__CORE__FERNET_KEY": fernet,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "op:op,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__SECRETS__BACKEND": "envmanager_secrets.EnvManagerSecretsBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
            {"base_url": app_server, "token": env.token, "cache_ttl": 300}
        ),
    }
    site = plugin_site(tmp_path, venv)
    if site:
        settings["PYTHONPATH"] = site
    server = ApiServer(airflow_env(home, settings), tmp_path / "api-server.log")
    try:
        # While the API server starts: the metastore rows, through Airflow's own models.
        seeded = airflow_python(SEED, settings, home)
        assert seeded.returncode == 0, seeded.stderr[-2000:]
        yield server
    finally:
        server.stop()


def sign_in(page, base: str, user: str) -> None:
    page.goto(f"{base}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def bodies(responses) -> dict[str, str]:
    """URL -> body of every response that has one (redirects have none)."""
    texts = {}
    for response in responses:
        try:
            texts[response.url] = response.body().decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - redirects and aborted requests have no body
            continue
    return texts


def test_a_dag_author_sees_what_the_deployment_resolves_inside_airflow(
    env,  # noqa: F811 - the fixture
    app_server,  # noqa: F811 - the fixture
    airflow_ui,
    tmp_path,
):
    from playwright.sync_api import sync_playwright

    ws = env.workspace.pk
    ids = {key: obj.pk for key, obj in env.objects.items()}
    secrets_of_the_run = [*VALUES, env.token, METASTORE_PASSWORD, METASTORE_VARIABLE]
    secrets_of_the_run += list(PASSWORDS.values())
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        airflow_ui.wait()  # Chromium started while the API server did
        base = airflow_ui.url
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        context.set_default_timeout(20_000)
        responses = []
        context.on("response", lambda response: responses.append(response))
        page = context.new_page()
        sign_in(page, base, "op")

        # The nav entry, under Admin beside Airflow's own Connections.
        page.get_by_role("button", name="Admin").click()
        page.get_by_role("menuitem", name=PAGE).click()
        page.wait_for_url(f"{base}/plugin/envmanager")
        frame = page.frame_locator(f'iframe[title="{PAGE}"]')
        warehouse = frame.locator('#connections tr[data-key="warehouse"]')
        warehouse.wait_for()

        row = warehouse.inner_text()
        assert "Workspace object with a Deployment override" in row
        assert "overrides extra.token, host, password" in row
        assert "postgres" in row and "prod-db.internal" in row  # the override's host
        assert "shadows the metastore connection" in row
        api = frame.locator('#connections tr[data-key="api"]').inner_text()
        assert "Workspace object" in api and "api.example.com" in api and "shadows" not in api
        mode = frame.locator('#variables tr[data-key="mode"]').inner_text()
        assert "shadows the metastore variable" in mode
        api_key = frame.locator('#variables tr[data-key="api_key"]').inner_text()
        assert "Deployment object" in api_key and "secret" in api_key
        env_keys = frame.locator("#environmentVariables tr[data-key]")
        assert [env_keys.nth(i).get_attribute("data-key") for i in range(2)] == [
            "API_TOKEN",
            "REGION",
        ]
        assert frame.locator('#metricsExports tr[data-key="prom"]').count() == 1
        assert frame.locator('#connections tr[data-key="staging_only"]').count() == 0
        link = warehouse.locator("a")
        expected = f"{app_server}/workspaces/{ws}/environment/{ids['warehouse']}/"
        assert link.get_attribute("href") == expected
        page.screenshot(path=str(tmp_path / "airflow-plugin.png"))
        if os.environ.get("ENVMANAGER_PLUGIN_SCREENSHOT"):
            page.screenshot(path=os.environ["ENVMANAGER_PLUGIN_SCREENSHOT"])

        # Airflow frames the page without popups: the link still opens envmanager in a tab.
        with context.expect_page() as opened:
            link.click()
        envmanager_tab = opened.value
        envmanager_tab.wait_for_load_state()
        assert envmanager_tab.url.startswith(app_server)
        assert f"/workspaces/{ws}/environment/{ids['warehouse']}/" in envmanager_tab.url
        envmanager_tab.close()

        seen = page.content() + "".join(f.content() for f in page.frames)
        loaded = bodies(r for r in responses if r.url.startswith(base))
        assert "warehouse" in loaded[f"{base}/envmanager/"]  # the framed page is among them
        everything = seen + "".join(loaded.values())
        assert [s for s in secrets_of_the_run if s in everything] == []

        # A viewer may not read connections in Airflow: the page refuses, and says why.
        viewer = browser.new_context(viewport={"width": 1360, "height": 900})
        viewer.set_default_timeout(20_000)
        viewer_page = viewer.new_page()
        sign_in(viewer_page, base, "viewer")
        viewer_page.goto(f"{base}/plugin/envmanager")
        refused = viewer_page.frame_locator(f'iframe[title="{PAGE}"]').locator(".error")
        assert "needs permission to read connections" in refused.inner_text()
        direct = viewer.request.get(f"{base}/envmanager/")
        assert direct.status == 403 and "warehouse" not in direct.text()
        anonymous = browser.new_context().request.get(f"{base}/envmanager/")
        assert anonymous.status == 401 and "warehouse" not in anonymous.text()
        browser.close()

    log = airflow_ui.text()
    assert [s for s in secrets_of_the_run if s in log] == []
