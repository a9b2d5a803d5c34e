"""Keyset cursors: what a listing encodes decodes back; anything else is one 422."""

from __future__ import annotations

import base64
from uuid import UUID

import pytest

from shared.cursor import decode_cursor, encode_cursor
from shared.problems import Problem


def _pair(key: list[str]) -> tuple[str, UUID]:
    name, ident = key
    return name, UUID(ident)


def test_a_cursor_round_trips() -> None:
    ident = "9b2a8c58-7f43-4d6b-9c3e-0d7c5d9b9f10"
    assert decode_cursor(encode_cursor(["a", ident]), _pair) == ("a", UUID(ident))


@pytest.mark.parametrize(
    "raw",
    [b"7", b"1.5", b"true", b"null", b'"a"', b"{}", b'["a", 7]', b'["a", true]', b'["a", ["b"]]',
     b'["a"]', b'["a", "not-a-uuid"]', b"\xff\xfe", b"[" * 2000 + b"]" * 2000],
)  # fmt: skip
def test_anything_else_is_one_field_error(raw: bytes) -> None:
    with pytest.raises(Problem) as info:
        decode_cursor(base64.urlsafe_b64encode(raw).decode(), _pair)
    assert info.value.status == 422
    assert info.value.errors == [
        {"field": "cursor", "reason": "not a cursor returned by this listing"}
    ]


@pytest.mark.parametrize("cursor", ["%%%", "ä", "abc", ""])
def test_text_that_is_not_base64_is_refused(cursor: str) -> None:
    with pytest.raises(Problem):
        decode_cursor(cursor, _pair)
