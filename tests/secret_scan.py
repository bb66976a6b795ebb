"""A pytest plugin: every secret the tests store is remembered, every log line of the whole run
is kept, and at the end the run fails if any log line contains any of those secrets.

Secrets are caught where they enter encrypted storage (`envmanager.kernel.encryption.encrypt`): the
secret fields of environment-object values and overrides, Deployment metadata DB URLs (their
password) and Fernet keys."""

import json
import logging

import pytest

from envmanager.kernel import encryption

SECRET_KEYS = {"password", "basic_token", "fernet_key"}
MIN_LENGTH = 8  # shorter strings ("x", "pw1") would match innocent text by chance

seen_secrets: set[str] = set()
log_lines: list[str] = []


class _KeepEverything(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            log_lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a broken record must not break the run
            log_lines.append(str(record.msg))


def _collect(value) -> None:
    if isinstance(value, dict):
        is_secret = bool(value.get("is_secret"))
        for key, item in value.items():
            if key in SECRET_KEYS or (key == "value" and is_secret):
                if isinstance(item, str) and len(item) >= MIN_LENGTH:
                    seen_secrets.add(item)
            elif key in ("extra", "headers") and isinstance(item, dict):
                for v in item.values():
                    if isinstance(v, str) and len(v) >= MIN_LENGTH:
                        seen_secrets.add(v)
            else:
                _collect(item)
    elif isinstance(value, list):
        for item in value:
            _collect(item)


def _remember(plaintext: str) -> None:
    try:
        _collect(json.loads(plaintext))
    except ValueError:
        # An EncryptedTextField: a metadata DB URL (keep its password) or a Fernet key.
        if "://" in plaintext and "@" in plaintext.split("://", 1)[1]:
            credentials = plaintext.split("://", 1)[1].split("@", 1)[0]
            password = credentials.partition(":")[2]
            if len(password) >= MIN_LENGTH:
                seen_secrets.add(password)
        elif len(plaintext) >= MIN_LENGTH and "://" not in plaintext:
            seen_secrets.add(plaintext)


def pytest_configure(config):
    handler = _KeepEverything(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    original = encryption.encrypt

    def recording_encrypt(plaintext: str) -> str:
        _remember(plaintext)
        return original(plaintext)

    encryption.encrypt = recording_encrypt


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    text = "\n".join(log_lines)
    leaked = sorted(s for s in seen_secrets if s in text)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line("")
        reporter.write_line(
            f"secret scan: {len(seen_secrets)} secrets checked against {len(log_lines)} log lines"
        )
    if leaked:
        if reporter:
            reporter.write_line(f"secret scan: {len(leaked)} secret(s) in the logs!", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
