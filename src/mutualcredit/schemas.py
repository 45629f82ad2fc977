"""Base classes and field types shared by every domain's schemas."""

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from mutualcredit.amounts import MAX_AMOUNT


def storable(value: Any) -> None:
    """Refuses what PostgreSQL cannot store in text or jsonb: NUL characters and lone
    surrogates (which JSON can spell as \\u0000 and \\ud800), at any depth."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain NUL (\\u0000) characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key)
            storable(item)
    elif isinstance(value, list | tuple):
        for item in value:
            storable(item)


class InputModel(BaseModel):
    """A request body: unknown fields are an error, never silently dropped; text the database
    cannot store is refused here, with the field it was found in."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        storable(value)
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Money is an integer count of minor units. StrictInt refuses "100", 100.0 and true: a client
# that sends a float or a string has a bug that must not be rounded away.
Amount = Annotated[
    StrictInt,
    Field(gt=0, le=MAX_AMOUNT, description="Minor units: a positive integer, at most 2^53 - 1."),
]
Limit = Annotated[
    StrictInt, Field(ge=0, le=MAX_AMOUNT, description="Minor units, from 0 to 2^53 - 1.")
]


# RFC 3339 (what OpenAPI's `date-time` means): date, time with seconds, and an offset. Pydantic
# alone would also read a number, or a numeric string such as "0.5", as a Unix time.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value  # from Python, not from a client
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2027-01-31T00:00:00Z")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""A moment in a request (body or query): an RFC 3339 string with an offset, nothing else."""

# true or false: not 0, 1, "yes" or "on".
Flag = StrictBool

_DIGITS = re.compile(r"[0-9]{1,18}")


def _digits(value: Any) -> Any:
    if isinstance(value, str) and _DIGITS.fullmatch(value) is None:
        raise ValueError("must be a whole number written in decimal digits")
    return value


Count = Annotated[int, BeforeValidator(_digits)]
"""A whole number in a query string: decimal digits only (not "1.0", "+1", " 1" or "1_000")."""

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass `next_cursor` back as `cursor` for the next; null at the end."""

    items: list[T]
    next_cursor: str | None


class Problem(BaseModel):
    """RFC 9457 problem details: every error the service answers, as
    `application/problem+json`. Some problems carry more members with the numbers a client
    needs (`available` and `shortfall` on `credit_limit_exceeded`, `errors` on
    `validation_error`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the problem: its `code` under a fixed base.")
    title: str = Field(description="A short summary of the problem's kind, for a person.")
    status: int = Field(description="The HTTP status, repeated.")
    code: str = Field(
        description=(
            "The stable code of the problem, in snake_case: branch on it, not on `title` or "
            "`detail`. Each operation's responses list the codes it can answer (as examples); "
            "the README's error table says what each means and whether a retry can succeed."
        )
    )
    detail: str = Field(description="What went wrong in this request, for a person.")
    instance: str | None = Field(default=None, description="The request's path.")
