"""Property-based tests (hypothesis) of the input rules: whatever comes in, the answer is a
value or a clear error, never a crash, and round trips give back what went in."""

import json
import re

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envmanager.airflow_files import (
    FileFormatError,
    connection_to_uri,
    parse_connections,
    parse_variables,
)
from envmanager.connection_uri import parse_connection_uri
from envmanager.object_types import clean_values, validate_key

TYPES = ["CONNECTION", "AIRFLOW_VARIABLE", "ENVIRONMENT_VARIABLE", "METRICS_EXPORT"]
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@given(st.sampled_from(TYPES), st.text(max_size=300))
def test_a_key_is_accepted_or_refused_with_a_message(object_type, key):
    try:
        validate_key(object_type, key)
    except ValidationError as exc:
        assert exc.message_dict["key"]
    else:
        assert key and len(key) <= 255
        if object_type == "ENVIRONMENT_VARIABLE":
            assert ENV_NAME.fullmatch(key)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(
            ["conn_type", "host", "port", "extra", "login", "password", "schema", "nope"]
        ),
        JSONISH,
        max_size=8,
    )
)
def test_connection_values_are_cleaned_or_refused_by_field(values):
    try:
        cleaned = clean_values("CONNECTION", values)
    except ValidationError as exc:
        assert exc.message_dict
    else:
        assert cleaned["extra"] is None or isinstance(cleaned["extra"], dict)
        assert cleaned["port"] is None or 0 < cleaned["port"] < 65536


SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    conn_type=st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True),
    # Capitals too: Airflow lowercases a host it reads from a URI unless they are escaped.
    host=st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,20}[A-Za-z0-9])?", fullmatch=True)
    | st.just(""),
    login=SAFE_TEXT,
    password=SAFE_TEXT,
    schema=SAFE_TEXT,
    port=st.none() | st.integers(1, 65535),
    # Text that reads as JSON too ("3", "true"): Airflow reads a query parameter as JSON.
    extra=st.dictionaries(
        st.text(min_size=1, max_size=8),
        SAFE_TEXT | st.sampled_from(["3", "true", "null", " 1", "[]"]) | st.integers(),
        max_size=4,
    ),
)
def test_connection_uri_round_trip(conn_type, host, login, password, schema, port, extra):
    values = {
        "conn_type": conn_type,
        "description": None,  # a URI has no place for it
        "host": host,
        "schema": schema,
        "login": login,
        "password": password,
        "port": port,
        "extra": extra,
    }
    # An empty password reads back unset, as Airflow reads it from a URI.
    assert parse_connection_uri(connection_to_uri(values)) == {
        **values,
        "password": password or None,
    }


@given(st.text(max_size=200))
def test_any_uri_text_parses_or_fails_with_value_error(text):
    try:
        parse_connection_uri(text)
    except ValueError as exc:
        assert text not in str(exc) or len(text) < 3


@pytest.mark.parametrize("name", ["c.json", "c.yaml", "c.env"])
@given(content=st.binary(max_size=400))
def test_any_import_file_parses_or_fails_clearly(name, content):
    for parse in (parse_connections, parse_variables):
        try:
            parsed = parse(name, content)
        except FileFormatError as exc:
            assert str(exc)
        else:
            assert all(p.key is not None for p in parsed)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), JSONISH, max_size=6))
def test_variables_files_round_trip_through_json(data):
    parsed = parse_variables("v.json", json.dumps(data).encode())
    assert {p.key for p in parsed} == set(data)
