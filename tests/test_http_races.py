"""Writes raced over HTTP against the app as it runs in production: real gunicorn with four sync
workers on a PostgreSQL database of its own. Each race fires its requests from threads released
together by a barrier (API requests with a personal token, page forms with a session and its
CSRF token), repeats for many rounds, and checks after every round what a user relies on: the
end state (read back through the API, as a client would) and that no answer is a 500.

One server for the module; each test works in a Workspace of its own, made through the API.
"""

import html
import http.client
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.gunicorn_server import AppDatabase, GunicornServer, Seeded, server_env

pytestmark = pytest.mark.postgresql

WORKERS = 4
ROUNDS = 30


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return html.unescape(self.body.decode(errors="replace"))


@dataclass
class Live:
    server: GunicornServer
    seeded: Seeded
    csrf_token: str = ""

    def send(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        form: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request on a connection of its own; a dropped connection is status 0."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        all_headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            cookies = {}
            for header in response.msg.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                cookies[name.strip()] = rest.split(";", 1)[0]
            return Answer(response.status, dict(response.getheaders()), response.read(), cookies)
        except OSError as exc:
            return Answer(0, {}, repr(exc).encode(), {})
        finally:
            conn.close()

    def api(self, method: str, path: str, body: dict | None = None, **headers: str) -> Answer:
        headers = {k.replace("_", "-"): v for k, v in headers.items()}
        headers["Authorization"] = f"Bearer {self.seeded.api_token}"
        return self.send(method, f"/api/v1{path}", body=body, headers=headers)

    def page(self, method: str, path: str, form: dict | None = None) -> Answer:
        cookie = f"sessionid={self.seeded.session_key}"
        if self.csrf_token:
            cookie += f"; csrftoken={self.csrf_token}"
        if form is not None:
            form = {**form, "csrfmiddlewaretoken": self.csrf_token}
        return self.send(method, path, form=form, headers={"Cookie": cookie})


@pytest.fixture(scope="module")
def live(tmp_path_factory, metadata_db_allowlist):
    data_dir: Path = tmp_path_factory.mktemp("http-races")
    database = AppDatabase(f"envmanager_httpraces_{os.getpid()}")
    try:
        database.create()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") or os.environ.get("ENVMANAGER_CI"):
            pytest.fail(f"PostgreSQL is unreachable at {database.server_url} under CI: {exc}")
        pytest.skip(f"PostgreSQL is unreachable at {database.server_url}: {exc}")
    server = None
    try:
        env = server_env(database.url, data_dir)
        # A migration's copy, wait and delete all run inside its start request (Celery eager).
        env["ENVMANAGER_PROPAGATION_SECONDS"] = "0"
        seeded = database.migrate_and_seed(env)
        server = GunicornServer(env, data_dir / "gunicorn.log", workers=WORKERS)
        server.start()
        live = Live(server, seeded)
        # The CSRF cookie a browser gets with its first page; every form sends it back.
        first = live.page("GET", f"/workspaces/{seeded.workspace_id}/environment/")
        assert first.status == 200, first.body[:500]
        live.csrf_token = first.cookies["csrftoken"]
        yield live
    finally:
        if server is not None:
            server.stop()
        database.drop()


def race(*calls: Callable[[], Answer]) -> list[Answer]:
    """Run every call in a thread of its own, released together; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[Answer | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], Answer]) -> None:
        barrier.wait()
        try:
            answers[index] = call()
        except Exception as exc:  # reported as a failed answer
            answers[index] = Answer(0, {}, repr(exc).encode(), {})

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def statuses(answers: list[Answer]) -> list[int]:
    return [a.status for a in answers]


def expect(answers: list[Answer], allowed: list[set[int]], live: Live, round_: int) -> None:
    """Each answer's status is one its request may give (never a 500, never no answer)."""
    got = statuses(answers)
    if all(s in ok for s, ok in zip(got, allowed, strict=True)):
        return
    bodies = [a.body[:300] for a in answers]
    pytest.fail(f"round {round_}: statuses {got}, bodies {bodies}\n{live.server.log()[-2000:]}")


def created(answer: Answer) -> dict:
    assert answer.status == 201, (answer.status, answer.body[:500])
    return answer.json()


def new_workspace(live: Live, name: str) -> int:
    return created(live.api("POST", "/workspaces", {"name": name}))["id"]


def deployment_body(name: str) -> dict:
    return {"name": name}


def connection_body(key: str, **fields: Any) -> dict:
    return {
        "objectKey": key,
        "objectType": "CONNECTION",
        "connection": {"type": "http", **fields},
    }


def resolved(live: Live, workspace: int, deployment: int, object_type: str) -> dict[str, dict]:
    """What the Deployment resolves of one type, key -> body (overrides applied)."""
    answer = live.api(
        "GET",
        f"/workspaces/{workspace}/environment-objects?deploymentId={deployment}"
        f"&resolveLinked=true&objectType={object_type}&limit=500",
    )
    assert answer.status == 200, answer.body[:500]
    return {o["objectKey"]: o for o in answer.json()["environmentObjects"]}


_TOKENS: dict[int, str] = {}


def lookups(live: Live, deployment: int, *keys: str) -> dict[str, int]:
    """What the Deployment's Airflow gets for each connection id (the secrets backend's
    lookup, with a Deployment token): 200 found, 404 not."""
    if deployment not in _TOKENS:
        made = created(live.api("POST", f"/deployments/{deployment}/tokens", {"name": "airflow"}))
        _TOKENS[deployment] = made["token"]
    bearer = {"Authorization": f"Bearer {_TOKENS[deployment]}"}
    return {
        key: live.send("GET", f"/api/v1/lookup/connections/{key}", headers=bearer).status
        for key in keys
    }


def objects_path(workspace: int) -> str:
    return f"/workspaces/{workspace}/environment-objects"


# Auto-links against Deployments created at the same moment


def test_auto_link_switched_on_while_a_deployment_is_created(live):
    """Raced: a PATCH switching an object's auto-link on, and a POST creating a Deployment.
    Asserted every round: the new Deployment resolves the object (linked, not left out)."""
    ws = new_workspace(live, "auto-link on")
    obj = created(live.api("POST", objects_path(ws), connection_body("shared")))["id"]
    path = f"{objects_path(ws)}/{obj}"
    for round_ in range(ROUNDS):
        answers = race(
            lambda r=round_: live.api("POST", f"/workspaces/{ws}/deployments", {"name": f"d{r}"}),
            lambda: live.api("PATCH", path, {"autoLinkDeployments": True}),
        )
        expect(answers, [{201}, {200}], live, round_)
        deployment = answers[0].json()["id"]
        assert "shared" in resolved(live, ws, deployment, "CONNECTION"), f"round {round_}"
        assert lookups(live, deployment, "shared") == {"shared": 200}, f"round {round_}"
        assert live.api("PATCH", path, {"autoLinkDeployments": False}).status == 200


def test_an_auto_linked_object_created_while_a_deployment_is_created(live):
    """Raced: a POST creating an auto-linked object, and a POST creating a Deployment.
    Asserted every round: the new Deployment resolves the new object."""
    ws = new_workspace(live, "auto-linked create")
    for round_ in range(ROUNDS):
        key = f"auto_{round_}"
        body = {**connection_body(key), "autoLinkDeployments": True}
        answers = race(
            lambda r=round_: live.api("POST", f"/workspaces/{ws}/deployments", {"name": f"d{r}"}),
            lambda b=body: live.api("POST", objects_path(ws), b),
        )
        expect(answers, [{201}, {201}], live, round_)
        deployment = answers[0].json()["id"]
        assert key in resolved(live, ws, deployment, "CONNECTION"), f"round {round_}"
        assert lookups(live, deployment, key) == {key: 200}, f"round {round_}"


def test_renaming_an_auto_linked_object_while_a_deployment_is_created(live):
    """Raced: a PATCH renaming an auto-linked object, and a POST creating a Deployment.
    Asserted every round: the new Deployment resolves the object under its new key and not
    under the old one, and so does every Deployment made before."""
    ws = new_workspace(live, "auto-linked rename")
    first = created(live.api("POST", f"/workspaces/{ws}/deployments", {"name": "first"}))["id"]
    body = {**connection_body("k0"), "autoLinkDeployments": True}
    obj = created(live.api("POST", objects_path(ws), body))["id"]
    for round_ in range(ROUNDS):
        old_key, new_key = f"k{round_}", f"k{round_ + 1}"
        answers = race(
            lambda r=round_: live.api("POST", f"/workspaces/{ws}/deployments", {"name": f"d{r}"}),
            lambda k=new_key: live.api("PATCH", f"{objects_path(ws)}/{obj}", {"objectKey": k}),
        )
        expect(answers, [{201}, {200}], live, round_)
        for deployment in (answers[0].json()["id"], first):
            keys = set(resolved(live, ws, deployment, "CONNECTION"))
            assert new_key in keys and old_key not in keys, f"round {round_}: {keys}"
            found = lookups(live, deployment, new_key, old_key)
            assert found == {new_key: 200, old_key: 404}, f"round {round_}: {found}"


# A link made on the page while the object is renamed


def test_a_page_link_made_while_the_object_is_renamed_carries_the_new_key(live):
    """Raced: the object page's Link form (a session and its CSRF token) linking a Deployment,
    and a PATCH renaming the object. Asserted every round: the Deployment resolves the object
    under its new key, never under the old one."""
    ws = new_workspace(live, "page link vs rename")
    obj = created(live.api("POST", objects_path(ws), connection_body("k0")))["id"]
    page = f"/workspaces/{ws}/environment/{obj}/"
    for round_ in range(ROUNDS):
        deployment = created(
            live.api("POST", f"/workspaces/{ws}/deployments", {"name": f"d{round_}"})
        )
        old_key, new_key = f"k{round_}", f"k{round_ + 1}"
        form = {"target": f"deployment:{deployment['id']}"}
        answers = race(
            lambda f=form: live.page("POST", f"{page}links/new/", f),
            lambda k=new_key: live.api("PATCH", f"{objects_path(ws)}/{obj}", {"objectKey": k}),
        )
        expect(answers, [{302}, {200}], live, round_)
        keys = set(resolved(live, ws, deployment["id"], "CONNECTION"))
        assert keys == {new_key}, f"round {round_}: {keys} (renamed {old_key} -> {new_key})"
        found = lookups(live, deployment["id"], new_key, old_key)
        assert found == {new_key: 200, old_key: 404}, f"round {round_}: {found}"


def test_a_page_unlink_while_auto_link_is_switched_on_ends_linked_or_excluded(live):
    """Raced: the object page's Unlink of one Deployment, and a PATCH switching the object's
    auto-link on. Asserted every round: the Deployment ends either linked (unlinked first,
    then auto-linked: its lookup answers) or excluded from the auto-link (auto-linked first,
    then unlinked, which excludes it: its lookup is a 404): never neither, never both."""
    ws = new_workspace(live, "page unlink vs auto-link")
    obj = created(live.api("POST", objects_path(ws), connection_body("shared")))["id"]
    path, page = f"{objects_path(ws)}/{obj}", f"/workspaces/{ws}/environment/{obj}/"
    for round_ in range(ROUNDS):
        deployment = created(
            live.api("POST", f"/workspaces/{ws}/deployments", {"name": f"d{round_}"})
        )["id"]
        form = {"target": f"deployment:{deployment}"}
        assert live.page("POST", f"{page}links/new/", form).status == 302
        link_id = re.search(
            r'action="[^"]*/links/(\d+)/unlink/"', live.page("GET", page).body.decode()
        )
        assert link_id, "the page offers to unlink it"
        answers = race(
            lambda i=link_id.group(1): live.page("POST", f"{page}links/{i}/unlink/", {}),
            lambda: live.api("PATCH", path, {"autoLinkDeployments": True}),
        )
        expect(answers, [{302}, {200}], live, round_)
        body = live.api("GET", path).json()
        excluded = {"scope": "DEPLOYMENT", "scopeEntityId": deployment} in body["excludeLinks"]
        is_linked = lookups(live, deployment, "shared") == {"shared": 200}
        assert is_linked != excluded, f"round {round_}: linked {is_linked}, excluded {excluded}"
        assert live.api("PATCH", path, {"autoLinkDeployments": False}).status == 200


# A migration against a rename of the Workspace object with its key


def test_a_migration_while_the_workspace_object_of_its_key_is_renamed(live, tmp_path):
    """Raced: a migration of Airflow connection `wh_N` from a Deployment's metadata database
    (copy, zero propagation window, delete, all in the start request), and a PATCH renaming
    the Workspace object `wh_N` (not linked to that Deployment) to `wh_N_v2`. Asserted every
    round: what Airflow's lookup answers for both keys is what the Deployment's resolved list
    names (no link left on a stale key), the renamed object keeps its host, and the Airflow
    row is kept (the item says the Deployment no longer resolves the copy) or gone, and then
    the Deployment resolves the row's host: under `wh_N` from a new object (the rename came
    first), or under `wh_N_v2` (the migration ended first and its override moved with the
    rename, as if the user had renamed it later)."""
    from deployments.airflow_metadata import create_airflow_shaped_sqlite

    rounds = 20
    ws = new_workspace(live, "migration vs rename")
    fernet_key = Fernet.generate_key().decode()
    metadata_db = tmp_path / "airflow.db"
    source = {"conn_type": "postgres", "host": "db.airflow", "login": "etl"}
    create_airflow_shaped_sqlite(
        metadata_db, fernet_key, {f"wh_{r}": source for r in range(rounds)}, {}
    )
    body = {"name": "prod", "metadataDbUrl": f"sqlite:///{metadata_db}", "fernetKey": fernet_key}
    prod = created(live.api("POST", f"/workspaces/{ws}/deployments", body))["id"]
    outcomes = []
    for round_ in range(rounds):
        key = f"wh_{round_}"
        users = created(live.api("POST", objects_path(ws), connection_body(key, host="db.user")))
        start = {"objectType": "CONNECTION", "objectKeys": [key]}
        answers = race(
            lambda s=start: live.api("POST", f"/deployments/{prod}/migrations", s),
            lambda k=key, u=users: live.api(
                "PATCH", f"{objects_path(ws)}/{u['id']}", {"objectKey": f"{k}_v2"}
            ),
        )
        expect(answers, [{202}, {200}], live, round_)
        run = live.api("GET", f"/migrations/{answers[0].json()['id']}").json()
        names = set(resolved(live, ws, prod, "CONNECTION")) & {key, f"{key}_v2"}
        found = lookups(live, prod, key, f"{key}_v2")
        assert {k for k, status in found.items() if status == 200} == names, (
            f"round {round_}: lookups {found}, resolved {names}, run {run['status']}"
        )
        renamed = live.api("GET", f"{objects_path(ws)}/{users['id']}").json()
        assert (renamed["objectKey"], renamed["connection"]["host"]) == (f"{key}_v2", "db.user")
        with sqlite3.connect(metadata_db) as db:
            row_kept = bool(
                db.execute("SELECT 1 FROM connection WHERE conn_id = ?", (key,)).fetchall()
            )
        item = run["items"][0]
        bearer = {"Authorization": f"Bearer {_TOKENS[prod]}"}
        hosts = {}
        for name in (key, f"{key}_v2"):
            lookup = live.send("GET", f"/api/v1/lookup/connections/{name}", headers=bearer)
            hosts[name] = lookup.json()["host"] if lookup.status == 200 else None
        outcome = f"round {round_}: {item}, row kept {row_kept}, lookups {hosts}"
        if row_kept:
            assert item["state"] == "KEPT_UNRESOLVED", outcome
            assert hosts[key] is None, outcome
        else:
            assert item["state"] == "DELETED", outcome
            serving = key if item["action"] == "CREATED" else f"{key}_v2"
            assert hosts[serving] == "db.airflow", outcome
        outcomes.append(f"{item['action']} {item['state']}")
    print("migration vs rename over HTTP:", {o: outcomes.count(o) for o in set(outcomes)})


# An import against a change of the secret flag


def test_an_import_with_overwrite_never_lowers_a_secret_flag_set_at_the_same_moment(live):
    """Raced: an Airflow variables file imported with overwrite (a new value for the key), and
    a PATCH setting that variable's isSecret. Asserted every round: the variable is secret, and
    lowering the flag afterwards is refused (a secret stays secret, so its value is not read
    back here; test_write_races checks the value kept)."""
    ws = new_workspace(live, "import vs secret")
    body = {
        "objectKey": "report_target",
        "objectType": "AIRFLOW_VARIABLE",
        "airflowVariable": {"value": "a", "isSecret": False},
    }
    for round_ in range(ROUNDS):
        # A secret stays secret: each round starts from a plain variable made anew.
        obj = created(live.api("POST", objects_path(ws), body))["id"]
        path = f"{objects_path(ws)}/{obj}"
        upload = {
            "filename": "variables.json",
            "content": json.dumps({"report_target": f"value-{round_}"}),
            "overwrite": True,
        }
        answers = race(
            lambda u=upload: live.api(
                "POST", f"/workspaces/{ws}/airflow-files/variables/import", u
            ),
            lambda: live.api("PATCH", path, {"airflowVariable": {"isSecret": True}}),
        )
        expect(answers, [{200, 201}, {200}], live, round_)
        now = live.api("GET", path).json()["airflowVariable"]
        assert now["isSecret"] is True, f"round {round_}: the import lowered the secret flag"
        refused = live.api("PATCH", path, {"airflowVariable": {"isSecret": False}})
        assert refused.status == 400, f"round {round_}: a secret was made plain"
        assert live.api("DELETE", path).status == 204


# Promotion


def deployment_object(live: Live, ws: int, deployment: int, key: str, host: str) -> int:
    body = {
        **connection_body(key, host=host),
        "scope": "DEPLOYMENT",
        "scopeEntityId": deployment,
    }
    return created(live.api("POST", objects_path(ws), body))["id"]


def test_two_promotes_of_one_key_from_two_deployments(live):
    """Raced: two promotes of one key, each from its own Deployment. Asserted every round: both
    answer 200 (one made the Workspace object, the other an override on it), one Workspace
    object holds the key, and each Deployment resolves the host it had before."""
    ws = new_workspace(live, "two promotes")
    prod = created(live.api("POST", f"/workspaces/{ws}/deployments", {"name": "prod"}))["id"]
    staging = created(live.api("POST", f"/workspaces/{ws}/deployments", {"name": "staging"}))["id"]
    for round_ in range(ROUNDS):
        key = f"promoted_{round_}"
        mine = deployment_object(live, ws, prod, key, "prod-host")
        theirs = deployment_object(live, ws, staging, key, "staging-host")
        answers = race(
            lambda: live.api("POST", f"{objects_path(ws)}/{mine}/promote", {}),
            lambda: live.api("POST", f"{objects_path(ws)}/{theirs}/promote", {}),
        )
        expect(answers, [{200}, {200}], live, round_)
        assert sorted(a.json()["overrideCreated"] for a in answers) == [False, True]
        listed = live.api("GET", f"{objects_path(ws)}?scope=WORKSPACE&objectKey={key}").json()
        assert listed["totalCount"] == 1, f"round {round_}: {listed['totalCount']} objects"
        for deployment, host in ((prod, "prod-host"), (staging, "staging-host")):
            got = resolved(live, ws, deployment, "CONNECTION")[key]["connection"]["host"]
            assert got == host, f"round {round_}: {got} on {deployment}"


def test_promote_against_delete_answers_404_never_500(live):
    """Raced: a promote of a Deployment's own object and a DELETE of it. Asserted every round:
    the delete answers 204 (of the object, or of the Workspace object it was just promoted
    to), the promote 200 or 404 (deleted first), and afterwards the object is gone and the
    Deployment resolves nothing for its key."""
    ws = new_workspace(live, "promote vs delete")
    prod = created(live.api("POST", f"/workspaces/{ws}/deployments", {"name": "prod"}))["id"]
    for round_ in range(ROUNDS):
        key = f"gone_{round_}"
        obj = deployment_object(live, ws, prod, key, "h")
        answers = race(
            lambda: live.api("POST", f"{objects_path(ws)}/{obj}/promote", {}),
            lambda: live.api("DELETE", f"{objects_path(ws)}/{obj}"),
        )
        expect(answers, [{200, 404}, {204}], live, round_)
        assert live.api("GET", f"{objects_path(ws)}/{obj}").status == 404, f"round {round_}"
        assert key not in resolved(live, ws, prod, "CONNECTION"), f"round {round_}"
        assert lookups(live, prod, key) == {key: 404}, f"round {round_}"


# Two saves of one object, each from what its user read


PAGE_VALUES = {"type": "postgres", "host": "db-0", "login": "etl", "description": "warehouse"}


def open_edit_page(live: Live, ws: int, obj: int) -> dict[str, str]:
    """The edit form's fields as the browser posts them back unchanged."""
    page = live.page("GET", f"/workspaces/{ws}/environment/{obj}/")
    assert page.status == 200, page.body[:500]
    opened = re.search(r'name="opened" value="([^"]*)"', page.body.decode())
    assert opened, "the edit form carries what it showed"
    shown = json.loads(html.unescape(opened.group(1)))
    return {
        "opened": html.unescape(opened.group(1)),
        **{
            name: shown[name] or "" for name in ("key", "conn_type", "host", "login", "description")
        },
    }


def test_two_page_saves_of_one_field_one_is_refused_as_changed_since_opened(live):
    """Raced: two saves of one object's edit page, both opened before either save, each
    changing the host to its own value. Asserted every round: one is saved (302), the other is
    refused with "Changed since you opened it" (200, the form again), and the stored host is
    the saved one's: never a silent revert to the other."""
    ws = new_workspace(live, "two page saves")
    obj = created(live.api("POST", objects_path(ws), connection_body("warehouse", **PAGE_VALUES)))
    page = f"/workspaces/{ws}/environment/{obj['id']}/"
    for round_ in range(ROUNDS):
        forms = [open_edit_page(live, ws, obj["id"]) for _ in range(2)]
        hosts = [f"db-{round_}-a", f"db-{round_}-b"]
        answers = race(
            *(
                lambda f=f, h=h: live.page("POST", f"{page}update/", {**f, "host": h})
                for f, h in zip(forms, hosts)
            )
        )
        expect(answers, [{200, 302}, {200, 302}], live, round_)
        assert sorted(statuses(answers)) == [200, 302], f"round {round_}: {statuses(answers)}"
        saved = hosts[statuses(answers).index(302)]
        refused = answers[statuses(answers).index(200)]
        assert "Changed since you opened it" in refused.text, f"round {round_}"
        stored = live.api("GET", f"{objects_path(ws)}/{obj['id']}").json()["connection"]
        assert stored["host"] == saved, f"round {round_}: {stored['host']} != {saved}"


def test_two_patches_with_the_same_if_match_one_is_refused_with_412(live):
    """Raced: two PATCHes of one object's host, each with the ETag of one GET made before
    either. Asserted every round: one answers 200, the other 412 with nothing changed, and the
    stored host is the 200's."""
    ws = new_workspace(live, "two if-match patches")
    obj = created(live.api("POST", objects_path(ws), connection_body("warehouse", host="db-0")))
    path = f"{objects_path(ws)}/{obj['id']}"
    for round_ in range(ROUNDS):
        etag = live.api("GET", path).headers["ETag"]
        hosts = [f"db-{round_}-a", f"db-{round_}-b"]
        answers = race(
            *(
                lambda h=h: live.api("PATCH", path, {"connection": {"host": h}}, If_Match=etag)
                for h in hosts
            )
        )
        expect(answers, [{200, 412}, {200, 412}], live, round_)
        assert sorted(statuses(answers)) == [200, 412], f"round {round_}: {statuses(answers)}"
        saved = hosts[statuses(answers).index(200)]
        stored = live.api("GET", path).json()["connection"]
        assert stored["host"] == saved, f"round {round_}: {stored['host']} != {saved}"


def test_the_server_logged_no_server_error(live):
    """After every race above: gunicorn's log holds no traceback, deadlock or 500 of ours."""
    log = live.server.log()
    assert "Traceback" not in log
    assert "deadlock" not in log
    assert '" 500 ' not in log
