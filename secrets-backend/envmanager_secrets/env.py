"""`envmanager-env`: run a process with its Deployment's environment from envmanager.

With ENVMANAGER_URL (the server's base URL) and ENVMANAGER_TOKEN (a Deployment token) set:

    envmanager-env exec -- COMMAND [ARGS...]   run COMMAND with the Deployment's environment
    envmanager-env dotenv                      print the environment variables as a dotenv file
    envmanager-env check                       say whether URL and token work, and what resolves
    envmanager-env prometheus-config FILE      write the Prometheus agent configuration (--watch)
    envmanager-env pull --deployment ID        local development: write .env and the files
                                               `airflow connections/variables import` read
                                               (ENVMANAGER_TOKEN a personal API token), or
                                               --import them into a local Airflow

Exit codes: 0 done; 2 bad usage; 3 ENVMANAGER_URL or ENVMANAGER_TOKEN missing; 4 the token was
refused (401/403); 5 the server could not be reached or gave no environment within --wait
seconds (or the URL is not envmanager's); 127 COMMAND not found. After `exec`, the exit code is
COMMAND's own: it replaces this process (same PID, same signals). With `exec --watch SECONDS`
COMMAND runs as a child, restarted when the environment variables change; signals are passed
on and the exit code is still COMMAND's (128 + N when signal N ended it). `prometheus-config`
exits 6 when it cannot write FILE. `pull` exits 7 when refused (the reason is printed: local
development off in the Workspace, your role, no such Deployment) and 8 when the local Airflow
import failed.

Values are never printed except by `dotenv`, whose output is the environment itself.
"""

from __future__ import annotations

import argparse
import os
import sys

from envmanager_secrets import prometheus
from envmanager_secrets.client import (
    NOT_FOUND,
    USAGE,
    Failure,
    fetch_environment,
    process_environment,
    settings,
)
from envmanager_secrets.pull import pull
from envmanager_secrets.watch import supervise


def _exec(command: list[str], wait: float, watch: float | None = None, grace: float = 10) -> int:
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise Failure(USAGE, "Name the command to run: envmanager-env exec -- COMMAND [ARGS...]")
    url, token = settings()
    if watch is not None:
        return supervise(command, url, token, fetch_environment(url, token, wait), watch, grace)
    env = process_environment(fetch_environment(url, token, wait), url, token, dict(os.environ))
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - running the user's command is the point
    except FileNotFoundError:
        raise Failure(NOT_FOUND, f"Command not found: {command[0]}") from None
    except PermissionError:
        raise Failure(NOT_FOUND, f"Command not executable: {command[0]}") from None


def _dotenv(wait: float) -> int:
    url, token = settings()
    document = fetch_environment(url, token, wait)
    sys.stdout.write(document.get("dotenv", ""))
    return 0


def _check(wait: float) -> int:
    url, token = settings()
    document = fetch_environment(url, token, wait)
    print(f"OK: {url} answers for this token.")
    for name, label in (
        ("environmentVariables", "environment variables"),
        ("connections", "connections"),
        ("variables", "Airflow variables"),
        ("metricsExports", "metrics exports"),
    ):
        keys = sorted(document.get(name) or {})
        print(f"{len(keys)} {label}" + (f": {', '.join(keys)}" if keys else ""))
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError("must be more than 0 and less than 86400 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="envmanager-env",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "--wait",
        type=float,
        default=float(os.environ.get("ENVMANAGER_WAIT_SECONDS", 30)),
        help="seconds to keep trying an unreachable server (default 30, ENVMANAGER_WAIT_SECONDS)",
    )
    sub = top.add_subparsers(dest="action", required=True)
    run = sub.add_parser(
        "exec",
        help="run COMMAND with the Deployment's environment",
        description="Fetch the Deployment's environment, set its environment variables and the "
        "secrets backend (AIRFLOW__SECRETS__BACKEND and _KWARGS, unless already set), then run "
        "COMMAND in place of this process. Nothing starts with a partial environment.",
    )
    run.add_argument(
        "--watch",
        type=_positive,
        metavar="SECONDS",
        help="instead of replacing this process, run COMMAND as a child, look for a changed "
        "environment every SECONDS (a conditional GET) and restart COMMAND when its "
        "environment variables change (connections and variables need no restart); signals "
        "are passed on and the exit code is COMMAND's",
    )
    run.add_argument(
        "--grace",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="with --watch: how long COMMAND may take to stop after SIGTERM before SIGKILL "
        "(default 10)",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    sub.add_parser(
        "dotenv",
        help="print the environment variables as a dotenv file",
        description="For docker compose env_file or systemd EnvironmentFile (values included).",
    )
    sub.add_parser(
        "check",
        help="say whether URL and token work and what the Deployment resolves (no values)",
    )
    prometheus.add_parser(sub)
    local = sub.add_parser(
        "pull",
        help="local development: the Deployment's environment on this machine",
        description="With a personal API token in ENVMANAGER_TOKEN, where the Workspace allows "
        "local development: write .env (environment variables), connections.json and "
        "variables.json (for `airflow connections import` / `airflow variables import`) into "
        "--out, owner-only; or, with --import, import the connections and variables into the "
        "local Airflow and write only .env. Every object pulled is in the audit log.",
    )
    local.add_argument("--deployment", type=int, required=True, metavar="ID")
    local.add_argument("--out", default=".", metavar="DIR", help="where to write (default .)")
    local.add_argument(
        "--import",
        dest="do_import",
        action="store_true",
        help="import connections and variables into the local Airflow instead of writing them",
    )
    local.add_argument(
        "--airflow", default="airflow", metavar="PATH", help="the airflow command (default airflow)"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.action == "prometheus-config":
        return prometheus.run(args)
    try:
        if args.action == "exec":
            return _exec(args.command, args.wait, args.watch, args.grace)
        if args.action == "pull":
            url, token = settings()
            airflow = args.airflow if args.do_import else None
            return pull(url, token, args.deployment, args.out, args.wait, airflow)
        if args.action == "dotenv":
            return _dotenv(args.wait)
        return _check(args.wait)
    except Failure as failure:
        print(f"envmanager-env: {failure}", file=sys.stderr)
        return failure.code


if __name__ == "__main__":
    sys.exit(main())
