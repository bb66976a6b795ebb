"""Debian's Prometheus for the metrics-export tests: `promtool check config` on a rendering, and
where the binaries are. Missing binaries skip a test at a developer's desk and fail it under CI
(CI or ENVMANAGER_CI set), where a skip would hide that it never ran; scripts/test installs
them (Debian's prometheus, collectd-core and apache2-utils)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

_CI_VARIABLES = ("CI", "ENVMANAGER_CI")


def require_binary(name: str) -> str:
    """The path of a program the test needs, or a skip (a failure under CI)."""
    # collectd is in /usr/sbin, which a non-root PATH may lack.
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path:
        return path
    if any(os.environ.get(v, "").lower() not in ("", "0", "false") for v in _CI_VARIABLES):
        pytest.fail(f"This test needs {name} (scripts/test installs it) and CI is set.")
    pytest.skip(f"needs {name}")


def promtool_check(text: str, directory: Path, *, name: str = "prometheus.yml") -> None:
    """`promtool check config --agent` accepts this configuration (the assertion says why not,
    with promtool's own words)."""
    promtool = require_binary("promtool")
    path = directory / name
    path.write_text(text)
    result = subprocess.run(
        [promtool, "check", "config", "--agent", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
