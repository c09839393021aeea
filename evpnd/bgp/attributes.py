"""Path attributes (RFC 4271 §5 and the RFCs that added one each), decoded into one immutable
`PathAttributes` value per distinct set, and their RFC 7606 error handling.

MP_REACH_NLRI and MP_UNREACH_NLRI are not kept here: their routes are the UPDATE's, and only the
next hop of MP_REACH_NLRI (which every route of the UPDATE shares) is stored, as `nexthop`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from evpnd.bgp.context import CodecContext
from evpnd.evpn.extcommunities import (
    DefaultGateway,
    Encapsulation,
    ExtCommunity,
    MacMobility,
    RouterMac,
    RouteTarget,
    decode_ext_community,
)
from evpnd.wire.constants import AS_TRANS, AttrFlag, AttrType, UpdateSubcode
from evpnd.wire.errors import DecodeError, ErrorAction

AS_SET = 1
AS_SEQUENCE = 2
AS_CONFED_SEQUENCE = 3
AS_CONFED_SET = 4
_SEGMENT_NAMES = {AS_SET: "{}", AS_SEQUENCE: "", AS_CONFED_SEQUENCE: "()", AS_CONFED_SET: "[]"}

_O = AttrFlag.OPTIONAL
_T = AttrFlag.TRANSITIVE
_P = AttrFlag.PARTIAL
_X = AttrFlag.EXTENDED_LENGTH

#: The Optional and Transitive bits each known attribute must carry (RFC 7606 §3(c)).
EXPECTED_FLAGS: dict[int, int] = {
    AttrType.ORIGIN: _T,
    AttrType.AS_PATH: _T,
    AttrType.NEXT_HOP: _T,
    AttrType.MULTI_EXIT_DISC: _O,
    AttrType.LOCAL_PREF: _T,
    AttrType.ATOMIC_AGGREGATE: _T,
    AttrType.AGGREGATOR: _O | _T,
    AttrType.COMMUNITIES: _O | _T,
    AttrType.ORIGINATOR_ID: _O,
    AttrType.CLUSTER_LIST: _O,
    AttrType.MP_REACH_NLRI: _O,
    AttrType.MP_UNREACH_NLRI: _O,
    AttrType.EXTENDED_COMMUNITIES: _O | _T,
    AttrType.AS4_PATH: _O | _T,
    AttrType.AS4_AGGREGATOR: _O | _T,
    AttrType.PMSI_TUNNEL: _O | _T,
    AttrType.LARGE_COMMUNITIES: _O | _T,
}


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


# --- decoding --------------------------------------------------------------------------------


class AttributeSlice(NamedTuple):
    type_code: int
    flags: int
    start: int  # of the value, in the message
    end: int
    header_start: int


def _error(
    action: ErrorAction,
    reason: str,
    at: AttributeSlice,
    subcode: int,
    data: bytes = b"",
) -> DecodeError:
    return DecodeError(
        action, reason, at.header_start, subcode=subcode, data=data, attribute=at.type_code
    )


def _raw(msg: bytes, at: AttributeSlice) -> bytes:
    return msg[at.header_start : at.end]


def decode_attribute_values(
    msg: bytes, slices: list[AttributeSlice], ctx: CodecContext, errors: list[DecodeError]
) -> PathAttributes:
    """Decode every attribute but MP_REACH/MP_UNREACH (already handled by the caller) into a
    PathAttributes; malformed ones add errors of the RFC 7606 action their RFC names."""
    values: dict[str, object] = {}
    as4_path: AsPath | None = None
    as4_aggregator: Aggregator | None = None
    unknown: list[RawAttribute] = []
    taw = ErrorAction.TREAT_AS_WITHDRAW
    discard = ErrorAction.ATTRIBUTE_DISCARD
    length_error = UpdateSubcode.ATTRIBUTE_LENGTH_ERROR
    for at in slices:
        code = at.type_code
        if code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
            continue
        value = msg[at.start : at.end]
        size = len(value)
        expected = EXPECTED_FLAGS.get(code)
        if expected is None:
            if not at.flags & _O:
                # RFC 4271 §6.3, unchanged by RFC 7606: an unknown well-known attribute.
                errors.append(
                    _error(
                        ErrorAction.SESSION_RESET,
                        f"unrecognized well-known attribute {code}",
                        at,
                        UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                        _raw(msg, at),
                    )
                )
            elif at.flags & _T:
                unknown.append(RawAttribute(code, (at.flags | _P) & ~_X, value))
            # An unknown optional non-transitive attribute is quietly ignored (RFC 4271 §9).
            continue
        if at.flags & (_O | _T) != expected:
            action = (
                discard
                if code
                in (
                    AttrType.ATOMIC_AGGREGATE,
                    AttrType.AGGREGATOR,
                    AttrType.AS4_PATH,
                    AttrType.AS4_AGGREGATOR,
                )
                else taw
            )
            errors.append(
                _error(
                    action,
                    f"attribute {AttrType(code).name} has flags 0x{at.flags:02x}",
                    at,
                    UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
                    _raw(msg, at),
                )
            )
            continue
        if code == AttrType.ORIGIN:
            if size != 1 or value[0] > 2:
                errors.append(
                    _error(
                        taw,
                        f"ORIGIN of {size} bytes / value {value.hex()}",
                        at,
                        UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE,
                        _raw(msg, at),
                    )
                )
            else:
                values["origin"] = value[0]
        elif code == AttrType.AS_PATH:
            path = _decode_as_path(value, 4 if ctx.four_octet_as else 2)
            if path is None:
                errors.append(
                    _error(
                        taw, "AS_PATH segments do not add up", at, UpdateSubcode.MALFORMED_AS_PATH
                    )
                )
            else:
                values["as_path"] = path
        elif code == AttrType.NEXT_HOP:
            if size != 4:
                errors.append(
                    _error(taw, f"NEXT_HOP of {size} bytes", at, length_error, _raw(msg, at))
                )
            else:
                values["next_hop"] = value
        elif code == AttrType.MULTI_EXIT_DISC:
            if size != 4:
                errors.append(
                    _error(taw, f"MULTI_EXIT_DISC of {size} bytes", at, length_error, _raw(msg, at))
                )
            else:
                values["med"] = int.from_bytes(value, "big")
        elif code == AttrType.LOCAL_PREF:
            if ctx.external:
                errors.append(_error(discard, "LOCAL_PREF from an external peer", at, length_error))
            elif size != 4:
                errors.append(
                    _error(taw, f"LOCAL_PREF of {size} bytes", at, length_error, _raw(msg, at))
                )
            else:
                values["local_pref"] = int.from_bytes(value, "big")
        elif code == AttrType.ATOMIC_AGGREGATE:
            if size != 0:
                errors.append(
                    _error(
                        discard,
                        f"ATOMIC_AGGREGATE of {size} bytes",
                        at,
                        length_error,
                        _raw(msg, at),
                    )
                )
            else:
                values["atomic_aggregate"] = True
        elif code == AttrType.AGGREGATOR:
            want = 8 if ctx.four_octet_as else 6
            if size != want:
                errors.append(
                    _error(
                        discard,
                        f"AGGREGATOR of {size} bytes, expected {want}",
                        at,
                        length_error,
                        _raw(msg, at),
                    )
                )
            else:
                values["aggregator"] = Aggregator(int.from_bytes(value[:-4], "big"), value[-4:])
        elif code == AttrType.COMMUNITIES:
            if size == 0 or size % 4:
                errors.append(
                    _error(taw, f"COMMUNITIES of {size} bytes", at, length_error, _raw(msg, at))
                )
            else:
                values["communities"] = struct.unpack(f"!{size // 4}I", value)
        elif code == AttrType.ORIGINATOR_ID:
            if size != 4:
                errors.append(
                    _error(taw, f"ORIGINATOR_ID of {size} bytes", at, length_error, _raw(msg, at))
                )
            else:
                values["originator_id"] = value
        elif code == AttrType.CLUSTER_LIST:
            if size == 0 or size % 4:
                errors.append(
                    _error(taw, f"CLUSTER_LIST of {size} bytes", at, length_error, _raw(msg, at))
                )
            else:
                values["cluster_list"] = tuple(value[i : i + 4] for i in range(0, size, 4))
        elif code == AttrType.EXTENDED_COMMUNITIES:
            if size == 0 or size % 8:
                errors.append(
                    _error(
                        taw,
                        f"EXTENDED_COMMUNITIES of {size} bytes",
                        at,
                        length_error,
                        _raw(msg, at),
                    )
                )
            else:
                values["ext_communities"] = tuple(
                    decode_ext_community(value[i : i + 8]) for i in range(0, size, 8)
                )
        elif code == AttrType.AS4_PATH:
            path = _decode_as_path(value, 4)
            if path is None or any(
                k in (AS_CONFED_SEQUENCE, AS_CONFED_SET) for k, _ in path.segments
            ):
                errors.append(
                    _error(discard, "AS4_PATH malformed", at, UpdateSubcode.MALFORMED_AS_PATH)
                )
            elif ctx.four_octet_as:
                # RFC 6793 §4.1: between two 4-octet speakers AS4_PATH must be ignored.
                errors.append(
                    _error(
                        discard,
                        "AS4_PATH on a 4-octet AS session",
                        at,
                        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                    )
                )
            else:
                as4_path = path
        elif code == AttrType.AS4_AGGREGATOR:
            if size != 8:
                errors.append(
                    _error(
                        discard, f"AS4_AGGREGATOR of {size} bytes", at, length_error, _raw(msg, at)
                    )
                )
            elif not ctx.four_octet_as:
                as4_aggregator = Aggregator(int.from_bytes(value[:4], "big"), value[4:])
        elif code == AttrType.PMSI_TUNNEL:
            if size < 5:
                errors.append(
                    _error(taw, f"PMSI_TUNNEL of {size} bytes", at, length_error, _raw(msg, at))
                )
            else:
                values["pmsi_tunnel"] = PmsiTunnel(
                    value[0], value[1], int.from_bytes(value[2:5], "big"), value[5:]
                )
        elif code == AttrType.LARGE_COMMUNITIES:
            if size == 0 or size % 12:
                errors.append(
                    _error(
                        taw, f"LARGE_COMMUNITIES of {size} bytes", at, length_error, _raw(msg, at)
                    )
                )
            else:
                flat = struct.unpack(f"!{size // 4}I", value)
                values["large_communities"] = tuple(
                    (flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)
                )
    if not ctx.four_octet_as:
        _merge_as4(values, as4_path, as4_aggregator)
    if unknown:
        values["unknown"] = tuple(unknown)
    return PathAttributes(**values)  # type: ignore[arg-type]


def _merge_as4(
    values: dict[str, object], as4_path: AsPath | None, as4_aggregator: Aggregator | None
) -> None:
    """RFC 6793 §4.2.3: rebuild the true path from a 2-octet speaker's AS_PATH and AS4_PATH."""
    aggregator = values.get("aggregator")
    if as4_aggregator is not None:
        if isinstance(aggregator, Aggregator) and aggregator.asn != AS_TRANS:
            return  # an old speaker aggregated after the AS4_ attributes were made: ignore both
        values["aggregator"] = as4_aggregator
    as_path = values.get("as_path")
    if as4_path is None or not isinstance(as_path, AsPath):
        return
    keep = as_path.length - as4_path.length
    if keep < 0:
        return  # RFC 6793: AS4_PATH longer than AS_PATH is ignored
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
    values["as_path"] = AsPath((*leading, *as4_path.segments))


def _decode_as_path(value: bytes, width: int) -> AsPath | None:
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


# --- encoding --------------------------------------------------------------------------------


def encode_attribute(code: int, flags: int, value: bytes) -> bytes:
    if len(value) > 255 or flags & _X:
        return struct.pack("!BBH", flags | _X, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def encode_attributes(
    attrs: PathAttributes,
    ctx: CodecContext,
    mp_reach: bytes | None = None,
    mp_unreach: bytes | None = None,
) -> bytes:
    """Encode the attribute block: MP_REACH/MP_UNREACH first (RFC 7606 §5.1 asks for that), then
    the others in type-code order, with the flags FRR uses so captures re-encode byte for byte."""
    out: list[bytes] = []
    if mp_reach is not None:
        out.append(encode_attribute(AttrType.MP_REACH_NLRI, _O | _X, mp_reach))
    if mp_unreach is not None:
        # An End-of-RIB marker (RFC 4724 §2) is 3 bytes and goes without the extended length.
        flags = _O if len(mp_unreach) == 3 else _O | _X
        out.append(encode_attribute(AttrType.MP_UNREACH_NLRI, flags, mp_unreach))
    if attrs.origin is not None:
        out.append(encode_attribute(AttrType.ORIGIN, _T, bytes((attrs.origin,))))
    if attrs.as_path is not None:
        out.append(
            encode_attribute(AttrType.AS_PATH, _T | _X, attrs.as_path.encode(ctx.four_octet_as))
        )
    if attrs.next_hop is not None:
        out.append(encode_attribute(AttrType.NEXT_HOP, _T, attrs.next_hop))
    if attrs.med is not None:
        out.append(encode_attribute(AttrType.MULTI_EXIT_DISC, _O, attrs.med.to_bytes(4, "big")))
    if attrs.local_pref is not None and not ctx.external:
        out.append(encode_attribute(AttrType.LOCAL_PREF, _T, attrs.local_pref.to_bytes(4, "big")))
    if attrs.atomic_aggregate:
        out.append(encode_attribute(AttrType.ATOMIC_AGGREGATE, _T, b""))
    aggregator = attrs.aggregator
    if aggregator is not None:
        if ctx.four_octet_as:
            value = aggregator.asn.to_bytes(4, "big") + aggregator.address
        else:
            asn = aggregator.asn if aggregator.asn <= 0xFFFF else AS_TRANS
            value = asn.to_bytes(2, "big") + aggregator.address
        out.append(encode_attribute(AttrType.AGGREGATOR, _O | _T, value))
    if attrs.communities:
        out.append(
            encode_attribute(
                AttrType.COMMUNITIES,
                _O | _T,
                struct.pack(f"!{len(attrs.communities)}I", *attrs.communities),
            )
        )
    if attrs.originator_id is not None:
        out.append(encode_attribute(AttrType.ORIGINATOR_ID, _O, attrs.originator_id))
    if attrs.cluster_list:
        out.append(encode_attribute(AttrType.CLUSTER_LIST, _O, b"".join(attrs.cluster_list)))
    if attrs.ext_communities:
        out.append(
            encode_attribute(
                AttrType.EXTENDED_COMMUNITIES,
                _O | _T,
                b"".join(c.encode() for c in attrs.ext_communities),
            )
        )
    if not ctx.four_octet_as:
        # RFC 6793 §4.2.2: tell an old speaker the real path in AS4_PATH / AS4_AGGREGATOR.
        if attrs.as_path is not None and attrs.as_path.needs_as4:
            confed_free = AsPath(
                tuple(s for s in attrs.as_path.segments if s[0] in (AS_SEQUENCE, AS_SET))
            )
            out.append(encode_attribute(AttrType.AS4_PATH, _O | _T, confed_free.encode(True)))
        if aggregator is not None and aggregator.asn > 0xFFFF:
            out.append(
                encode_attribute(
                    AttrType.AS4_AGGREGATOR,
                    _O | _T,
                    aggregator.asn.to_bytes(4, "big") + aggregator.address,
                )
            )
    if attrs.pmsi_tunnel is not None:
        out.append(encode_attribute(AttrType.PMSI_TUNNEL, _O | _T, attrs.pmsi_tunnel.encode()))
    if attrs.large_communities:
        flat = [n for triple in attrs.large_communities for n in triple]
        out.append(
            encode_attribute(
                AttrType.LARGE_COMMUNITIES, _O | _T, struct.pack(f"!{len(flat)}I", *flat)
            )
        )
    for raw in attrs.unknown:
        out.append(encode_attribute(raw.type_code, raw.flags & ~_X, raw.value))
    return b"".join(out)
