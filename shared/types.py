"""Input types every service builds its HTTP bodies and queries from.

They refuse, with a field error, what the platform cannot store or should not accept: control
characters (PostgreSQL text cannot hold NUL; a lone surrogate cannot be encoded), unbounded
strings and collections, and numbers or booleans sent as strings (`"40"`, `"true"`). Every string
field of a request is one of these or is built from `SingleLine` / `MultiLine`; every list and
mapping has a `max_length`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StrictBool, StrictFloat, StrictInt, StringConstraints
from pydantic_core import PydanticCustomError

# What a text may not hold: the control characters (Unicode category Cc, exactly U+0000 to
# U+001F and U+007F to U+009F) and the surrogates (Cs, U+D800 to U+DFFF). A multi-line text may
# hold tab and line breaks. One regular-expression search per string: a loop over its characters
# cost more than the rest of a body's validation.
_FORBIDDEN_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FORBIDDEN_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def refusal(reason: str) -> PydanticCustomError:
    """A validation error whose text is reported as is (no "Value error, " prefix)."""
    return PydanticCustomError("input_rule", reason)


def _check_characters(value: str, forbidden: re.Pattern[str]) -> str:
    found = forbidden.search(value)
    if found is None:
        return value
    char = found.group()
    if unicodedata.category(char) == "Cs":
        raise refusal("must not contain unpaired surrogate code points")
    raise refusal(f"must not contain control characters (found U+{ord(char):04X})")


def single_line(value: str) -> str:
    """Refuses every control character, line breaks and tabs included."""
    return _check_characters(value, _FORBIDDEN_SINGLE_LINE)


def multi_line(value: str) -> str:
    """Refuses control characters other than tab and line breaks."""
    return _check_characters(value, _FORBIDDEN_MULTI_LINE)


SingleLine = AfterValidator(single_line)
MultiLine = AfterValidator(multi_line)

# Names, titles, codes a person types on one line.
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SingleLine
]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), SingleLine
]
# Reasons and notes: a paragraph or two.
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), MultiLine
]
# Descriptions: several paragraphs, possibly empty.
LongText = Annotated[str, StringConstraints(max_length=20_000), MultiLine]
# A document or photo reference.
Url = Annotated[
    str,
    StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$"),
    SingleLine,
]

# JSON numbers and booleans only: "40", "true" and true-for-1 are refused.
Integer = StrictInt
Number = StrictFloat  # accepts a JSON integer too (40 for 40.0), never a string or a boolean
Flag = StrictBool
Percent = Annotated[StrictFloat, Field(ge=0, le=100)]

# Bounds on collections a body may carry; one name per kind of list keeps them consistent.
MAX_LIST_ITEMS = 100
MAX_MAPPING_ENTRIES = 100


def time_zone_name(value: str) -> str:
    """An IANA time zone the platform's tz database knows, e.g. Asia/Jakarta."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise refusal(f"unknown time zone {value!r}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(time_zone_name)]
