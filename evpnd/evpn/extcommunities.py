"""Extended communities (RFC 4360) that EVPN uses, each an immutable 8-byte value.

Every class encodes back to exactly the bytes it was decoded from; anything not understood is
an `UnknownExtCommunity` holding its raw bytes, so it is passed on unchanged.
Text forms follow FRR's `show bgp l2vpn evpn` (`RT:65000:100`, `ET:8`, `MM:3, sticky MAC`).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from evpnd.evpn.identifiers import mac_to_text, parse_admin_assigned

# (type, subtype) pairs, from the IANA "BGP Extended Communities" registry.
_RT_AS2 = 0x00
_RT_IPV4 = 0x01
_RT_AS4 = 0x02
_SUBTYPE_RT = 0x02
_OPAQUE = 0x03
_SUBTYPE_ENCAPSULATION = 0x0C
_SUBTYPE_DEFAULT_GATEWAY = 0x0D
_EVPN = 0x06
_EVPN_MAC_MOBILITY = 0x00
_EVPN_ESI_LABEL = 0x01
_EVPN_ES_IMPORT_RT = 0x02
_EVPN_ROUTER_MAC = 0x03
_EVPN_DF_ELECTION = 0x06

TUNNEL_VXLAN = 8
TUNNEL_NAMES = {8: "VXLAN", 9: "NVGRE", 10: "MPLS", 11: "MPLS in GRE", 12: "VXLAN GPE"}


class RouteTarget(NamedTuple):
    """RT of RFC 4360 §4 (kind 0: 2-byte AS, kind 1: IPv4, kind 2: 4-byte AS, RFC 5668).

    `admin` is the AS number, or the IPv4 address as an int for kind 1."""

    kind: int
    admin: int
    assigned: int

    @classmethod
    def from_text(cls, text: str) -> RouteTarget:
        """`65000:100`, `192.0.2.1:7`, `4200000000:100` (as an RD; a 2-byte AS gives kind 0)."""
        body = text.strip()
        if body.upper().startswith("RT:"):
            body = body[3:]
        return cls(*parse_admin_assigned(body, "route target"))

    def encode(self) -> bytes:
        if self.kind == 0:
            return struct.pack("!BBHI", _RT_AS2, _SUBTYPE_RT, self.admin, self.assigned)
        if self.kind == 1:
            return struct.pack("!BBIH", _RT_IPV4, _SUBTYPE_RT, self.admin, self.assigned)
        return struct.pack("!BBIH", _RT_AS4, _SUBTYPE_RT, self.admin, self.assigned)

    @property
    def value(self) -> str:
        """`65000:100`, without the `RT:` prefix: what configuration and JSON use."""
        if self.kind == 1:
            return f"{ipaddress.IPv4Address(self.admin)}:{self.assigned}"
        return f"{self.admin}:{self.assigned}"

    @property
    def text(self) -> str:
        return f"RT:{self.value}"


class Encapsulation(NamedTuple):
    """Encapsulation extended community (RFC 9012 §4.1); VXLAN is tunnel type 8."""

    tunnel_type: int
    reserved: int = 0

    def encode(self) -> bytes:
        return struct.pack(
            "!BBIH", _OPAQUE, _SUBTYPE_ENCAPSULATION, self.reserved, self.tunnel_type
        )

    @property
    def text(self) -> str:
        return f"ET:{self.tunnel_type}"


class MacMobility(NamedTuple):
    """MAC Mobility (RFC 7432 §7.7): a sequence number and the sticky (static) flag."""

    sequence: int
    sticky: bool = False
    flags: int = 0  # the other flag bits, kept as received
    reserved: int = 0

    def encode(self) -> bytes:
        flags = (self.flags & 0xFE) | (1 if self.sticky else 0)
        return struct.pack("!BBBBI", _EVPN, _EVPN_MAC_MOBILITY, flags, self.reserved, self.sequence)

    @property
    def text(self) -> str:
        return f"MM:{self.sequence}" + (", sticky MAC" if self.sticky else "")


class EsiLabel(NamedTuple):
    """ESI Label (RFC 7432 §7.5): single-active flag and the ESI's label."""

    single_active: bool
    label: int
    flags: int = 0
    reserved: int = 0

    def encode(self) -> bytes:
        flags = (self.flags & 0xFE) | (1 if self.single_active else 0)
        return struct.pack(
            "!BBBH3s",
            _EVPN,
            _EVPN_ESI_LABEL,
            flags,
            self.reserved,
            self.label.to_bytes(3, "big"),
        )

    @property
    def text(self) -> str:
        mode = "single-active" if self.single_active else "all-active"
        return f"ESI-label-Rt:{mode}:{self.label}"


class EsImportRouteTarget(NamedTuple):
    """ES-Import Route Target (RFC 7432 §7.6): a MAC derived from the ESI."""

    mac: bytes

    def encode(self) -> bytes:
        return bytes((_EVPN, _EVPN_ES_IMPORT_RT)) + self.mac

    @property
    def text(self) -> str:
        return f"ES-Import-Rt:{mac_to_text(self.mac)}"


class RouterMac(NamedTuple):
    """EVPN Router's MAC (RFC 9135 §8.1): the MAC a VTEP routes with, for symmetric IRB."""

    mac: bytes

    def encode(self) -> bytes:
        return bytes((_EVPN, _EVPN_ROUTER_MAC)) + self.mac

    @property
    def text(self) -> str:
        return f"Rmac:{mac_to_text(self.mac)}"


class DefaultGateway(NamedTuple):
    """Default Gateway (RFC 7432 §7.8): the route is a gateway's MAC/IP."""

    value: bytes = bytes(6)

    def encode(self) -> bytes:
        return bytes((_OPAQUE, _SUBTYPE_DEFAULT_GATEWAY)) + self.value

    @property
    def text(self) -> str:
        return "Default Gateway"


class DfElection(NamedTuple):
    """DF Election (RFC 8584 §3.2): algorithm, capability bitmap; the rest kept as received
    (RFC 9785 puts a preference there)."""

    algorithm: int
    bitmap: int
    rest: bytes = bytes(3)

    def encode(self) -> bytes:
        return struct.pack("!BBBH", _EVPN, _EVPN_DF_ELECTION, self.algorithm, self.bitmap) + (
            self.rest
        )

    @property
    def text(self) -> str:
        return f"DF: (alg: {self.algorithm & 0x1F}, bmap: 0x{self.bitmap:04x})"


class UnknownExtCommunity(NamedTuple):
    raw: bytes

    def encode(self) -> bytes:
        return self.raw

    @property
    def text(self) -> str:
        return f"0x{self.raw.hex()}"


ExtCommunity = (
    RouteTarget
    | Encapsulation
    | MacMobility
    | EsiLabel
    | EsImportRouteTarget
    | RouterMac
    | DefaultGateway
    | DfElection
    | UnknownExtCommunity
)


def decode_ext_community(raw: bytes) -> ExtCommunity:
    """Decode one 8-byte extended community; never fails (unknown ones stay raw)."""
    kind, subtype = raw[0], raw[1]
    if subtype == _SUBTYPE_RT:
        if kind == _RT_AS2:
            _, _, admin, assigned = struct.unpack("!BBHI", raw)
            return RouteTarget(0, admin, assigned)
        if kind in (_RT_IPV4, _RT_AS4):
            _, _, admin, assigned = struct.unpack("!BBIH", raw)
            return RouteTarget(1 if kind == _RT_IPV4 else 2, admin, assigned)
    if kind == _OPAQUE:
        if subtype == _SUBTYPE_ENCAPSULATION:
            _, _, reserved, tunnel = struct.unpack("!BBIH", raw)
            return Encapsulation(tunnel, reserved)
        if subtype == _SUBTYPE_DEFAULT_GATEWAY:
            return DefaultGateway(raw[2:])
    if kind == _EVPN:
        if subtype == _EVPN_MAC_MOBILITY:
            _, _, flags, reserved, sequence = struct.unpack("!BBBBI", raw)
            return MacMobility(sequence, bool(flags & 1), flags & 0xFE, reserved)
        if subtype == _EVPN_ESI_LABEL:
            flags = raw[2]
            return EsiLabel(
                bool(flags & 1),
                int.from_bytes(raw[5:8], "big"),
                flags & 0xFE,
                int.from_bytes(raw[3:5], "big"),
            )
        if subtype == _EVPN_ES_IMPORT_RT:
            return EsImportRouteTarget(raw[2:])
        if subtype == _EVPN_ROUTER_MAC:
            return RouterMac(raw[2:])
        if subtype == _EVPN_DF_ELECTION:
            return DfElection(raw[2], int.from_bytes(raw[3:5], "big"), raw[5:])
    return UnknownExtCommunity(raw)
