"""The API's JSON parser: DRF's, with nesting capped (`envmanager.kernel.json_limits`)."""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from envmanager.kernel.json_limits import parse_json


class JSONParser(parsers.JSONParser):
    """A body nested deeper than the cap is a 400 like any other JSON that cannot be read."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        parse_constant = json.strict_constant if self.strict else None
        try:
            # bytes.decode takes text encodings only: a bz2 "charset" cannot inflate the body.
            text = stream.read().decode(encoding)
        except (LookupError, ValueError):
            raise ParseError(f"The body is not {encoding} text.") from None
        try:
            return parse_json(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
