"""Path attributes (RFC 4271 §5 and the RFCs that added one each) as values: one immutable
`PathAttributes` per distinct set. Their wire form and RFC 7606 handling are the table in
attribute_codecs.py.

MP_REACH_NLRI and MP_UNREACH_NLRI are not kept here: their routes are the UPDATE's, and only the
next hop of MP_REACH_NLRI (which every route of the UPDATE shares) is stored, as `nexthop`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from evpnd.evpn.extcommunities import (
    DefaultGateway,
    Encapsulation,
    ExtCommunity,
    MacMobility,
    RouterMac,
    RouteTarget,
)
from evpnd.wire.constants import AS_TRANS

#: ORIGIN's values as FRR prints them (RFC 4271 §5.1.1)
_ORIGINS = {0: "IGP", 1: "EGP", 2: "incomplete"}

AS_SET = 1
AS_SEQUENCE = 2
AS_CONFED_SEQUENCE = 3
AS_CONFED_SET = 4
_SEGMENT_NAMES = {AS_SET: "{}", AS_SEQUENCE: "", AS_CONFED_SEQUENCE: "()", AS_CONFED_SET: "[]"}


class AsPath(NamedTuple):
    """An AS_PATH as (segment type, ASNs) pairs, always with 4-byte ASNs: a path from a
    2-byte-AS peer is merged with its AS4_PATH while decoding (RFC 6793 §4.2.3)."""

    segments: tuple[tuple[int, tuple[int, ...]], ...] = ()

    @classmethod
    def sequence(cls, *asns: int) -> AsPath:
        return cls(((AS_SEQUENCE, tuple(asns)),)) if asns else cls()

    @property
    def length(self) -> int:
        """Path length for best-path selection (RFC 4271 §9.1.2.2: a set counts as one,
        RFC 5065: confederation segments count as none)."""
        total = 0
        for kind, asns in self.segments:
            if kind == AS_SEQUENCE:
                total += len(asns)
            elif kind == AS_SET:
                total += 1
        return total

    @property
    def first_as(self) -> int | None:
        for kind, asns in self.segments:
            if kind == AS_SEQUENCE and asns:
                return asns[0]
            if kind in (AS_SET, AS_CONFED_SET, AS_CONFED_SEQUENCE):
                return None
        return None

    def asns(self) -> set[int]:
        return {asn for _, asns in self.segments for asn in asns}

    def prepend(self, asn: int) -> AsPath:
        if self.segments and self.segments[0][0] == AS_SEQUENCE and len(self.segments[0][1]) < 255:
            head = (AS_SEQUENCE, (asn, *self.segments[0][1]))
            return AsPath((head, *self.segments[1:]))
        return AsPath(((AS_SEQUENCE, (asn,)), *self.segments))

    @property
    def text(self) -> str:
        parts = []
        for kind, asns in self.segments:
            body = " ".join(str(a) for a in asns)
            brackets = _SEGMENT_NAMES.get(kind, "")
            parts.append(f"{brackets[0]}{body}{brackets[1]}" if brackets else body)
        return " ".join(parts)

    def encode(self, four_octet: bool = True) -> bytes:
        out = bytearray()
        fmt = "!%dI" if four_octet else "!%dH"
        for kind, asns in self.segments:
            if not four_octet:
                asns = tuple(a if a <= 0xFFFF else AS_TRANS for a in asns)
            for i in range(0, max(len(asns), 1), 255):
                chunk = asns[i : i + 255]
                out += bytes((kind, len(chunk))) + struct.pack(fmt % len(chunk), *chunk)
        return bytes(out)

    @property
    def needs_as4(self) -> bool:
        return any(a > 0xFFFF for _, asns in self.segments for a in asns)


class Aggregator(NamedTuple):
    asn: int
    address: bytes


class PmsiTunnel(NamedTuple):
    """PMSI Tunnel attribute (RFC 6514 §5). For EVPN with VXLAN (RFC 8365 §5.1.3) the label is
    the VNI and, for ingress replication (type 6), the tunnel id is the VTEP address."""

    flags: int
    tunnel_type: int
    label: int
    tunnel_id: bytes

    @property
    def endpoint(self) -> str | None:
        if self.tunnel_type == 6 and len(self.tunnel_id) in (4, 16):
            return str(ipaddress.ip_address(self.tunnel_id))
        return None

    def encode(self) -> bytes:
        return (
            bytes((self.flags, self.tunnel_type)) + self.label.to_bytes(3, "big") + (self.tunnel_id)
        )


PMSI_INGRESS_REPLICATION = 6


class RawAttribute(NamedTuple):
    """An optional transitive attribute this speaker does not know, passed on as received
    with the Partial bit set (RFC 4271 §5)."""

    type_code: int
    flags: int
    value: bytes


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """One set of path attributes. Immutable and shared by every route that carries it;
    derive a changed copy with `dataclasses.replace`."""

    origin: int | None = None
    as_path: AsPath | None = None
    next_hop: bytes | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: Aggregator | None = None
    communities: tuple[int, ...] = ()
    originator_id: bytes | None = None
    cluster_list: tuple[bytes, ...] = ()
    ext_communities: tuple[ExtCommunity, ...] = ()
    pmsi_tunnel: PmsiTunnel | None = None
    large_communities: tuple[tuple[int, int, int], ...] = ()
    unknown: tuple[RawAttribute, ...] = ()
    #: The MP_REACH_NLRI next hop: 4 or 16 bytes, or 32 (global + link-local, RFC 2545).
    nexthop: bytes | None = field(default=None)

    @property
    def nexthop_text(self) -> str | None:
        if self.nexthop is None:
            return None
        return str(
            ipaddress.ip_address(self.nexthop[:16] if len(self.nexthop) == 32 else (self.nexthop))
        )

    @property
    def text(self) -> str:
        """The attributes in words, in the order and the forms FRR prints them: `nexthop
        192.0.2.2, origin IGP, as-path 65001, localpref 100, extcommunity RT:65000:100 ET:8,
        pmsi ingress-replication label 100 endpoint 192.0.2.2` (debug lines, `evpnd
        decode`)."""
        words = []
        if self.nexthop is not None:
            words.append(f"nexthop {self.nexthop_text}")
        elif self.next_hop is not None:
            words.append(f"nexthop {ipaddress.ip_address(self.next_hop)}")
        if self.origin is not None:
            words.append(f"origin {_ORIGINS.get(self.origin, str(self.origin))}")
        if self.as_path is not None:
            words.append(f"as-path {self.as_path.text or '(empty)'}")
        if self.med is not None:
            words.append(f"metric {self.med}")
        if self.local_pref is not None:
            words.append(f"localpref {self.local_pref}")
        if self.atomic_aggregate:
            words.append("atomic-aggregate")
        if self.aggregator is not None:
            address = ipaddress.ip_address(self.aggregator.address)
            words.append(f"aggregator {self.aggregator.asn} {address}")
        if self.communities:
            words.append(
                "community " + " ".join(f"{c >> 16}:{c & 0xFFFF}" for c in self.communities)
            )
        if self.originator_id is not None:
            words.append(f"originator-id {ipaddress.ip_address(self.originator_id)}")
        if self.cluster_list:
            ids = " ".join(str(ipaddress.ip_address(c)) for c in self.cluster_list)
            words.append(f"cluster-list {ids}")
        if self.ext_communities:
            words.append("extcommunity " + " ".join(c.text for c in self.ext_communities))
        if self.pmsi_tunnel is not None:
            tunnel = self.pmsi_tunnel
            kind = (
                "ingress-replication" if tunnel.tunnel_type == 6 else f"type {tunnel.tunnel_type}"
            )
            end = tunnel.endpoint or tunnel.tunnel_id.hex()
            words.append(f"pmsi {kind} label {tunnel.label} endpoint {end}")
        if self.large_communities:
            words.append(
                "large-community " + " ".join(f"{a}:{b}:{c}" for a, b, c in self.large_communities)
            )
        for raw in self.unknown:
            words.append(f"attribute {raw.type_code} ({len(raw.value)} bytes) {raw.value.hex()}")
        return ", ".join(words) or "(none)"

    def __str__(self) -> str:
        return self.text

    @property
    def route_targets(self) -> tuple[RouteTarget, ...]:
        return tuple(c for c in self.ext_communities if isinstance(c, RouteTarget))

    @property
    def encapsulation(self) -> int | None:
        for c in self.ext_communities:
            if isinstance(c, Encapsulation):
                return c.tunnel_type
        return None

    @property
    def mac_mobility(self) -> MacMobility | None:
        for c in self.ext_communities:
            if isinstance(c, MacMobility):
                return c
        return None

    @property
    def router_mac(self) -> bytes | None:
        for c in self.ext_communities:
            if isinstance(c, RouterMac):
                return c.mac
        return None

    @property
    def default_gateway(self) -> bool:
        return any(isinstance(c, DefaultGateway) for c in self.ext_communities)


# --- RFC 6793: merging what a 2-octet speaker sends -------------------------------------------


class Merged(NamedTuple):
    as_path: AsPath | None
    aggregator: Aggregator | None


def merge_as4(
    as_path: AsPath | None,
    aggregator: Aggregator | None,
    as4_path: AsPath | None,
    as4_aggregator: Aggregator | None,
) -> Merged:
    """RFC 6793 §4.2.3: the true path and aggregator from a 2-octet speaker's AS_PATH and
    AGGREGATOR and its AS4_PATH and AS4_AGGREGATOR."""
    if as4_aggregator is not None:
        if aggregator is not None and aggregator.asn != AS_TRANS:
            # an old speaker aggregated after the AS4_ attributes were made: ignore both
            return Merged(as_path, aggregator)
        aggregator = as4_aggregator
    if as4_path is None or as_path is None:
        return Merged(as_path, aggregator)
    keep = as_path.length - as4_path.length
    if keep < 0:
        return Merged(as_path, aggregator)  # RFC 6793: AS4_PATH longer than AS_PATH: ignored
    # The leading part of AS_PATH that AS4_PATH lacks: confederation segments (never in
    # AS4_PATH) and the ASes old speakers prepended after AS4_PATH was made.
    leading: list[tuple[int, tuple[int, ...]]] = []
    for kind, asns in as_path.segments:
        if kind in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            leading.append((kind, asns))
        elif keep <= 0:
            break
        elif kind == AS_SEQUENCE:
            leading.append((kind, asns[:keep]))
            keep -= min(keep, len(asns))
        else:
            leading.append((kind, asns))
            keep -= 1
    return Merged(AsPath((*leading, *as4_path.segments)), aggregator)


def decode_as_path(value: bytes, width: int) -> AsPath | None:
    segments = []
    pos = 0
    size = len(value)
    fmt = "!%dI" if width == 4 else "!%dH"
    while pos < size:
        if pos + 2 > size:
            return None
        kind, count = value[pos], value[pos + 1]
        end = pos + 2 + count * width
        # RFC 7606 §7.2: an unknown segment type, a zero count or an overrun is malformed.
        if kind not in _SEGMENT_NAMES or count == 0 or end > size:
            return None
        segments.append((kind, struct.unpack_from(fmt % count, value, pos + 2)))
        pos = end
    return AsPath(tuple(segments))
