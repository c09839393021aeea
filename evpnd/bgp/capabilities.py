"""OPEN capabilities (RFC 5492) as immutable values; unknown ones kept as raw bytes."""

from __future__ import annotations

import struct
from typing import NamedTuple

from evpnd.wire.constants import CapabilityCode as C


class CapabilityError(ValueError):
    """A capability whose value does not fit its code; the OPEN is refused."""


class Multiprotocol(NamedTuple):
    afi: int
    safi: int
    reserved: int = 0

    @property
    def code(self) -> int:
        return C.MULTIPROTOCOL

    def encode_value(self) -> bytes:
        return struct.pack("!HBB", self.afi, self.reserved, self.safi)


class RouteRefresh(NamedTuple):
    """RFC 2918; `cisco` for the pre-standard code 128 that FRR and others still send."""

    cisco: bool = False

    @property
    def code(self) -> int:
        return C.ROUTE_REFRESH_CISCO if self.cisco else C.ROUTE_REFRESH

    def encode_value(self) -> bytes:
        return b""


class EnhancedRouteRefresh(NamedTuple):
    @property
    def code(self) -> int:
        return C.ENHANCED_ROUTE_REFRESH

    def encode_value(self) -> bytes:
        return b""


class ExtendedMessage(NamedTuple):
    @property
    def code(self) -> int:
        return C.EXTENDED_MESSAGE

    def encode_value(self) -> bytes:
        return b""


class FourOctetAs(NamedTuple):
    asn: int

    @property
    def code(self) -> int:
        return C.FOUR_OCTET_AS

    def encode_value(self) -> bytes:
        return self.asn.to_bytes(4, "big")


class GracefulRestartFamily(NamedTuple):
    afi: int
    safi: int
    forwarding_preserved: bool
    flags: int = 0  # other bits, as received


class GracefulRestart(NamedTuple):
    """RFC 4724 §3, with RFC 8538's N bit. `restarting` is the R bit."""

    restart_time: int
    restarting: bool = False
    notification: bool = False
    families: tuple[GracefulRestartFamily, ...] = ()
    reserved: int = 0  # the other two header bits

    @property
    def code(self) -> int:
        return C.GRACEFUL_RESTART

    def encode_value(self) -> bytes:
        head = (
            (0x8000 if self.restarting else 0)
            | (0x4000 if self.notification else 0)
            | (self.reserved << 12)
            | self.restart_time
        )
        out = head.to_bytes(2, "big")
        for fam in self.families:
            bits = (fam.flags & 0x7F) | (0x80 if fam.forwarding_preserved else 0)
            out += struct.pack("!HBB", fam.afi, fam.safi, bits)
        return out


ADD_PATH_RECEIVE = 1
ADD_PATH_SEND = 2


class AddPath(NamedTuple):
    """RFC 7911 §4: (AFI, SAFI, send/receive) triples; 1 receive, 2 send, 3 both."""

    families: tuple[tuple[int, int, int], ...]

    @property
    def code(self) -> int:
        return C.ADD_PATH

    def encode_value(self) -> bytes:
        return b"".join(struct.pack("!HBB", *fam) for fam in self.families)


class Fqdn(NamedTuple):
    """The hostname capability (draft-walton-bgp-hostname-capability), sent by FRR."""

    hostname: str
    domain: str = ""

    @property
    def code(self) -> int:
        return C.FQDN

    def encode_value(self) -> bytes:
        host = self.hostname.encode()[:255]
        domain = self.domain.encode()[:255]
        return bytes((len(host),)) + host + bytes((len(domain),)) + domain


class UnknownCapability(NamedTuple):
    code: int
    value: bytes

    def encode_value(self) -> bytes:
        return self.value


Capability = (
    Multiprotocol
    | RouteRefresh
    | EnhancedRouteRefresh
    | ExtendedMessage
    | FourOctetAs
    | GracefulRestart
    | AddPath
    | Fqdn
    | UnknownCapability
)


def encode_capability(cap: Capability) -> bytes:
    value = cap.encode_value()
    return bytes((cap.code, len(value))) + value


def decode_capability(code: int, value: bytes) -> Capability:
    """Decode one capability TLV's value; raises CapabilityError when its length is wrong."""
    size = len(value)
    if code == C.MULTIPROTOCOL:
        if size != 4:
            raise CapabilityError(f"multiprotocol capability of {size} bytes, expected 4")
        afi, reserved, safi = struct.unpack("!HBB", value)
        return Multiprotocol(afi, safi, reserved)
    if code in (
        C.ROUTE_REFRESH,
        C.ROUTE_REFRESH_CISCO,
        C.ENHANCED_ROUTE_REFRESH,
        C.EXTENDED_MESSAGE,
    ):
        if size != 0:
            raise CapabilityError(f"capability {code} of {size} bytes, expected 0")
        if code == C.ENHANCED_ROUTE_REFRESH:
            return EnhancedRouteRefresh()
        if code == C.EXTENDED_MESSAGE:
            return ExtendedMessage()
        return RouteRefresh(cisco=code == C.ROUTE_REFRESH_CISCO)
    if code == C.FOUR_OCTET_AS:
        if size != 4:
            raise CapabilityError(f"4-octet AS capability of {size} bytes, expected 4")
        return FourOctetAs(int.from_bytes(value, "big"))
    if code == C.GRACEFUL_RESTART:
        if size < 2 or (size - 2) % 4:
            raise CapabilityError(f"graceful restart capability of {size} bytes")
        head = int.from_bytes(value[:2], "big")
        families = []
        for pos in range(2, size, 4):
            afi, safi, bits = struct.unpack_from("!HBB", value, pos)
            families.append(GracefulRestartFamily(afi, safi, bool(bits & 0x80), bits & 0x7F))
        return GracefulRestart(
            head & 0x0FFF,
            bool(head & 0x8000),
            bool(head & 0x4000),
            tuple(families),
            (head >> 12) & 0x3,
        )
    if code == C.ADD_PATH:
        if size == 0 or size % 4:
            raise CapabilityError(f"ADD-PATH capability of {size} bytes")
        fams = tuple(struct.unpack_from("!HBB", value, pos) for pos in range(0, size, 4))
        return AddPath(fams)
    if code == C.FQDN:
        if size < 1 or size < 1 + value[0] + 1:
            raise CapabilityError(f"FQDN capability of {size} bytes is cut short")
        host_len = value[0]
        domain_len = value[1 + host_len]
        if 2 + host_len + domain_len != size:
            raise CapabilityError(f"FQDN capability of {size} bytes has inconsistent lengths")
        return Fqdn(
            value[1 : 1 + host_len].decode("utf-8", "replace"),
            value[2 + host_len :].decode("utf-8", "replace"),
        )
    return UnknownCapability(code, value)
