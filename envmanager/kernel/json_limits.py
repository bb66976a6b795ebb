"""How deep JSON may nest: one cap for every document we read (API bodies, Airflow files, JSON
typed into a form) and every JSON value we store (a connection's extra, headers, labels).

Python's parser and everything that walks the result (validation, `json.dumps`, encryption)
recurse once per level: some thousands of levels in 10 KB are a RecursionError, a 500. No
connection or variable needs more than a few levels, so text nested deeper than the cap is
refused before it is parsed, as invalid JSON with the place where it goes too deep.
"""

import json
import re
from typing import Any

MAX_JSON_DEPTH = 64
TOO_DEEP = f"Nested more than {MAX_JSON_DEPTH} levels deep"

# A JSON string (skipped: brackets inside it are text) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')


class JSONTooDeep(json.JSONDecodeError):
    """JSON text nested deeper than the cap (a ValueError, as any JSON that cannot be read)."""


def _too_deep_at(text: str, max_depth: int) -> int | None:
    """Where an array or object opens more than `max_depth` levels deep, or None."""
    if text.count("[") + text.count("{") <= max_depth:  # the common case, at C speed
        return None
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        bracket = match.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return match.start()
        elif bracket in ("]", "}"):
            depth -= 1
    return None


def parse_json(text: str, **options: Any) -> Any:
    """`json.loads(text, **options)`, refusing text nested more than MAX_JSON_DEPTH levels deep
    with JSONTooDeep, which says so and where."""
    position = _too_deep_at(text, MAX_JSON_DEPTH)
    if position is not None:
        raise JSONTooDeep(TOO_DEEP, text, position)
    return json.loads(text, **options)


def json_depth(value: Any) -> int:
    """How many levels of lists and dicts a value nests (0 for a scalar), without recursing."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # one level past the cap is enough to refuse it
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def nests_too_deep(value: Any, levels_above: int = 0) -> bool:
    """Whether a value held `levels_above` levels down a document nests it past the cap."""
    return json_depth(value) + levels_above > MAX_JSON_DEPTH
