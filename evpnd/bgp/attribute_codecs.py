"""The path attributes as a table: per type code, the flags it must carry, the flags we send
(FRR's, so captures re-encode byte for byte), what RFC 7606 does with a malformed one, and its
decoder and encoder. Reading the table is reading the RFCs' attribute list;
`decode_attribute_values` and `encode_attributes` only walk it.

A decoder writes what it found into a `Decoding` (named fields, checked by the type checker) or
raises `Problem`; MP_REACH_NLRI and MP_UNREACH_NLRI belong to the UPDATE (update.py), not to
this table's loop, but their flags are here."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, TypedDict

from evpnd.bgp.attributes import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    Aggregator,
    AsPath,
    PathAttributes,
    PmsiTunnel,
    RawAttribute,
    decode_as_path,
    merge_as4,
)
from evpnd.bgp.context import CodecContext
from evpnd.evpn.extcommunities import ExtCommunity, decode_ext_community
from evpnd.wire.constants import AS_TRANS, AttrFlag, AttrType, UpdateSubcode
from evpnd.wire.errors import DecodeError, ErrorAction

_O = AttrFlag.OPTIONAL
_T = AttrFlag.TRANSITIVE
_P = AttrFlag.PARTIAL
_X = AttrFlag.EXTENDED_LENGTH
_TAW = ErrorAction.TREAT_AS_WITHDRAW
_DISCARD = ErrorAction.ATTRIBUTE_DISCARD
_LENGTH = UpdateSubcode.ATTRIBUTE_LENGTH_ERROR


class Fields(TypedDict, total=False):
    """PathAttributes' fields, as decoding finds them."""

    origin: int
    as_path: AsPath
    next_hop: bytes
    med: int
    local_pref: int
    atomic_aggregate: bool
    aggregator: Aggregator
    communities: tuple[int, ...]
    originator_id: bytes
    cluster_list: tuple[bytes, ...]
    ext_communities: tuple[ExtCommunity, ...]
    pmsi_tunnel: PmsiTunnel
    large_communities: tuple[tuple[int, int, int], ...]
    unknown: tuple[RawAttribute, ...]


@dataclass
class Decoding:
    fields: Fields = field(default_factory=lambda: Fields())
    #: RFC 6793: a 2-octet speaker's AS4_PATH and AS4_AGGREGATOR, merged at the end
    as4_path: AsPath | None = None
    as4_aggregator: Aggregator | None = None


class Problem(Exception):
    """A malformed attribute: why, the NOTIFICATION subcode it would have caused, whether the
    attribute goes in the NOTIFICATION's data, and an action other than the table's."""

    def __init__(
        self,
        reason: str,
        subcode: int = _LENGTH,
        with_data: bool = True,
        action: ErrorAction | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subcode = subcode
        self.with_data = with_data
        self.action = action


Decoder = Callable[[bytes, CodecContext, Decoding], None]
Encoder = Callable[[PathAttributes, CodecContext], bytes | None]


@dataclass(frozen=True, slots=True)
class AttributeCodec:
    code: AttrType
    #: the Optional and Transitive bits it must carry (RFC 7606 §3(c))
    flags: int
    #: RFC 7606's answer to a malformed one (and to wrong flags)
    malformed: ErrorAction
    decode: Decoder
    encode: Encoder
    #: flags we send, beyond `flags` (extended length where FRR sets it)
    extra_flags: int = 0


def _exact(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise Problem(f"{name} of {len(value)} bytes")


def _multiple(name: str, value: bytes, unit: int) -> None:
    if not value or len(value) % unit:
        raise Problem(f"{name} of {len(value)} bytes")


# --- decoders (RFC 4271 §5, RFC 7606 §7) -------------------------------------------------------


def _origin(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    if len(value) != 1 or value[0] > 2:
        raise Problem(
            f"ORIGIN of {len(value)} bytes / value {value.hex()}",
            UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE,
        )
    out.fields["origin"] = value[0]


def _as_path(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    path = decode_as_path(value, 4 if ctx.four_octet_as else 2)
    if path is None:
        raise Problem("AS_PATH segments do not add up", UpdateSubcode.MALFORMED_AS_PATH, False)
    if _has_as_0(path):  # RFC 7607 §2: a malformed AS_PATH
        raise Problem("AS_PATH with AS 0", UpdateSubcode.MALFORMED_AS_PATH, False)
    out.fields["as_path"] = path


def _has_as_0(path: AsPath) -> bool:
    return any(0 in asns for _, asns in path.segments)


def _next_hop(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _exact("NEXT_HOP", value, 4)
    out.fields["next_hop"] = value


def _med(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _exact("MULTI_EXIT_DISC", value, 4)
    out.fields["med"] = int.from_bytes(value, "big")


def _local_pref(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    if ctx.external:  # RFC 7606 §7.5: ignored from an external peer
        raise Problem("LOCAL_PREF from an external peer", with_data=False, action=_DISCARD)
    _exact("LOCAL_PREF", value, 4)
    out.fields["local_pref"] = int.from_bytes(value, "big")


def _atomic_aggregate(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _exact("ATOMIC_AGGREGATE", value, 0)
    out.fields["atomic_aggregate"] = True


def _aggregator(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    want = 8 if ctx.four_octet_as else 6
    if len(value) != want:
        raise Problem(f"AGGREGATOR of {len(value)} bytes, expected {want}")
    asn = int.from_bytes(value[:-4], "big")
    if asn == 0:  # RFC 7607 §2: discarded
        raise Problem("AGGREGATOR from AS 0")
    out.fields["aggregator"] = Aggregator(asn, value[-4:])


def _communities(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _multiple("COMMUNITIES", value, 4)
    out.fields["communities"] = struct.unpack(f"!{len(value) // 4}I", value)


def _originator_id(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _exact("ORIGINATOR_ID", value, 4)
    out.fields["originator_id"] = value


def _cluster_list(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _multiple("CLUSTER_LIST", value, 4)
    out.fields["cluster_list"] = tuple(value[i : i + 4] for i in range(0, len(value), 4))


def _ext_communities(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _multiple("EXTENDED_COMMUNITIES", value, 8)
    out.fields["ext_communities"] = tuple(
        decode_ext_community(value[i : i + 8]) for i in range(0, len(value), 8)
    )


def _as4_path(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    path = decode_as_path(value, 4)
    if path is None or any(k in (AS_CONFED_SEQUENCE, AS_CONFED_SET) for k, _ in path.segments):
        raise Problem("AS4_PATH malformed", UpdateSubcode.MALFORMED_AS_PATH, False)
    if _has_as_0(path):  # RFC 7607 §2: malformed (RFC 7606 §7.7: discarded)
        raise Problem("AS4_PATH with AS 0", UpdateSubcode.MALFORMED_AS_PATH, False)
    if ctx.four_octet_as:
        # RFC 6793 §4.1: between two 4-octet speakers AS4_PATH must be ignored.
        raise Problem(
            "AS4_PATH on a 4-octet AS session", UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, False
        )
    out.as4_path = path


def _as4_aggregator(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _exact("AS4_AGGREGATOR", value, 8)
    if not int.from_bytes(value[:4], "big"):  # RFC 7607 §2: discarded
        raise Problem("AS4_AGGREGATOR from AS 0")
    if not ctx.four_octet_as:  # between 4-octet speakers: ignored
        out.as4_aggregator = Aggregator(int.from_bytes(value[:4], "big"), value[4:])


def _pmsi_tunnel(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    if len(value) < 5:
        raise Problem(f"PMSI_TUNNEL of {len(value)} bytes")
    out.fields["pmsi_tunnel"] = PmsiTunnel(
        value[0], value[1], int.from_bytes(value[2:5], "big"), value[5:]
    )


def _large_communities(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    _multiple("LARGE_COMMUNITIES", value, 12)
    flat = struct.unpack(f"!{len(value) // 4}I", value)
    out.fields["large_communities"] = tuple(
        (flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)
    )


def _carried_by_the_update(value: bytes, ctx: CodecContext, out: Decoding) -> None:
    raise AssertionError("MP_REACH_NLRI / MP_UNREACH_NLRI are decoded with the UPDATE")


# --- encoders ----------------------------------------------------------------------------------


def _int4(value: int | None) -> bytes | None:
    return None if value is None else value.to_bytes(4, "big")


def _aggregator_out(attrs: PathAttributes, ctx: CodecContext) -> bytes | None:
    aggregator = attrs.aggregator
    if aggregator is None:
        return None
    if ctx.four_octet_as:
        return aggregator.asn.to_bytes(4, "big") + aggregator.address
    asn = aggregator.asn if aggregator.asn <= 0xFFFF else AS_TRANS
    return asn.to_bytes(2, "big") + aggregator.address


def _as4_path_out(attrs: PathAttributes, ctx: CodecContext) -> bytes | None:
    # RFC 6793 §4.2.2: tell an old speaker the real path
    if ctx.four_octet_as or attrs.as_path is None or not attrs.as_path.needs_as4:
        return None
    segments = tuple(s for s in attrs.as_path.segments if s[0] in (AS_SEQUENCE, AS_SET))
    return AsPath(segments).encode(True)


def _as4_aggregator_out(attrs: PathAttributes, ctx: CodecContext) -> bytes | None:
    aggregator = attrs.aggregator
    if ctx.four_octet_as or aggregator is None or aggregator.asn <= 0xFFFF:
        return None
    return aggregator.asn.to_bytes(4, "big") + aggregator.address


def _large_out(attrs: PathAttributes, ctx: CodecContext) -> bytes | None:
    if not attrs.large_communities:
        return None
    flat = [n for triple in attrs.large_communities for n in triple]
    return struct.pack(f"!{len(flat)}I", *flat)


def _nothing(attrs: PathAttributes, ctx: CodecContext) -> bytes | None:
    return None


#: In type-code order, which is also the order we send them in.
CODECS: dict[int, AttributeCodec] = {
    c.code: c
    for c in (
        AttributeCodec(
            AttrType.ORIGIN,
            _T,
            _TAW,
            _origin,
            lambda a, ctx: None if a.origin is None else bytes((a.origin,)),
        ),
        AttributeCodec(
            AttrType.AS_PATH,
            _T,
            _TAW,
            _as_path,
            lambda a, ctx: None if a.as_path is None else a.as_path.encode(ctx.four_octet_as),
            extra_flags=_X,
        ),
        AttributeCodec(AttrType.NEXT_HOP, _T, _TAW, _next_hop, lambda a, ctx: a.next_hop),
        AttributeCodec(AttrType.MULTI_EXIT_DISC, _O, _TAW, _med, lambda a, ctx: _int4(a.med)),
        AttributeCodec(
            AttrType.LOCAL_PREF,
            _T,
            _TAW,
            _local_pref,
            lambda a, ctx: None if ctx.external else _int4(a.local_pref),
        ),
        AttributeCodec(
            AttrType.ATOMIC_AGGREGATE,
            _T,
            _DISCARD,
            _atomic_aggregate,
            lambda a, ctx: b"" if a.atomic_aggregate else None,
        ),
        AttributeCodec(AttrType.AGGREGATOR, _O | _T, _DISCARD, _aggregator, _aggregator_out),
        AttributeCodec(
            AttrType.COMMUNITIES,
            _O | _T,
            _TAW,
            _communities,
            lambda a, ctx: (
                struct.pack(f"!{len(a.communities)}I", *a.communities) if a.communities else None
            ),
        ),
        AttributeCodec(
            AttrType.ORIGINATOR_ID, _O, _TAW, _originator_id, lambda a, ctx: a.originator_id
        ),
        AttributeCodec(
            AttrType.CLUSTER_LIST,
            _O,
            _TAW,
            _cluster_list,
            lambda a, ctx: b"".join(a.cluster_list) if a.cluster_list else None,
        ),
        AttributeCodec(
            AttrType.MP_REACH_NLRI, _O, _TAW, _carried_by_the_update, _nothing, extra_flags=_X
        ),
        AttributeCodec(AttrType.MP_UNREACH_NLRI, _O, _TAW, _carried_by_the_update, _nothing),
        AttributeCodec(
            AttrType.EXTENDED_COMMUNITIES,
            _O | _T,
            _TAW,
            _ext_communities,
            lambda a, ctx: (
                b"".join(c.encode() for c in a.ext_communities) if a.ext_communities else None
            ),
        ),
        AttributeCodec(AttrType.AS4_PATH, _O | _T, _DISCARD, _as4_path, _as4_path_out),
        AttributeCodec(
            AttrType.AS4_AGGREGATOR, _O | _T, _DISCARD, _as4_aggregator, _as4_aggregator_out
        ),
        AttributeCodec(
            AttrType.PMSI_TUNNEL,
            _O | _T,
            _TAW,
            _pmsi_tunnel,
            lambda a, ctx: None if a.pmsi_tunnel is None else a.pmsi_tunnel.encode(),
        ),
        AttributeCodec(AttrType.LARGE_COMMUNITIES, _O | _T, _TAW, _large_communities, _large_out),
    )
}
_CARRIED_BY_THE_UPDATE = (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI)

#: The Optional and Transitive bits each known attribute must carry (RFC 7606 §3(c)).
EXPECTED_FLAGS: dict[int, int] = {code: c.flags for code, c in CODECS.items()}


class AttributeSlice(NamedTuple):
    type_code: int
    flags: int
    start: int  # of the value, in the message
    end: int
    header_start: int


def _error(
    action: ErrorAction, reason: str, at: AttributeSlice, subcode: int, data: bytes = b""
) -> DecodeError:
    return DecodeError(
        action, reason, at.header_start, subcode=subcode, data=data, attribute=at.type_code
    )


def decode_attribute_values(
    msg: bytes, slices: list[AttributeSlice], ctx: CodecContext, errors: list[DecodeError]
) -> PathAttributes:
    """Decode every attribute but MP_REACH/MP_UNREACH (the caller's) into a PathAttributes;
    malformed ones add errors with the RFC 7606 action the table gives them."""
    out = Decoding()
    unknown: list[RawAttribute] = []
    for at in slices:
        code = at.type_code
        if code in _CARRIED_BY_THE_UPDATE:
            continue
        raw = msg[at.header_start : at.end]
        codec = CODECS.get(code)
        if codec is None:
            if not at.flags & _O:
                # RFC 4271 §6.3, unchanged by RFC 7606: an unknown well-known attribute.
                errors.append(
                    _error(
                        ErrorAction.SESSION_RESET,
                        f"unrecognized well-known attribute {code}",
                        at,
                        UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                        raw,
                    )
                )
            elif at.flags & _T:
                value = msg[at.start : at.end]
                unknown.append(RawAttribute(code, (at.flags | _P) & ~_X, value))
            # An unknown optional non-transitive attribute is quietly ignored (RFC 4271 §9).
            continue
        if at.flags & (_O | _T) != codec.flags:
            reason = f"attribute {codec.code.name} has flags 0x{at.flags:02x}"
            subcode = UpdateSubcode.ATTRIBUTE_FLAGS_ERROR
            errors.append(_error(codec.malformed, reason, at, subcode, raw))
            continue
        try:
            codec.decode(msg[at.start : at.end], ctx, out)
        except Problem as problem:
            action = problem.action or codec.malformed
            data = raw if problem.with_data else b""
            errors.append(_error(action, problem.reason, at, problem.subcode, data))
    fields = out.fields
    if not ctx.four_octet_as:
        merged = merge_as4(
            fields.get("as_path"), fields.get("aggregator"), out.as4_path, out.as4_aggregator
        )
        if merged.as_path is not None:
            fields["as_path"] = merged.as_path
        if merged.aggregator is not None:
            fields["aggregator"] = merged.aggregator
    if unknown:
        fields["unknown"] = tuple(unknown)
    return PathAttributes(**fields)


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
    """The attribute block: MP_REACH/MP_UNREACH first (RFC 7606 §5.1 asks for that), then the
    others in the table's order with its flags, then unknown transitive ones as received."""
    out: list[bytes] = []
    if mp_reach is not None:
        out.append(encode_attribute(AttrType.MP_REACH_NLRI, _O | _X, mp_reach))
    if mp_unreach is not None:
        # An End-of-RIB marker (RFC 4724 §2) is 3 bytes and goes without the extended length.
        flags = _O if len(mp_unreach) == 3 else _O | _X
        out.append(encode_attribute(AttrType.MP_UNREACH_NLRI, flags, mp_unreach))
    for codec in CODECS.values():
        value = codec.encode(attrs, ctx)
        if value is not None:
            out.append(encode_attribute(codec.code, codec.flags | codec.extra_flags, value))
    for raw in attrs.unknown:
        out.append(encode_attribute(raw.type_code, raw.flags & ~_X, raw.value))
    return b"".join(out)
