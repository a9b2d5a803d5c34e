"""The text validators refuse exactly the control characters and surrogates, and say which."""

from __future__ import annotations

import unicodedata

import pytest
from pydantic_core import PydanticCustomError

from shared.types import multi_line, single_line

# Every boundary of the refused ranges and a few characters far from them.
_CODE_POINTS = [
    *range(0x00, 0x21),
    *range(0x7E, 0xA1),
    *range(0xD7FE, 0xE001),
    0x2028,  # line separator: not a control character
    0x200B,  # zero-width space (a format character)
    0xFEFF,
    0xFFFD,
    0x1F600,
    0x10FFFF,
]


@pytest.mark.parametrize("validator, layout", [(single_line, ""), (multi_line, "\t\n\r")])
def test_refused_exactly_when_the_unicode_category_says_so(validator: object, layout: str) -> None:
    assert callable(validator)
    for code_point in _CODE_POINTS:
        char = chr(code_point)
        refused_by_category = unicodedata.category(char) in ("Cc", "Cs") and char not in layout
        text = f"kertas {char} A4"
        if refused_by_category:
            with pytest.raises(PydanticCustomError):
                validator(text)
        else:
            assert validator(text) == text, hex(code_point)


def test_the_refusal_names_the_first_control_character() -> None:
    with pytest.raises(PydanticCustomError, match=r"found U\+0000"):
        single_line("a\x00b\x01")
    with pytest.raises(PydanticCustomError, match=r"found U\+000A"):
        single_line("two\nlines")
    with pytest.raises(PydanticCustomError, match="surrogate"):
        multi_line("lone \ud800 half")
    assert multi_line("two\nlines\tand a tab") == "two\nlines\tand a tab"
