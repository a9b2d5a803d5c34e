"""Opaque keyset cursors: the sort key of a page's last row, as URL-safe base64 of a JSON list.

A client passes back what a listing returned; anything else (a forged, truncated or hand-edited
cursor, whatever its content) is one 422 naming the `cursor` parameter, with a message that
says nothing about how the cursor is made.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.problems import Problem, field_error

T = TypeVar("T")

MAX_CURSOR_LENGTH = 500
_REFUSED = "not a cursor returned by this listing"


def encode_cursor(key: Sequence[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def bad_cursor(parameter: str = "cursor") -> Problem:
    return field_error(parameter, _REFUSED)


def decode_cursor(cursor: str, parse: Callable[[list[str]], T], parameter: str = "cursor") -> T:
    """The key `parse` reads from the cursor's strings; its ValueError or TypeError is a 422.

    The decoded JSON must be a list of strings: a number, a boolean, null or a nested list in
    its place is refused here, before `parse` sees it.
    """
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        if not isinstance(key, list) or not all(isinstance(part, str) for part in key):
            raise bad_cursor(parameter)
        return parse(key)
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError):
        raise bad_cursor(parameter) from None
