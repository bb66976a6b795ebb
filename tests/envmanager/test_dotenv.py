"""The served dotenv is safe to `source` from a POSIX shell (nothing expanded, no command run)
and reads back byte-equal there and in python-dotenv; a value no quoting can keep for both is
refused when it is written, with the reason. Checked with real bash, real dash (/bin/sh here)
and real python-dotenv reading a file."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from dotenv import dotenv_values
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from envmanager.models import EnvironmentObject
from envmanager.object_types import clean_values, dotenv_value
from envmanager.services import environment_object_create
from tests.lookup.wsgi_client import wsgi_request

SHELLS = [shell for shell in ("bash", "dash") if shutil.which(shell)]
# Print each named variable's value, NUL-separated (no value holds a NUL).
PRINT_VARIABLES = (
    'set -a; . "$1"; shift; for k in "$@"; do eval "printf \'%s\\0\' \\"\\${$k}\\""; done'
)
NASTY = [
    "",
    "plain",
    "  spaces around  ",
    "$HOME",
    "${HOME}",
    "${HOME:-x}",
    "$(touch {sentinel})",
    "`touch {sentinel}`",
    "a; touch {sentinel}",
    'say "hi"',
    "it's",
    'it\'s "both"',
    "C:\\path\\n-not-a-newline",
    "ends with a quote'",
    "'",
    "''",
    "\\",
    "\\\\",
    "trailing\\",
    "\\'",
    '\\"',
    '"',
    "line\nbreaks\n",
    "\n",
    "#not a comment",
    "value #not a comment",
    "KEY=value",
    "export X=1",
    "ünïcødé € 𝄞 日本",
    "\t\x0b\x0c\x1b[31m",
    "\u2028\u2029\x85",
    "!bang !! !$",
    "~/home ~root",
    "*.glob ?",
    "a'b\\c\"d",
]


def sourced(shell: str, path: Path, keys: list[str]) -> list[str]:
    result = subprocess.run(
        [shell, "-c", PRINT_VARIABLES, shell, str(path), *keys],
        capture_output=True,
        timeout=20,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return [v.decode() for v in result.stdout.split(b"\0")[:-1]]


def assert_reads_back(tmp_path: Path, values: list[str]) -> None:
    """Each value written as the served dotenv writes it reads back the same everywhere."""
    keys = [f"K{i}" for i in range(len(values))]
    path = tmp_path / "environment.env"
    path.write_text("".join(f"{k}={dotenv_value(v)}\n" for k, v in zip(keys, values)))
    assert SHELLS, "no POSIX shell found"
    for shell in SHELLS:
        assert sourced(shell, path, keys) == values, shell
    assert dotenv_values(path, interpolate=False) == dict(zip(keys, values))
    # python-dotenv's own interpolation expands `${…}` whatever the quoting, as documented.
    interpolated = dotenv_values(path)
    assert all(interpolated[k] == v for k, v in zip(keys, values) if "${" not in v)


def representable(value: str) -> bool:
    if "\r" in value or "\0" in value:
        return False
    expands = "$" in value or "`" in value
    return not (expands and ("'" in value or "\\\\" in value or value.endswith("\\")))


def test_nasty_values_read_back_the_same_and_run_nothing(tmp_path):
    sentinel = tmp_path / "ran"
    values = [v.replace("{sentinel}", str(sentinel)) for v in NASTY]
    assert all(representable(v) for v in values)
    assert_reads_back(tmp_path, values)
    assert not sentinel.exists()


ALPHABET = st.sampled_from(list("$`'\"\\\n#= {}()!;*~a") + ["é", "€", "𝄞", "\t", "\u2028"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(ALPHABET, max_size=12) | st.text(max_size=12), min_size=1, max_size=8))
@example(["$x'", "a\\\\$", "\\`", "x\r\ny"])
def test_every_value_reads_back_the_same_or_is_refused_with_the_reason(tmp_path, values):
    kept = []
    for value in values:
        try:
            dotenv_value(value)
        except ValueError as exc:
            assert not representable(value), repr(value)
            with pytest.raises(ValidationError) as refused:
                clean_values("ENVIRONMENT_VARIABLE", {"value": value})
            assert refused.value.message_dict["value"] == [f"{exc}."]
        else:
            assert representable(value), repr(value)
            kept.append(value)
    if kept:
        assert_reads_back(tmp_path, kept)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("one\r\ntwo", "carriage return"),
        ("it's $5", "cannot also hold '"),
        ("`cmd` \\\\server", "cannot also hold '"),
        ("pa$$\\", "trailing backslash"),
        ("nul\0byte", "Null characters"),  # refused by the API before the service
    ],
)
def test_an_unrepresentable_value_is_refused_when_written(api, team, value, reason):
    response = api.as_user(team.operator).post(
        f"/api/v1/workspaces/{team.workspace.pk}/environment-objects",
        {
            "objectKey": "TRICKY",
            "objectType": "ENVIRONMENT_VARIABLE",
            "environmentVariable": {"value": value, "isSecret": True},
        },
        format="json",
    )
    assert response.status_code == 400
    (error,) = response.json()["fieldErrors"]
    assert error["field"] == "environmentVariable.value" and reason in error["message"]
    assert not EnvironmentObject.objects.exists()


def test_an_override_is_held_to_the_same_rule(team):
    from envmanager.object_types import clean_overrides

    with pytest.raises(ValidationError) as refused:
        clean_overrides("ENVIRONMENT_VARIABLE", {"value": "it's $5"})
    assert "no dotenv quoting" in refused.value.message_dict["value"][0]


@pytest.fixture
def deployment_token(team):
    from deployments.services import deployment_token_create

    _, plain = deployment_token_create(user=team.operator, deployment=team.deployment, name="t")
    return plain


def served_dotenv(token: str) -> str:
    response = wsgi_request(
        "GET", "/api/v1/lookup/environment", {"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return response.json()["dotenv"]


def test_the_served_dotenv_is_safe_to_source(team, deployment_token, tmp_path):
    sentinel = tmp_path / "ran"
    values = {f"V{i}": v.replace("{sentinel}", str(sentinel)) for i, v in enumerate(NASTY)}
    for key, value in values.items():
        environment_object_create(
            user=team.operator,
            workspace=team.workspace,
            object_type="ENVIRONMENT_VARIABLE",
            key=key,
            values={"value": value},
            scope="DEPLOYMENT",
            deployment=team.deployment,
        )
    path = tmp_path / "served.env"
    path.write_text(served_dotenv(deployment_token))
    for shell in SHELLS:
        assert sourced(shell, path, list(values)) == list(values.values()), shell
    assert dotenv_values(path, interpolate=False) == values
    assert not sentinel.exists()


def test_a_value_stored_before_the_rule_is_left_out_of_the_dotenv(team, deployment_token):
    obj = environment_object_create(
        user=team.operator,
        workspace=team.workspace,
        object_type="ENVIRONMENT_VARIABLE",
        key="LEGACY",
        values={"value": "ok"},
        scope="DEPLOYMENT",
        deployment=team.deployment,
    )
    EnvironmentObject.objects.filter(pk=obj.pk).update(values={"value": "it's $(id)"})
    dotenv = served_dotenv(deployment_token)
    assert dotenv == "# LEGACY is left out: its value cannot be written safely in a dotenv file.\n"
