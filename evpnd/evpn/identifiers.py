"""Route Distinguishers (RFC 4364 §4.2) and Ethernet Segment Identifiers (RFC 7432 §5).

Both are kept as their wire bytes (subclasses of `bytes`, so hashing and comparison run in C) and
interned: the routes of one VTEP share a handful of RDs and nearly every route carries the zero
ESI, so a million routes hold a few dozen of these objects, not a million.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import ClassVar, TypeVar

_INTERN_LIMIT = 1 << 16
_B = TypeVar("_B", bound=bytes)


def parse_admin_assigned(text: str, what: str) -> tuple[int, int, int]:
    """`ASN:N`, `IPv4:N` or `ASN4:N` as (kind, administrator, assigned number), the layout RDs
    (RFC 4364 §4.2) and route targets (RFC 4360, RFC 5668) share: kind 0 has a 2-byte AS and a
    4-byte number, kind 1 an IPv4 address and kind 2 a 4-byte AS, both with a 2-byte number.
    The administrator of kind 1 is the address as an int."""
    admin, sep, number = text.strip().rpartition(":")
    if not sep or not number.isdigit():
        raise ValueError(f"{what} {text!r}: expected ASN:N or IPv4:N")
    assigned = int(number)
    if "." in admin:
        try:
            address = int(ipaddress.IPv4Address(admin))
        except ValueError:
            raise ValueError(f"{what} {text!r}: {admin!r} is no IPv4 address") from None
        if assigned > 0xFFFF:
            raise ValueError(f"{what} {text!r}: IPv4:N takes N up to 65535")
        return 1, address, assigned
    if not admin.isdigit():
        raise ValueError(f"{what} {text!r}: expected ASN:N or IPv4:N")
    asn = int(admin)
    if asn <= 0xFFFF:
        if assigned > 0xFFFFFFFF:
            raise ValueError(f"{what} {text!r}: ASN:N takes N up to 4294967295")
        return 0, asn, assigned
    if asn > 0xFFFFFFFF or assigned > 0xFFFF:
        raise ValueError(f"{what} {text!r}: a 4-byte ASN takes N up to 65535")
    return 2, asn, assigned


def _interned(table: dict[bytes, _B], cls: type[_B], raw: bytes, size: int, what: str) -> _B:
    item = table.get(raw)
    if item is None:
        if len(raw) != size:
            raise ValueError(f"{what} has {size} bytes, not {len(raw)}")
        if len(table) >= _INTERN_LIMIT:
            table.clear()  # bounded against a peer that sends millions of distinct values
        item = table[raw] = cls(raw)
    return item


class RouteDistinguisher(bytes):
    """An 8-byte RD. Text forms as FRR prints them: type 0 `65000:100`, type 1
    `192.168.100.1:2`, type 2 `4200000000:100`."""

    __slots__ = ()
    _interned: ClassVar[dict[bytes, RouteDistinguisher]] = {}

    @classmethod
    def intern(cls, raw: bytes) -> RouteDistinguisher:
        return _interned(cls._interned, cls, raw, 8, "a route distinguisher")

    @classmethod
    def type0(cls, asn: int, assigned: int) -> RouteDistinguisher:
        return cls.intern(struct.pack("!HHI", 0, asn, assigned))

    @classmethod
    def type1(cls, ip: str, assigned: int) -> RouteDistinguisher:
        return cls.intern(struct.pack("!H4sH", 1, ipaddress.IPv4Address(ip).packed, assigned))

    @classmethod
    def type2(cls, asn: int, assigned: int) -> RouteDistinguisher:
        return cls.intern(struct.pack("!HIH", 2, asn, assigned))

    @classmethod
    def from_text(cls, text: str) -> RouteDistinguisher:
        """Parse `ASN:N`, `IPv4:N` or `ASN4:N`; a 2-byte ASN gives type 0, a larger one type 2."""
        kind, admin, assigned = parse_admin_assigned(text, "route distinguisher")
        if kind == 1:
            return cls.type1(str(ipaddress.IPv4Address(admin)), assigned)
        return cls.type0(admin, assigned) if kind == 0 else cls.type2(admin, assigned)

    @property
    def rd_type(self) -> int:
        return (self[0] << 8) | self[1]

    def __str__(self) -> str:
        kind = self.rd_type
        if kind == 0:
            _, asn, assigned = struct.unpack("!HHI", self)
            return f"{asn}:{assigned}"
        if kind == 1:
            return f"{ipaddress.IPv4Address(self[2:6])}:{int.from_bytes(self[6:8], 'big')}"
        if kind == 2:
            _, asn, assigned = struct.unpack("!HIH", self)
            return f"{asn}:{assigned}"
        return f"type{kind}:{self[2:].hex()}"

    def __repr__(self) -> str:
        return f"RouteDistinguisher({str(self)!r})"


class Esi(bytes):
    """A 10-byte Ethernet Segment Identifier; text `00:11:22:33:44:55:66:77:88:99`."""

    __slots__ = ()
    _interned: ClassVar[dict[bytes, Esi]] = {}

    @classmethod
    def intern(cls, raw: bytes) -> Esi:
        return _interned(cls._interned, cls, raw, 10, "an ESI")

    @classmethod
    def from_text(cls, text: str) -> Esi:
        parts = text.strip().split(":")
        if len(parts) != 10 or not all(len(p) in (1, 2) for p in parts):
            raise ValueError(f"ESI {text!r}: expected ten hex bytes separated by colons")
        try:
            return cls.intern(bytes(int(p, 16) for p in parts))
        except ValueError:
            raise ValueError(f"ESI {text!r}: expected ten hex bytes separated by colons") from None

    @property
    def esi_type(self) -> int:
        return self[0]

    def __str__(self) -> str:
        return self.hex(":")

    def __repr__(self) -> str:
        return f"Esi({str(self)!r})"


ZERO_ESI = Esi.intern(bytes(10))


def mac_to_text(mac: bytes) -> str:
    return mac.hex(":")


def mac_from_text(text: str) -> bytes:
    parts = text.strip().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError(f"MAC address {text!r}: expected six hex bytes separated by colons")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"MAC address {text!r}: expected six hex bytes") from None


def is_address(text: str) -> bool:
    """An IPv4 or IPv6 address in text form."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def ip_to_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))
