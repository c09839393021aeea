"""Decode errors as values, classified by the RFC 7606 action they call for.

The codec never lets an exception escape for bad input: it returns a `DecodeError` (or attaches
softer ones to a decoded UPDATE) and the session decides what to do with it. RFC 7606 §3(j): when
one message has several errors, the most severe action wins and is carried out once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from evpnd.wire.constants import ErrorCode, error_name


class Named(Protocol):
    """A route as errors see it: something with a text form for the log (EVPN and IPv4 routes
    both are). Keeps this module below the packages that define routes."""

    @property
    def text(self) -> str: ...


class ErrorAction(IntEnum):
    """RFC 7606 §2 approaches, ordered from the mildest to the most severe."""

    #: RFC 7606 §5.4: an NLRI of a type this speaker does not know; the route is ignored.
    NLRI_DISCARD = 1
    #: The attribute is dropped and the UPDATE processed without it.
    ATTRIBUTE_DISCARD = 2
    #: The UPDATE's routes are withdrawn instead of announced.
    TREAT_AS_WITHDRAW = 3
    #: The session is closed with the NOTIFICATION carried by the error.
    SESSION_RESET = 4


@dataclass(frozen=True, slots=True)
class DecodeError:
    """What is wrong with a message, where, and what RFC 7606 says to do about it.

    `offset` counts bytes from the start of the message (the first marker byte), so that a log
    line can point at the exact place in a capture. `code`/`subcode`/`data` are the NOTIFICATION
    to send when `action` is SESSION_RESET; for the other actions they record what would have been
    sent before RFC 7606 (useful in logs, not sent).
    """

    action: ErrorAction
    reason: str
    offset: int = 0
    code: int = ErrorCode.UPDATE_MESSAGE
    subcode: int = 0
    data: bytes = b""
    attribute: int | None = None
    #: For TREAT_AS_WITHDRAW: the routes that the error withdraws. For NLRI_DISCARD: empty.
    withdrawn: tuple[Named, ...] = ()

    @property
    def notification_name(self) -> str:
        return error_name(self.code, self.subcode)

    def __str__(self) -> str:
        where = f" (attribute {self.attribute})" if self.attribute is not None else ""
        return (
            f"{self.action.name.lower().replace('_', '-')}: {self.reason}{where} at byte "
            f"{self.offset} [{self.notification_name}]"
        )


class Malformed(Exception):
    """Raised inside the codec to unwind to the nearest boundary, which turns it into a
    `DecodeError`. It never leaves the codec's public functions."""

    def __init__(self, error: DecodeError) -> None:
        super().__init__(str(error))
        self.error = error


def most_severe(errors: list[DecodeError] | tuple[DecodeError, ...]) -> DecodeError | None:
    if not errors:
        return None
    return max(errors, key=lambda e: e.action)
