"""UPDATE messages (RFC 4271 §4.3, RFC 4760) carrying EVPN routes: decoding with RFC 7606
error handling, and packing routes into as few messages as fit.

Decoding shares attribute sets: identical attribute bytes (and next hop) map to one
`PathAttributes` object through a per-session cache, so 100,000 routes from one VTEP hold one
attribute set between them, not 100,000 copies.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from evpnd.bgp.attribute_codecs import (
    EXPECTED_FLAGS,
    AttributeSlice,
    decode_attribute_values,
    encode_attribute,
    encode_attributes,
)
from evpnd.bgp.attributes import PathAttributes
from evpnd.bgp.context import DEFAULT_CONTEXT, CodecContext
from evpnd.evpn.routes import EvpnRoute, decode_evpn_nlri
from evpnd.wire.constants import (
    HEADER_LEN,
    MARKER,
    Afi,
    AttrFlag,
    AttrType,
    ErrorCode,
    MessageType,
    Safi,
    UpdateSubcode,
)
from evpnd.wire.errors import DecodeError, ErrorAction, Malformed, most_severe

EVPN = (Afi.L2VPN, Safi.EVPN)
EMPTY_ATTRIBUTES = PathAttributes()
_CACHE_LIMIT = 1 << 16


@dataclass(frozen=True, slots=True)
class Update:
    """A decoded UPDATE. EVPN routes are in `announced`/`withdrawn`; classic IPv4 prefixes (from
    a peer that sends them anyway) in `ipv4_announced`/`ipv4_withdrawn`.

    If RFC 7606 called for treat-as-withdraw, the routes the peer announced are already in
    `withdrawn` and `announced` is empty; `errors` says why."""

    attributes: PathAttributes = EMPTY_ATTRIBUTES
    announced: list[EvpnRoute] = field(default_factory=list)
    withdrawn: list[EvpnRoute] = field(default_factory=list)
    ipv4_announced: tuple[ipaddress.IPv4Network, ...] = ()
    ipv4_withdrawn: tuple[ipaddress.IPv4Network, ...] = ()
    #: ADD-PATH identifiers, parallel to announced/withdrawn, when negotiated (RFC 7911).
    announced_path_ids: list[int] | None = None
    withdrawn_path_ids: list[int] | None = None
    #: (AFI, SAFI) of MP_REACH_NLRI / MP_UNREACH_NLRI, when present.
    reach_family: tuple[int, int] | None = None
    unreach_family: tuple[int, int] | None = None
    errors: tuple[DecodeError, ...] = ()

    @property
    def end_of_rib(self) -> tuple[int, int] | None:
        """RFC 4724 §2: the family whose End-of-RIB this is, or None."""
        if self.announced or self.withdrawn or self.ipv4_announced or self.ipv4_withdrawn:
            return None
        if self.reach_family is not None or self.attributes is not EMPTY_ATTRIBUTES:
            return None
        if self.unreach_family is not None:
            return self.unreach_family
        return (Afi.IPV4, Safi.UNICAST) if not self.errors else None

    def encode(self, ctx: CodecContext = DEFAULT_CONTEXT) -> bytes:
        """Encode as one message (raises ValueError if it does not fit; see `pack_*`)."""
        mp_reach = mp_unreach = None
        if self.announced or self.reach_family is not None:
            afi, safi = self.reach_family or EVPN
            mp_reach = _mp_reach_value(afi, safi, self.attributes.nexthop or b"") + _nlri(
                self.announced, self.announced_path_ids, (afi, safi) in ctx.add_path_send
            )
        if self.withdrawn or self.unreach_family is not None:
            afi, safi = self.unreach_family or EVPN
            mp_unreach = struct.pack("!HB", afi, safi) + _nlri(
                self.withdrawn, self.withdrawn_path_ids, (afi, safi) in ctx.add_path_send
            )
        attrs = b""
        if self.attributes is not EMPTY_ATTRIBUTES or mp_reach or mp_unreach:
            attrs = encode_attributes(self.attributes, ctx, mp_reach, mp_unreach)
        withdrawn = _encode_prefixes(self.ipv4_withdrawn)
        message = _frame_update(withdrawn, attrs, _encode_prefixes(self.ipv4_announced))
        if len(message) > ctx.max_message_len:
            raise ValueError(f"UPDATE of {len(message)} bytes over {ctx.max_message_len}")
        return message


def _nlri(routes: list[EvpnRoute], path_ids: list[int] | None, add_path: bool) -> bytes:
    if not add_path:
        return b"".join([r.encode() for r in routes])
    ids = path_ids if path_ids is not None else [1] * len(routes)
    return b"".join([i.to_bytes(4, "big") + r.encode() for i, r in zip(ids, routes, strict=True)])


def _mp_reach_value(afi: int, safi: int, nexthop: bytes) -> bytes:
    return struct.pack("!HBB", afi, safi, len(nexthop)) + nexthop + b"\x00"


def _frame_update(withdrawn: bytes, attrs: bytes, nlri: bytes) -> bytes:
    length = HEADER_LEN + 4 + len(withdrawn) + len(attrs) + len(nlri)
    return b"".join(
        (
            MARKER,
            struct.pack("!HBH", length, MessageType.UPDATE, len(withdrawn)),
            withdrawn,
            len(attrs).to_bytes(2, "big"),
            attrs,
            nlri,
        )
    )


def end_of_rib(afi: int = Afi.L2VPN, safi: int = Safi.EVPN) -> bytes:
    if (afi, safi) == (Afi.IPV4, Safi.UNICAST):
        return _frame_update(b"", b"", b"")
    value = struct.pack("!HB", afi, safi)
    return _frame_update(
        b"", encode_attribute(AttrType.MP_UNREACH_NLRI, AttrFlag.OPTIONAL, value), b""
    )


def pack_announcements(
    routes: list[EvpnRoute] | tuple[EvpnRoute, ...],
    attributes: PathAttributes,
    ctx: CodecContext = DEFAULT_CONTEXT,
    path_ids: list[int] | None = None,
) -> list[bytes]:
    """UPDATEs announcing `routes` with one attribute set, as few as fit in the message size."""
    if not routes:
        return []
    nexthop = attributes.nexthop
    if nexthop is None:
        raise ValueError("EVPN routes need the MP_REACH_NLRI next hop (attributes.nexthop)")
    others = encode_attributes(attributes, ctx)
    head = _mp_reach_value(Afi.L2VPN, Safi.EVPN, nexthop)
    fixed = HEADER_LEN + 4 + 4 + len(head) + len(others)  # 4: MP_REACH's own attribute header
    encoded = _encoded_nlris(routes, path_ids, EVPN in ctx.add_path_send)
    messages = []
    for chunk in _chunks(encoded, ctx.max_message_len - fixed):
        mp = encode_attribute(
            AttrType.MP_REACH_NLRI, AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH, head + chunk
        )
        messages.append(_frame_update(b"", mp + others, b""))
    return messages


def pack_withdrawals(
    routes: list[EvpnRoute] | tuple[EvpnRoute, ...],
    ctx: CodecContext = DEFAULT_CONTEXT,
    path_ids: list[int] | None = None,
) -> list[bytes]:
    if not routes:
        return []
    head = struct.pack("!HB", Afi.L2VPN, Safi.EVPN)
    fixed = HEADER_LEN + 4 + 4 + len(head)
    encoded = _encoded_nlris(routes, path_ids, EVPN in ctx.add_path_send)
    return [
        _frame_update(
            b"",
            encode_attribute(
                AttrType.MP_UNREACH_NLRI, AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH, head + chunk
            ),
            b"",
        )
        for chunk in _chunks(encoded, ctx.max_message_len - fixed)
    ]


def _encoded_nlris(
    routes: list[EvpnRoute] | tuple[EvpnRoute, ...], path_ids: list[int] | None, add_path: bool
) -> list[bytes]:
    if not add_path:
        return [r.encode() for r in routes]
    ids = path_ids if path_ids is not None else [1] * len(routes)
    return [i.to_bytes(4, "big") + r.encode() for i, r in zip(ids, routes, strict=True)]


def _chunks(encoded: list[bytes], room: int) -> list[bytes]:
    if room <= 0:
        raise ValueError("the attributes alone fill the message")
    chunks = []
    batch: list[bytes] = []
    used = 0
    for item in encoded:
        if used + len(item) > room and batch:
            chunks.append(b"".join(batch))
            batch = []
            used = 0
        batch.append(item)
        used += len(item)
    if batch:
        chunks.append(b"".join(batch))
    return chunks


# --- decoding --------------------------------------------------------------------------------


def _update_error(
    action: ErrorAction,
    subcode: int,
    reason: str,
    offset: int,
    data: bytes = b"",
    attribute: int | None = None,
) -> DecodeError:
    return DecodeError(action, reason, offset, ErrorCode.UPDATE_MESSAGE, subcode, data, attribute)


def _decode_prefixes(msg: bytes, pos: int, end: int) -> tuple[ipaddress.IPv4Network, ...]:
    out = []
    while pos < end:
        bits = msg[pos]
        size = (bits + 7) // 8
        if bits > 32 or pos + 1 + size > end:
            # RFC 7606 §5.3: an NLRI field that does not parse resets the session.
            raise Malformed(
                _update_error(
                    ErrorAction.SESSION_RESET,
                    UpdateSubcode.INVALID_NETWORK_FIELD,
                    f"IPv4 prefix of length {bits} does not fit",
                    pos,
                )
            )
        raw = msg[pos + 1 : pos + 1 + size] + bytes(4 - size)
        out.append(ipaddress.IPv4Network((raw, bits), strict=False))
        pos += 1 + size
    return tuple(out)


def _encode_prefixes(prefixes: tuple[ipaddress.IPv4Network, ...]) -> bytes:
    out = bytearray()
    for net in prefixes:
        size = (net.prefixlen + 7) // 8
        out.append(net.prefixlen)
        out += net.network_address.packed[:size]
    return bytes(out)


def decode_update(
    msg: bytes, ctx: CodecContext = DEFAULT_CONTEXT, cache: dict[bytes, object] | None = None
) -> Update | DecodeError:
    """Decode a whole UPDATE message (header included, already checked by the framer)."""
    try:
        return _decode_update(msg, ctx, cache)
    except Malformed as exc:
        return exc.error


def _decode_update(
    msg: bytes, ctx: CodecContext, cache: dict[bytes, object] | None
) -> Update | DecodeError:
    """The stages, in RFC 7606's order: locate the parts (an overrun there resets, §4); walk
    the attribute headers (§3(g), §4, §5.2); decode MP_REACH/MP_UNREACH (§7.11) and the other
    attributes (attribute_codecs.py); check the mandatory ones (§3(d)); then the most severe
    error decides (§3(j)): a reset, or the announced routes withdrawn instead."""
    layout = _layout(msg)
    ipv4_withdrawn = _decode_prefixes(msg, 21, layout.withdrawn_end)
    ipv4_announced = _decode_prefixes(msg, layout.attrs_end, len(msg))
    errors: list[DecodeError] = []
    walk = _walk_attributes(msg, layout.attrs_start, layout.attrs_end, errors)

    announced: list[EvpnRoute] = []
    withdrawn: list[EvpnRoute] = []
    announced_ids = withdrawn_ids = None
    reach_family = unreach_family = None
    nexthop = None
    if walk.reach is not None:
        reach_family, nexthop, announced, announced_ids = _decode_mp(
            msg, walk.reach, ctx, errors, True
        )
    if walk.unreach is not None:
        unreach_family, _, withdrawn, withdrawn_ids = _decode_mp(
            msg, walk.unreach, ctx, errors, False
        )
    if walk.others or nexthop is not None:
        attributes = _attributes(msg, walk.others, nexthop, ctx, cache, errors)
    else:
        attributes = EMPTY_ATTRIBUTES
    if announced or ipv4_announced:
        _check_mandatory(attributes, bool(ipv4_announced), layout.attrs_start, errors)

    worst = most_severe(errors)
    if worst is not None and worst.action == ErrorAction.SESSION_RESET:
        return worst
    if (
        worst is not None
        and worst.action == ErrorAction.TREAT_AS_WITHDRAW
        and (announced or ipv4_announced)
    ):
        at = errors.index(worst)
        errors[at] = replace(worst, withdrawn=tuple(announced))
        withdrawn = withdrawn + announced
        if withdrawn_ids is not None or announced_ids is not None:
            withdrawn_ids = (withdrawn_ids or []) + (announced_ids or [])
        announced = []
        announced_ids = None
        ipv4_withdrawn = ipv4_withdrawn + ipv4_announced
        ipv4_announced = ()
    return Update(
        attributes=attributes,
        announced=announced,
        withdrawn=withdrawn,
        ipv4_announced=ipv4_announced,
        ipv4_withdrawn=ipv4_withdrawn,
        announced_path_ids=announced_ids,
        withdrawn_path_ids=withdrawn_ids,
        reach_family=reach_family,
        unreach_family=unreach_family,
        errors=tuple(errors),
    )


class _Layout(NamedTuple):
    withdrawn_end: int
    attrs_start: int
    attrs_end: int


def _layout(msg: bytes) -> _Layout:
    """Where the withdrawn routes, the attributes and the NLRI are. RFC 7606 §4: lengths that
    cannot be right leave nothing to locate the routes by: the session resets."""
    size = len(msg)
    withdrawn_len = (msg[19] << 8) | msg[20]
    w_end = 21 + withdrawn_len
    if w_end + 2 > size:
        raise Malformed(
            _update_error(
                ErrorAction.SESSION_RESET,
                UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                f"withdrawn routes length {withdrawn_len} overruns",
                19,
            )
        )
    attrs_len = (msg[w_end] << 8) | msg[w_end + 1]
    a_start = w_end + 2
    a_end = a_start + attrs_len
    if a_end > size:
        raise Malformed(
            _update_error(
                ErrorAction.SESSION_RESET,
                UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                f"total path attribute length {attrs_len} overruns",
                w_end,
            )
        )
    return _Layout(w_end, a_start, a_end)


@dataclass
class _Walk:
    reach: AttributeSlice | None = None
    unreach: AttributeSlice | None = None
    #: every attribute but MP_REACH/MP_UNREACH, first copies only
    others: list[AttributeSlice] = field(default_factory=list)


def _walk_attributes(msg: bytes, pos: int, a_end: int, errors: list[DecodeError]) -> _Walk:
    """Each attribute's header and where its value lies. A second MP_REACH/MP_UNREACH resets,
    a second copy of another is dropped (§3(g)); an attribute overrunning the block withdraws
    the routes — if the MP attributes were found before it, else it resets (§5.2)."""
    walk = _Walk()
    seen: set[int] = set()
    while pos < a_end:
        left = a_end - pos
        flags = msg[pos]
        extended = flags & AttrFlag.EXTENDED_LENGTH
        if left < 3 or (extended and left < 4):
            _overrun(
                walk,
                errors,
                f"{left} bytes left, too few for an attribute header",
                pos,
                None,
            )
            break
        code = msg[pos + 1]
        if extended:
            length = (msg[pos + 2] << 8) | msg[pos + 3]
            vstart = pos + 4
        else:
            length = msg[pos + 2]
            vstart = pos + 3
        vend = vstart + length
        if vend > a_end:
            reason = f"attribute {code} of length {length} overruns the attributes"
            _overrun(walk, errors, reason, pos, code)
            break
        if code in seen:
            if code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
                raise Malformed(
                    _update_error(
                        ErrorAction.SESSION_RESET,
                        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                        f"attribute {code} appears twice",
                        pos,
                        attribute=code,
                    )
                )
            errors.append(
                _update_error(
                    ErrorAction.ATTRIBUTE_DISCARD,
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    f"attribute {code} appears twice; the copy is dropped",
                    pos,
                    attribute=code,
                )
            )
            pos = vend
            continue
        seen.add(code)
        piece = AttributeSlice(code, flags, vstart, vend, pos)
        if code == AttrType.MP_REACH_NLRI:
            walk.reach = piece
        elif code == AttrType.MP_UNREACH_NLRI:
            walk.unreach = piece
        else:
            walk.others.append(piece)
        pos = vend
    return walk


def _overrun(
    walk: _Walk, errors: list[DecodeError], reason: str, pos: int, code: int | None
) -> None:
    error = _update_error(
        ErrorAction.TREAT_AS_WITHDRAW,
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        reason,
        pos,
        attribute=code,
    )
    if walk.reach is None and walk.unreach is None:
        # RFC 7606 §5.2: treat-as-withdraw needs the NLRI located; an MP_REACH_NLRI may sit
        # beyond the broken attribute, so only a reset is safe.
        raise Malformed(
            replace(
                error,
                action=ErrorAction.SESSION_RESET,
                subcode=UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
            )
        )
    errors.append(error)


def _check_mandatory(
    attributes: PathAttributes, ipv4: bool, offset: int, errors: list[DecodeError]
) -> None:
    """RFC 7606 §3(d): a missing well-known mandatory attribute means treat-as-withdraw."""
    missing = [
        name
        for name, present in (
            ("ORIGIN", attributes.origin is not None),
            ("AS_PATH", attributes.as_path is not None),
            ("NEXT_HOP", attributes.next_hop is not None or not ipv4),
        )
        if not present
    ]
    if missing:
        errors.append(
            _update_error(
                ErrorAction.TREAT_AS_WITHDRAW,
                UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
                f"missing {', '.join(missing)}",
                offset,
            )
        )


def _decode_mp(
    msg: bytes, at: AttributeSlice, ctx: CodecContext, errors: list[DecodeError], reach: bool
) -> tuple[tuple[int, int], bytes | None, list[EvpnRoute], list[int] | None]:
    name = "MP_REACH_NLRI" if reach else "MP_UNREACH_NLRI"

    def reset(reason: str, offset: int) -> Malformed:
        # RFC 7606 §7.11: an MP attribute that does not parse leaves nothing to act on.
        return Malformed(
            _update_error(
                ErrorAction.SESSION_RESET,
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                reason,
                offset,
                msg[at.header_start : at.end],
                at.type_code,
            )
        )

    if at.flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE) != EXPECTED_FLAGS[at.type_code]:
        raise reset(f"{name} with flags 0x{at.flags:02x}", at.header_start)
    pos, end = at.start, at.end
    if end - pos < (5 if reach else 3):
        raise reset(f"{name} of {end - pos} bytes", at.header_start)
    afi, safi = (msg[pos] << 8) | msg[pos + 1], msg[pos + 2]
    nexthop = None
    if reach:
        nh_len = msg[pos + 3]
        nlri_start = pos + 5 + nh_len
        if nlri_start > end:
            raise reset(f"next hop of {nh_len} bytes overruns {name}", pos + 3)
        nexthop = msg[pos + 4 : pos + 4 + nh_len]
        pos = nlri_start
    else:
        pos += 3
    family = (afi, safi)
    if family != EVPN:
        # RFC 4760 §7: a family that was not negotiated is ignored, not fatal.
        errors.append(
            _update_error(
                ErrorAction.NLRI_DISCARD,
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"{name} for AFI {afi} / SAFI {safi}, not negotiated; ignored",
                at.header_start,
                attribute=at.type_code,
            )
        )
        return family, None, [], None
    if nexthop is not None and len(nexthop) not in (4, 16, 32):
        raise reset(f"EVPN next hop of {len(nexthop)} bytes", at.start + 3)
    routes, ids, nlri_errors = decode_evpn_nlri(
        msg, pos, end, 0, EVPN in ctx.add_path_receive, withdrawal=not reach
    )
    errors.extend(nlri_errors)
    return family, nexthop, routes, ids


def _attributes(
    msg: bytes,
    slices: list[AttributeSlice],
    nexthop: bytes | None,
    ctx: CodecContext,
    cache: dict[bytes, object] | None,
    errors: list[DecodeError],
) -> PathAttributes:
    key = b""
    if cache is not None:
        nh = nexthop or b""
        key = b"".join(
            [bytes((ctx.four_octet_as, ctx.external, len(nh))), nh]
            + [msg[s.header_start : s.end] for s in slices]
        )
        hit = cache.get(key)
        if isinstance(hit, PathAttributes):
            return hit
    found: list[DecodeError] = []
    attributes = decode_attribute_values(msg, slices, ctx, found)
    if nexthop is not None:
        attributes = replace(attributes, nexthop=nexthop)
    if cache is not None and not found:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = attributes
    errors.extend(found)
    return attributes
