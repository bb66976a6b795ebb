"""`envmanager-env exec --watch SECONDS`: run COMMAND as a child and keep its environment
variables current.

Every SECONDS the environment document is asked for with a conditional GET (If-None-Match, the
last ETag): a 304 costs nothing. When the answer's environment variables differ from those the
child runs with, the child is stopped gracefully (SIGTERM, up to --grace seconds, then SIGKILL
to its process group) and started again with the new ones. A change of connections or Airflow
variables alone restarts nothing: the secrets backend reads those live.

While the server cannot be reached (or refuses the token, or answers something that is not an
environment), the child keeps running with what it has and the poll goes on; one line says so
on stderr, and one more when it answers again.

SIGTERM, SIGINT and SIGHUP are passed to the child (which runs in a process group of its own, so
a terminal's Ctrl-C reaches it once, through us; being in the background, it cannot read the
terminal: --watch is for services); the exit code is the child's (128 + N when a
signal N ended it), whether it was asked to stop or stopped on its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable

import requests

from envmanager_secrets.client import (
    ENVIRONMENT_PATH,
    NOT_FOUND,
    Failure,
    process_environment,
    valid_document,
)

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _say(message: str) -> None:
    print(f"envmanager-env: {message}", file=sys.stderr, flush=True)


def exit_code(returncode: int) -> int:
    """A child's exit status as a shell reports it: a signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class Poller:
    """Conditional GETs of the environment document. `poll()` gives the new document when it
    changed, None when it did not (304) or could not be read (the reason said once)."""

    def __init__(self, url: str, token: str, timeout: tuple[float, float] = (2.0, 5.0)) -> None:
        self.url = url + ENVIRONMENT_PATH
        self.timeout = timeout
        self.etag: str | None = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.problem = ""

    def _trouble(self, problem: str) -> None:
        if problem != self.problem:
            _say(f"cannot read the environment ({problem}); the command keeps running")
        self.problem = problem

    def poll(self) -> dict[str, Any] | None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        try:
            resp = self.session.get(self.url, headers=headers, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._trouble(type(exc).__name__)  # never the text: it may name the URL's auth
            return None
        if resp.status_code == 304:
            self._recovered()
            return None
        if resp.status_code != 200:
            self._trouble(f"HTTP {resp.status_code}")
            return None
        try:
            document = valid_document(resp.json())
        except (ValueError, Failure):
            self._trouble("an answer that is not an environment document")
            return None
        self._recovered()
        self.etag = resp.headers.get("ETag")
        return document

    def _recovered(self) -> None:
        if self.problem:
            _say("the environment can be read again")
        self.problem = ""


class Supervisor:
    def __init__(
        self,
        command: list[str],
        env_for: Callable[[dict[str, Any]], dict[str, str]],
        grace: float,
    ) -> None:
        self.command = command
        self.env_for = env_for
        self.grace = grace
        self.child: subprocess.Popen | None = None
        self.stopping: int | None = None  # the signal we were asked to stop with

    def start(self, document: dict[str, Any]) -> None:
        try:
            self.child = subprocess.Popen(  # noqa: S603 - running the user's command is the point
                self.command, env=self.env_for(document), preexec_fn=os.setpgrp
            )
        except FileNotFoundError:
            raise Failure(NOT_FOUND, f"Command not found: {self.command[0]}") from None
        except PermissionError:
            raise Failure(NOT_FOUND, f"Command not executable: {self.command[0]}") from None

    def forward(self, signum: int, frame: Any = None) -> None:
        self.stopping = signum
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signum)

    def wait(self, seconds: float) -> int | None:
        """The child's return code if it ended within `seconds`, else None."""
        assert self.child is not None
        try:
            return self.child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int:
        """SIGTERM, up to the grace time, then SIGKILL to the child's whole process group."""
        assert self.child is not None
        if self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)
        code = self.wait(self.grace)
        if code is None:
            _say(f"the command did not stop within {self.grace:g} s; killing it")
            try:
                os.killpg(self.child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.child.kill()
            code = self.child.wait()
        return code


def env_vars(document: dict[str, Any]) -> dict[str, str]:
    return dict(document["environmentVariables"])


def supervise(
    command: list[str],
    url: str,
    token: str,
    document: dict[str, Any],
    interval: float,
    grace: float,
) -> int:
    """Run `command` with `document`'s environment until it ends or we are told to stop;
    restart it when the environment variables change. The child's exit code."""
    base = dict(os.environ)
    supervisor = Supervisor(command, lambda doc: process_environment(doc, url, token, base), grace)
    previous = {s: signal.signal(s, supervisor.forward) for s in FORWARDED}
    poller = Poller(url, token)
    current = env_vars(document)
    try:
        supervisor.start(document)
        next_poll = time.monotonic() + interval
        while True:
            code = supervisor.wait(max(next_poll - time.monotonic(), 0.0))
            if code is not None:
                # Asked to stop or stopped on its own: either way its code is ours.
                return exit_code(code)
            if supervisor.stopping is not None:
                next_poll = time.monotonic() + interval  # stopping: wait for it, poll no more
                continue
            fresh = poller.poll()
            next_poll = time.monotonic() + interval
            if fresh is None or env_vars(fresh) == current:
                continue
            new = env_vars(fresh)
            changed = sorted(k for k in set(current) | set(new) if current.get(k) != new.get(k))
            _say(f"environment variables changed ({', '.join(changed)}); restarting the command")
            supervisor.stop()
            if supervisor.stopping is not None:
                return exit_code(supervisor.child.returncode)  # type: ignore[union-attr]
            current = env_vars(fresh)
            supervisor.start(fresh)
            if supervisor.stopping is not None:  # a signal came while the new one started
                supervisor.forward(supervisor.stopping)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
