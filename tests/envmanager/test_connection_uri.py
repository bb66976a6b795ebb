import pytest

from envmanager.airflow_files import connection_to_uri
from envmanager.connection_uri import parse_connection_uri


def test_parses_every_part_with_quoted_secrets():
    values = parse_connection_uri(
        "postgresql://us%40er:p%3Aa%2Fs%40s%3Fw%23o%25rd@db.internal:5432/analytics"
        "?sslmode=require&timeout=10"
    )
    assert values == {
        "conn_type": "postgres",
        "description": None,
        "host": "db.internal",
        "schema": "analytics",
        "login": "us@er",
        "password": "p:a/s@s?w#o%rd",
        "port": 5432,
        "extra": {"sslmode": "require", "timeout": 10},
    }


def test_extra_as_json_and_host_with_protocol():
    values = parse_connection_uri(
        "http://https%3A%2F%2Fapi.example.com/?__extra__=%7B%22a%22%3A+%5B1%5D%7D"
    )
    assert values["host"] == "https://api.example.com"
    assert values["extra"] == {"a": [1]}
    assert parse_connection_uri("google-cloud-platform://")["conn_type"] == "google_cloud_platform"


@pytest.mark.parametrize(
    "uri", ["no-scheme", "a://b://c://d", "http://h:99999", "://h", "x://h?__extra__=%5B1%5D"]
)
def test_bad_uris_are_refused_without_repeating_them(uri):
    with pytest.raises(ValueError) as error:
        parse_connection_uri(uri)
    assert uri not in str(error.value)


@pytest.mark.parametrize(
    "values",
    [
        {
            "conn_type": "postgres",
            "description": None,
            "host": "db",
            "schema": "s",
            "login": "ü",
            "password": "p:/@?#%ü",
            "port": 1,
            "extra": {"k": "v"},
        },
        {
            "conn_type": "aws",
            "description": None,
            "host": "",
            "schema": "",
            "login": "AKIA",
            "password": "se/cret+",
            "port": None,
            "extra": {"region_name": "eu", "n": {"x": 1}},
        },
    ],
)
def test_uri_round_trip(values):
    assert parse_connection_uri(connection_to_uri(values)) == values
