"""`envmanager-env prometheus-config FILE`: write the Deployment's Prometheus agent
configuration (its metrics exports as remote writes) to FILE, and with `--watch` keep it
current and make Prometheus reload it.

FILE holds credentials, so it is only ever written whole and private: a temporary file in the
same folder, created with mode 0600, then renamed over FILE (a reader sees the old file or the
new one, never half of one). Nothing of its content is ever printed.

With `--watch SECONDS`, the configuration is asked for every SECONDS with its ETag (a
conditional GET: an unchanged configuration costs the server one small query and no body);
when it changes, FILE is rewritten and Prometheus told to reload, by `--reload-url`
(Prometheus's `POST /-/reload`, which needs `--web.enable-lifecycle`) or `--reload-pid`
(SIGHUP). A server that cannot be reached while watching is reported and tried again; FILE
stays as it was. A refused token ends the watch (exit 4), FILE left as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import requests

from envmanager_secrets import client

CONFIG_PATH = "/api/v1/lookup/prometheus-config"
CANNOT_WRITE = 6


# Airflow's StatsD settings for the bridge on the same host (collectd's statsd plugin, README).
@dataclass
class Fetched:
    """One answer: `text` is None when the configuration is unchanged since `etag` (304)."""

    text: str | None
    etag: str


def _problem(resp: requests.Response) -> client.Failure | None:
    if resp.status_code in (401, 403):
        return client.Failure(
            client.TOKEN_REFUSED,
            f"The server refused the token (HTTP {resp.status_code}): is ENVMANAGER_TOKEN a "
            "Deployment token that is not revoked?",
        )
    if resp.status_code == 400:
        try:
            message = resp.json().get("message", "")
        except ValueError:
            message = ""
        return client.Failure(client.USAGE, f"The server refused the settings: {message}")
    if resp.status_code < 500 and resp.status_code not in (200, 304):
        return client.Failure(
            client.UNREACHABLE,
            f"HTTP {resp.status_code} from {CONFIG_PATH}: is ENVMANAGER_URL the envmanager "
            "server's base URL (one that serves Prometheus configurations)?",
        )
    return None


def fetch(
    session: requests.Session,
    url: str,
    params: dict[str, str],
    etag: str | None,
    timeout: float = 5,
) -> Fetched:
    """One conditional GET of the configuration. Raises client.Failure for a refused token or
    settings, and for an unreachable server or a 5xx (code UNREACHABLE) that a caller may
    retry."""
    headers = {"If-None-Match": etag} if etag else {}
    try:
        resp = session.get(
            url + CONFIG_PATH, params=params, headers=headers, timeout=(2.0, timeout)
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        # Never the exception's text: it may name the URL's credentials.
        raise client.Failure(client.UNREACHABLE, type(exc).__name__) from None
    failure = _problem(resp)
    if failure is not None:
        raise failure
    if resp.status_code >= 500:
        raise client.Failure(client.UNREACHABLE, f"HTTP {resp.status_code}")
    if resp.status_code == 304 and etag:
        return Fetched(None, etag)
    if resp.status_code == 304:
        raise client.Failure(client.UNREACHABLE, "HTTP 304 to a request without an ETag")
    if not resp.headers.get("Content-Type", "").startswith("application/yaml"):
        raise client.Failure(
            client.UNREACHABLE,
            f"The answer from {CONFIG_PATH} is not a Prometheus configuration: is ENVMANAGER_URL "
            "the envmanager server's base URL?",
        )
    return Fetched(resp.content.decode("utf-8"), resp.headers.get("ETag", ""))


def write_private(path: str, text: str) -> bool:
    """Write `text` to `path` atomically with mode 0600; False when it held that already."""
    try:
        with open(path, encoding="utf-8") as current:
            if current.read() == text:
                if os.stat(path).st_mode & 0o077:
                    os.chmod(path, 0o600)
                return False
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError):
        pass  # unreadable: written anew below
    folder = os.path.dirname(os.path.abspath(path))
    # mkstemp creates the file with mode 0600, so the secrets are never readable by others.
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return True


Reload = Callable[[], "str | None"]


def reloader(reload_url: str | None, reload_pid: int | None) -> Reload | None:
    """A function that asks Prometheus to reload (None: no way to was given); it returns None
    on success, else why not (never the URL: it may carry credentials)."""

    def by_url() -> str | None:
        try:
            resp = requests.post(reload_url, timeout=(2.0, 30.0))  # type: ignore[arg-type]
        except (requests.ConnectionError, requests.Timeout) as exc:
            return type(exc).__name__
        if resp.status_code >= 300:
            return f"HTTP {resp.status_code} (does Prometheus run with --web.enable-lifecycle?)"
        return None

    def by_signal() -> str | None:
        try:
            os.kill(reload_pid, signal.SIGHUP)  # type: ignore[arg-type]
        except ProcessLookupError:
            return f"no process {reload_pid}"
        except PermissionError:
            return f"not permitted to signal process {reload_pid}"
        return None

    if reload_url:
        return by_url
    if reload_pid:
        return by_signal
    return None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `prometheus-config` subcommand, for the top parser of `env`."""
    cmd = sub.add_parser(
        "prometheus-config",
        help="write the Deployment's Prometheus agent configuration to FILE (mode 0600)",
        description="Write the Deployment's Prometheus agent configuration (its metrics "
        "exports as remote writes) to FILE; with --watch, keep it current and make Prometheus "
        "reload it.",
        epilog="\n\n".join(__doc__.split("\n\n")[1:])
        + "\n\nExit codes as the other subcommands, and 6: FILE cannot be written.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("file", metavar="FILE", help="where Prometheus reads its configuration")
    cmd.add_argument(
        "--scrape-target",
        metavar="HOST:PORT",
        help="the StatsD-to-Prometheus bridge that holds Airflow's metrics (default "
        "127.0.0.1:9103, collectd's write_prometheus)",
    )
    cmd.add_argument(
        "--scrape-interval", type=int, metavar="SECONDS", help="how often to scrape (default 30)"
    )
    cmd.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="keep running: check for a change every SECONDS, rewrite FILE and reload Prometheus",
    )
    how = cmd.add_mutually_exclusive_group()
    how.add_argument(
        "--reload-url",
        metavar="URL",
        help="POST here after a change, e.g. http://127.0.0.1:9090/-/reload",
    )
    how.add_argument(
        "--reload-pid", type=int, metavar="PID", help="send SIGHUP to this process after a change"
    )


def _params(args: argparse.Namespace) -> dict[str, str]:
    params = {}
    if args.scrape_target:
        params["scrapeTarget"] = args.scrape_target
    if args.scrape_interval is not None:
        params["scrapeInterval"] = str(args.scrape_interval)
    return params


def _say(message: str) -> None:
    print(f"envmanager-env: {message}", file=sys.stderr, flush=True)


def _first(session: requests.Session, url: str, params: dict[str, str], wait: float) -> Fetched:
    """The configuration, retrying an unreachable server for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    pause = client.FIRST_PAUSE
    while True:
        try:
            return fetch(session, url, params, None)
        except client.Failure as failure:
            if failure.code != client.UNREACHABLE or time.monotonic() + pause > deadline:
                if failure.code == client.UNREACHABLE:
                    failure = client.Failure(
                        client.UNREACHABLE,
                        f"envmanager did not answer within {wait:g} s ({failure}); "
                        "nothing was written.",
                    )
                raise failure from None
            _say(f"{failure}; trying again in {pause:g} s")
        time.sleep(pause)
        pause = min(pause * 2, client.LONGEST_PAUSE)


def _write(path: str, text: str) -> bool:
    try:
        return write_private(path, text)
    except OSError as exc:
        raise client.Failure(CANNOT_WRITE, f"Cannot write {path}: {exc.strerror}") from None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as current:
            return current.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise client.Failure(CANNOT_WRITE, f"Cannot read {path} back: {exc}") from None


def _exports(text: str) -> int:
    return text.count('"url":')


def _apply(path: str, text: str, reload: Reload | None, owed: bool) -> bool:
    """Write FILE and, when it changed (or a reload failed before), ask Prometheus to reload;
    a FILE that did not exist yet was read by no Prometheus, so none is asked. Whether a reload
    is still owed afterwards."""
    existed = os.path.exists(path)
    changed = _write(path, text)
    if changed:
        _say(f"wrote {path} ({_exports(text)} metrics export(s))")
    if reload is None or not ((changed and existed) or owed):
        return False
    why_not = reload()
    if why_not is not None:
        if not owed:  # once, not at every check
            _say(f"could not make Prometheus reload: {why_not}; trying again at each check")
        return True
    _say("asked Prometheus to reload")
    return False


def run(args: argparse.Namespace) -> int:
    """`envmanager-env prometheus-config`: the exit code."""
    try:
        if args.watch is not None and not 0 < args.watch <= 86400:
            raise client.Failure(client.USAGE, "--watch takes a number of seconds from 0 to 86400.")
        url, token = client.settings()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        params = _params(args)
        reload = reloader(args.reload_url, args.reload_pid)
        fetched = _first(session, url, params, args.wait)
        assert fetched.text is not None
        owed = _apply(args.file, fetched.text, reload, owed=False)
        if args.watch is None:
            return 0
        etag = fetched.etag
        while True:
            time.sleep(args.watch)
            try:
                fetched = fetch(session, url, params, etag)
            except client.Failure as failure:
                if failure.code != client.UNREACHABLE:
                    raise
                _say(f"{failure}; {args.file} kept as it is, trying again in {args.watch:g} s")
                continue
            etag = fetched.etag
            if fetched.text is not None or owed:
                text = fetched.text if fetched.text is not None else _read(args.file)
                owed = _apply(args.file, text, reload, owed)
    except client.Failure as failure:
        _say(str(failure))
        return failure.code
    except KeyboardInterrupt:
        return 0
