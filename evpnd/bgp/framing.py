"""Cutting a TCP byte stream into BGP messages (RFC 4271 §4.1).

Bytes go in as they arrive, in pieces of any size; whole messages come out. A header that fails
the RFC 4271 §6.1 checks ends the stream: the same error is returned from then on, since nothing
after a lost message boundary can be trusted.
"""

from __future__ import annotations

from evpnd.bgp.messages import check_header
from evpnd.wire.constants import HEADER_LEN, MAX_MESSAGE_LEN
from evpnd.wire.errors import DecodeError


class MessageReader:
    def __init__(self, max_message_len: int = MAX_MESSAGE_LEN) -> None:
        self.max_message_len = max_message_len
        self._buffer = bytearray()
        self._start = 0
        self._failed: DecodeError | None = None
        #: Bytes consumed so far, so that errors can say where in the stream they happened.
        self.stream_offset = 0

    def feed(self, data: bytes) -> None:
        if self._failed is None:
            self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._start

    def next_message(self) -> bytes | DecodeError | None:
        """The next whole message, a DecodeError for a broken header, or None for 'need more'."""
        if self._failed is not None:
            return self._failed
        buf = self._buffer
        start = self._start
        if len(buf) - start < HEADER_LEN:
            self._compact()
            return None
        header = bytes(buf[start : start + HEADER_LEN])
        error = check_header(header, self.max_message_len)
        if error is not None:
            self._failed = error
            self._buffer = bytearray()
            return error
        length = (header[16] << 8) | header[17]
        if len(buf) - start < length:
            self._compact()
            return None
        message = bytes(buf[start : start + length])
        self._start = start + length
        self.stream_offset += length
        return message

    def messages(self) -> list[bytes | DecodeError]:
        """Every whole message buffered now; a DecodeError, if any, is last."""
        out: list[bytes | DecodeError] = []
        while True:
            item = self.next_message()
            if item is None:
                return out
            out.append(item)
            if isinstance(item, DecodeError):
                return out

    def _compact(self) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
