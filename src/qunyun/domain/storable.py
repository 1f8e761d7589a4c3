"""Text a database can store as it is: the one check every edge (HTTP, chat exports) runs.

PostgreSQL refuses NUL in text; a lone UTF-16 surrogate (valid in a JSON escape, not in
Unicode text) cannot be encoded for either database, and stored in a JSON column it made
every later listing fail.
"""

from __future__ import annotations

from typing import Any


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as it is, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return "contains a lone UTF-16 surrogate (not valid Unicode text)"
    return None


def first_problem(value: Any) -> str | None:
    """The first unstorable text anywhere inside a decoded JSON value."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, dict):
        for key, item in value.items():
            found = first_problem(key) or first_problem(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = first_problem(item)
            if found:
                return found
    return None
