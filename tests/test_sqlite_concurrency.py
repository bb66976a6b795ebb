"""The embedded default (SQLite) under real gunicorn: concurrent writes wait their turn.

SQLite has one writer at a time. A transaction that starts by reading and then writes (every
API write: the token is looked up first) cannot wait for the lock once another writer holds
it; SQLite answers "database is locked" at once, which the app serves as a 503. Transactions
that take the write lock when they begin (`transaction_mode: IMMEDIATE`) wait up to the
timeout instead. Every answer here must be a success or a clean 4xx, and every success kept.
"""

import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.gunicorn_server import GunicornServer, Seeded, migrate_and_seed, server_env

PARALLEL = 16
WORKERS = 4


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data_dir: Path = tmp_path_factory.mktemp("sqlite-live")
    env = server_env(f"sqlite:///{data_dir / 'envmanager.sqlite3'}", data_dir)
    seeded = migrate_and_seed(env)
    server = GunicornServer(env, data_dir / "gunicorn.log", workers=WORKERS)
    server.start()
    try:
        yield server, seeded
    finally:
        server.stop()


def api(server: GunicornServer, seeded: Seeded, method: str, path: str, body=None):
    headers = {"Authorization": f"Bearer {seeded.api_token}"}
    status, _, content = server.request(
        method, f"/api/v1{path}", headers=headers, body=body, timeout=60
    )
    return status, json.loads(content) if content else None


def all_at_once(calls: list) -> list[tuple[int, dict | None]]:
    """Run every call in a thread of its own, released together."""
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int, call) -> None:
        start.wait()
        try:
            results[index] = call()
        except Exception as exc:  # a dropped connection is a failure, shown as such
            results[index] = (0, {"message": repr(exc)})

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_success_or_clean_4xx(results, server: GunicornServer) -> Counter:
    statuses = Counter(status for status, _ in results)
    bad = [(s, b) for s, b in results if not (200 <= s < 300 or 400 <= s < 500)]
    assert not bad, (statuses, bad[:3], server.log()[-2000:])
    for status, body in results:
        if status >= 400:
            assert {"message", "statusCode", "requestId", "fieldErrors"} <= set(body)
    return statuses


def objects_path(seeded: Seeded) -> str:
    return f"/workspaces/{seeded.workspace_id}/environment-objects"


def connection_id(server, seeded) -> int:
    path = f"{objects_path(seeded)}?objectKey={seeded.connection_key}&objectType=CONNECTION"
    _, found = api(server, seeded, "GET", path)
    return found["environmentObjects"][0]["id"]


def test_parallel_patches_of_one_object_all_succeed(live):
    server, seeded = live
    path = f"{objects_path(seeded)}/{connection_id(server, seeded)}"
    descriptions = [f"edit {i}" for i in range(PARALLEL)]
    results = all_at_once(
        [
            lambda d=d: api(server, seeded, "PATCH", path, {"connection": {"description": d}})
            for d in descriptions
        ]
    )
    statuses = assert_success_or_clean_4xx(results, server)
    assert statuses == {200: PARALLEL}, statuses
    _, now = api(server, seeded, "GET", path)
    assert now["connection"]["description"] in descriptions


def test_parallel_creates_each_land_or_are_a_clean_conflict(live):
    server, seeded = live

    def create(key: str):
        body = {
            "objectKey": key,
            "objectType": "ENVIRONMENT_VARIABLE",
            "environmentVariable": {"value": "v", "isSecret": False},
        }
        return api(server, seeded, "POST", objects_path(seeded), body)

    # Half with keys of their own, half racing for one key.
    keys = [f"PARALLEL_{i}" for i in range(PARALLEL // 2)] + ["SAME_KEY"] * (PARALLEL // 2)
    results = all_at_once([lambda k=k: create(k) for k in keys])
    statuses = assert_success_or_clean_4xx(results, server)
    assert statuses == {201: PARALLEL // 2 + 1, 409: PARALLEL // 2 - 1}, statuses
    _, listed = api(server, seeded, "GET", f"{objects_path(seeded)}?limit=100")
    stored = Counter(o["objectKey"] for o in listed["environmentObjects"])
    assert all(stored[k] == 1 for k in set(keys)), stored


def test_parallel_promotions_each_land_once(live):
    server, seeded = live
    ids = []
    for index in range(PARALLEL):
        # Pairs share a key: the second of a pair to be promoted becomes an override.
        body = {
            "objectKey": f"promoted_{index // 2}",
            "objectType": "AIRFLOW_VARIABLE",
            "scope": "DEPLOYMENT",
            "scopeEntityId": seeded.deployment_id,
            "airflowVariable": {"value": f"v{index}"},
        }
        if index % 2:  # the other of the pair on another Deployment
            body["scopeEntityId"] = other_deployment(server, seeded)
        status, created = api(server, seeded, "POST", objects_path(seeded), body)
        assert status == 201, created
        ids.append(created["id"])
    results = all_at_once(
        [
            lambda i=i: api(server, seeded, "POST", f"{objects_path(seeded)}/{i}/promote", {})
            for i in ids
        ]
    )
    statuses = assert_success_or_clean_4xx(results, server)
    assert statuses == {200: PARALLEL}, statuses
    overrides = Counter(body["overrideCreated"] for _, body in results)
    assert overrides == {False: PARALLEL // 2, True: PARALLEL // 2}, overrides
    _, listed = api(
        server, seeded, "GET", f"{objects_path(seeded)}?scope=WORKSPACE&objectType=AIRFLOW_VARIABLE"
    )
    workspace_keys = Counter(o["objectKey"] for o in listed["environmentObjects"])
    assert workspace_keys == {f"promoted_{i}": 1 for i in range(PARALLEL // 2)}


_OTHER: dict[int, int] = {}


def other_deployment(server, seeded) -> int:
    """A second Deployment of the seeded Workspace, made once."""
    if seeded.workspace_id not in _OTHER:
        status, made = api(
            server,
            seeded,
            "POST",
            f"/workspaces/{seeded.workspace_id}/deployments",
            {"name": "staging"},
        )
        assert status == 201, made
        _OTHER[seeded.workspace_id] = made["id"]
    return _OTHER[seeded.workspace_id]
