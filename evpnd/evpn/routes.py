"""The EVPN NLRI (AFI 25 / SAFI 70): the five route types of RFC 7432 and RFC 9136.

Routes are named tuples: immutable, hashed and compared in C, about 100 bytes each plus their
MAC/IP bytes. Their RD and ESI are interned, so a million routes share a few dozen of those.
A route's RIB identity is `route.key` (RFC 7432 §7: labels and, for Types 2 and 5, the ESI are
not part of it); tuple equality compares every field.

Labels are kept as the raw 24-bit field. With VXLAN (RFC 8365 §5.1.3) that field is the VNI
itself, not an MPLS label shifted by four bits, and FRR sends it that way (see the reference).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Callable
from typing import NamedTuple

from evpnd.evpn.identifiers import (
    ZERO_ESI,
    Esi,
    RouteDistinguisher,
    ip_to_text,
    mac_from_text,
    mac_to_text,
)
from evpnd.wire.constants import UpdateSubcode
from evpnd.wire.errors import DecodeError, ErrorAction, Malformed

ETHERNET_AD = 1
MAC_IP = 2
INCLUSIVE_MULTICAST = 3
ETHERNET_SEGMENT = 4
IP_PREFIX = 5

MAX_LABEL = 0xFFFFFF
MAX_ETHERNET_TAG = 0xFFFFFFFF


def _ip_len_bits(raw: bytes) -> int:
    return len(raw) * 8


def _label_bytes(label: int) -> bytes:
    return label.to_bytes(3, "big")


class EthernetAdRoute(NamedTuple):
    """Type 1, Ethernet Auto-Discovery (RFC 7432 §7.1)."""

    rd: RouteDistinguisher
    esi: Esi
    ethernet_tag: int
    label: int

    @property
    def route_type(self) -> int:
        return ETHERNET_AD

    @property
    def key(self) -> tuple[object, ...]:
        return (ETHERNET_AD, self.rd, self.esi, self.ethernet_tag)

    @property
    def text(self) -> str:
        return f"[1]:[{self.ethernet_tag}]:[{self.esi}]"

    def encode(self) -> bytes:
        return (
            b"\x01\x19" + _T1.pack(self.rd, self.esi, self.ethernet_tag) + _label_bytes(self.label)
        )


class MacIpRoute(NamedTuple):
    """Type 2, MAC/IP Advertisement (RFC 7432 §7.2). `ip` is b"" for a MAC-only route."""

    rd: RouteDistinguisher
    ethernet_tag: int
    mac: bytes
    ip: bytes
    esi: Esi
    label1: int
    label2: int | None = None

    @property
    def route_type(self) -> int:
        return MAC_IP

    @property
    def key(self) -> tuple[object, ...]:
        return (MAC_IP, self.rd, self.ethernet_tag, self.mac, self.ip)

    @property
    def vni(self) -> int:
        return self.label1

    @property
    def mac_text(self) -> str:
        return mac_to_text(self.mac)

    @property
    def ip_text(self) -> str | None:
        return ip_to_text(self.ip) if self.ip else None

    @property
    def text(self) -> str:
        return _type2_text(self.ethernet_tag, self.mac, self.ip)

    def encode(self) -> bytes:
        ip = self.ip
        tail = _label_bytes(self.label1)
        if self.label2 is not None:
            tail += _label_bytes(self.label2)
        body = _T2.pack(self.rd, self.esi, self.ethernet_tag, 48, self.mac, len(ip) * 8)
        return bytes((MAC_IP, 30 + len(ip) + len(tail))) + body + ip + tail


class MacIpWithdrawal(NamedTuple):
    """A Type 2 route as a withdrawal names it (MP_UNREACH_NLRI): the fields of its key only.
    Its labels and ESI do not say which route goes (RFC 7432 §7: the key is the RD, tag, MAC
    and IP), so they are checked for length and not decoded — a table withdrawn is 100,000
    of these. The tuple equals, and hashes as, the route's RIB key: `key` is itself."""

    route_type: int  # MAC_IP
    rd: RouteDistinguisher
    ethernet_tag: int
    mac: bytes
    ip: bytes

    @property
    def key(self) -> tuple[object, ...]:
        return self

    @property
    def mac_text(self) -> str:
        return mac_to_text(self.mac)

    @property
    def text(self) -> str:
        return _type2_text(self.ethernet_tag, self.mac, self.ip)

    def encode(self) -> bytes:
        """With a zero ESI and label 0, as nothing else is known (a receiver ignores them)."""
        route = MacIpRoute(self.rd, self.ethernet_tag, self.mac, self.ip, ZERO_ESI, 0)
        return route.encode()


def _type2_text(tag: int, mac: bytes, ip: bytes) -> str:
    head = f"[2]:[{tag}]:[48]:[{mac_to_text(mac)}]"
    if not ip:
        return head
    return f"{head}:[{len(ip) * 8}]:[{ip_to_text(ip)}]"


class InclusiveMulticastRoute(NamedTuple):
    """Type 3, Inclusive Multicast Ethernet Tag (RFC 7432 §7.3)."""

    rd: RouteDistinguisher
    ethernet_tag: int
    originator: bytes

    @property
    def route_type(self) -> int:
        return INCLUSIVE_MULTICAST

    @property
    def key(self) -> tuple[object, ...]:
        return (INCLUSIVE_MULTICAST, self.rd, self.ethernet_tag, self.originator)

    @property
    def originator_text(self) -> str:
        return ip_to_text(self.originator)

    @property
    def text(self) -> str:
        ip = self.originator
        return f"[3]:[{self.ethernet_tag}]:[{len(ip) * 8}]:[{ip_to_text(ip)}]"

    def encode(self) -> bytes:
        ip = self.originator
        body = _T3.pack(self.rd, self.ethernet_tag, len(ip) * 8) + ip
        return bytes((INCLUSIVE_MULTICAST, len(body))) + body


class EthernetSegmentRoute(NamedTuple):
    """Type 4, Ethernet Segment (RFC 7432 §7.4)."""

    rd: RouteDistinguisher
    esi: Esi
    originator: bytes

    @property
    def route_type(self) -> int:
        return ETHERNET_SEGMENT

    @property
    def key(self) -> tuple[object, ...]:
        return (ETHERNET_SEGMENT, self.rd, self.esi, self.originator)

    @property
    def text(self) -> str:
        ip = self.originator
        return f"[4]:[{self.esi}]:[{len(ip) * 8}]:[{ip_to_text(ip)}]"

    def encode(self) -> bytes:
        ip = self.originator
        body = _T4.pack(self.rd, self.esi, len(ip) * 8) + ip
        return bytes((ETHERNET_SEGMENT, len(body))) + body


class IpPrefixRoute(NamedTuple):
    """Type 5, IP Prefix (RFC 9136 §3.1). `prefix` and `gateway` have the same length: 4
    bytes for IPv4, 16 for IPv6 (RFC 9136 §3.1: both are of the prefix's family)."""

    rd: RouteDistinguisher
    ethernet_tag: int
    prefix_len: int
    prefix: bytes
    esi: Esi
    gateway: bytes
    label: int

    @property
    def route_type(self) -> int:
        return IP_PREFIX

    @property
    def key(self) -> tuple[object, ...]:
        return (IP_PREFIX, self.rd, self.ethernet_tag, self.prefix_len, self.prefix)

    @property
    def vni(self) -> int:
        return self.label

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network((self.prefix, self.prefix_len), strict=False)

    @property
    def text(self) -> str:
        return f"[5]:[{self.ethernet_tag}]:[{self.prefix_len}]:[{ip_to_text(self.prefix)}]"

    def encode(self) -> bytes:
        body = (
            _T5.pack(self.rd, self.esi, self.ethernet_tag, self.prefix_len)
            + self.prefix
            + self.gateway
            + _label_bytes(self.label)
        )
        return bytes((IP_PREFIX, len(body))) + body


EvpnRoute = (
    EthernetAdRoute
    | MacIpRoute
    | InclusiveMulticastRoute
    | EthernetSegmentRoute
    | IpPrefixRoute
    | MacIpWithdrawal
)

_T1 = struct.Struct("!8s10sI")
_T2 = struct.Struct("!8s10sIB6sB")
_T2_KEY = struct.Struct("!8s10xIB6sB")  # the ESI skipped: a withdrawal's key fields
_T3 = struct.Struct("!8sIB")
_T4 = struct.Struct("!8s10sB")
_T5 = struct.Struct("!8s10sIB")


# --- decoding -------------------------------------------------------------------------------


def _nlri_error(reason: str, offset: int) -> Malformed:
    # RFC 7606 §5.3: an NLRI field that cannot be parsed leaves nothing to withdraw.
    return Malformed(
        DecodeError(
            ErrorAction.SESSION_RESET,
            reason,
            offset,
            subcode=UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
        )
    )


_IP_BYTES = {0: 0, 32: 4, 128: 16}


def _decode_type1(data: bytes, p: int, length: int, at: int) -> EthernetAdRoute:
    if length != 25:
        raise _nlri_error(f"EVPN type 1 route of length {length}, expected 25", at)
    rd, esi, tag = _T1.unpack_from(data, p)
    label = int.from_bytes(data[p + 22 : p + 25], "big")
    return EthernetAdRoute(RouteDistinguisher.intern(rd), Esi.intern(esi), tag, label)


def _decode_type3(data: bytes, p: int, length: int, at: int) -> InclusiveMulticastRoute:
    if length not in (17, 29):
        raise _nlri_error(f"EVPN type 3 route of length {length}, expected 17 or 29", at)
    rd, tag, ip_bits = _T3.unpack_from(data, p)
    if _IP_BYTES.get(ip_bits) != length - 13:
        raise _nlri_error(f"EVPN type 3 route with IP length {ip_bits} in {length} bytes", at)
    return InclusiveMulticastRoute(RouteDistinguisher.intern(rd), tag, data[p + 13 : p + length])


def _decode_type4(data: bytes, p: int, length: int, at: int) -> EthernetSegmentRoute:
    if length not in (23, 35):
        raise _nlri_error(f"EVPN type 4 route of length {length}, expected 23 or 35", at)
    rd, esi, ip_bits = _T4.unpack_from(data, p)
    if _IP_BYTES.get(ip_bits) != length - 19:
        raise _nlri_error(f"EVPN type 4 route with IP length {ip_bits} in {length} bytes", at)
    return EthernetSegmentRoute(
        RouteDistinguisher.intern(rd), Esi.intern(esi), data[p + 19 : p + length]
    )


def _decode_type5(data: bytes, p: int, length: int, at: int) -> IpPrefixRoute:
    # RFC 9136 §3.1: 34 bytes for IPv4, 58 for IPv6; the length tells the family.
    if length == 34:
        size, max_len = 4, 32
    elif length == 58:
        size, max_len = 16, 128
    else:
        raise _nlri_error(f"EVPN type 5 route of length {length}, expected 34 or 58", at)
    rd, esi, tag, prefix_len = _T5.unpack_from(data, p)
    if prefix_len > max_len:
        raise _nlri_error(f"EVPN type 5 prefix length {prefix_len} over {max_len}", at)
    q = p + 23
    return IpPrefixRoute(
        RouteDistinguisher.intern(rd),
        tag,
        prefix_len,
        data[q : q + size],
        Esi.intern(esi),
        data[q + size : q + 2 * size],
        int.from_bytes(data[q + 2 * size : q + 2 * size + 3], "big"),
    )


_OTHER_DECODERS: dict[int, Callable[[bytes, int, int, int], EvpnRoute]] = {
    1: _decode_type1,
    3: _decode_type3,
    4: _decode_type4,
    5: _decode_type5,
}
_labels: dict[int, int] = {}


def decode_evpn_nlri(
    data: bytes,
    pos: int,
    end: int,
    base: int = 0,
    add_path: bool = False,
    withdrawal: bool = False,
) -> tuple[list[EvpnRoute], list[int] | None, list[DecodeError]]:
    """Decode the EVPN NLRI in data[pos:end]; `base` is data's offset in the message, so that
    errors point into the whole message. In a `withdrawal` (MP_UNREACH_NLRI), Type 2 routes
    come out as `MacIpWithdrawal`, their key fields alone.

    Returns the routes, their ADD-PATH identifiers (when `add_path`), and NLRI_DISCARD errors
    for route types this speaker does not know (RFC 7606 §5.4). Raises `Malformed` when the
    field cannot be parsed to its end, since then no route can be trusted.
    """
    routes: list[EvpnRoute] = []
    path_ids: list[int] | None = [] if add_path else None
    errors: list[DecodeError] = []
    append = routes.append
    rd_interned = RouteDistinguisher._interned
    esi_interned = Esi._interned
    labels = _labels
    t2_unpack = _T2.unpack_from
    t2_key_unpack = _T2_KEY.unpack_from
    # tuple.__new__ skips the named tuple's Python-level __new__: a third of the time per route.
    new: Callable[..., MacIpRoute] = tuple.__new__
    while pos < end:
        if path_ids is not None:
            if pos + 4 > end:
                raise _nlri_error("ADD-PATH identifier cut short", base + pos)
            path_ids.append(int.from_bytes(data[pos : pos + 4], "big"))
            pos += 4
        if pos + 2 > end:
            raise _nlri_error("EVPN route header cut short", base + pos)
        route_type = data[pos]
        length = data[pos + 1]
        p = pos + 2
        nxt = p + length
        if nxt > end:
            raise _nlri_error(
                f"EVPN type {route_type} route of length {length} runs past the NLRI field",
                base + pos,
            )
        if route_type == 2 and withdrawal:
            # as below, without the ESI and the labels (their length is checked all the same)
            if length < 33:
                raise _nlri_error(f"EVPN type 2 route of length {length}, too short", base + pos)
            rd, tag, mac_bits, mac, ip_bits = t2_key_unpack(data, p)
            ip_size = _IP_BYTES.get(ip_bits)
            if mac_bits != 48 or ip_size is None or nxt - (p + 30 + ip_size) not in (3, 6):
                raise _nlri_error(
                    f"EVPN type 2 route of length {length} with MAC length {mac_bits} and IP "
                    f"length {ip_bits}",
                    base + pos,
                )
            append(
                new(
                    MacIpWithdrawal,
                    (
                        MAC_IP,
                        rd_interned.get(rd) or RouteDistinguisher.intern(rd),
                        tag,
                        mac,
                        data[p + 30 : p + 30 + ip_size] if ip_size else b"",
                    ),
                )
            )
        elif route_type == 2:
            # The hot path: written out inline because it is run once per received MAC.
            if length < 33:
                raise _nlri_error(f"EVPN type 2 route of length {length}, too short", base + pos)
            rd, esi, tag, mac_bits, mac, ip_bits = t2_unpack(data, p)
            ip_size = _IP_BYTES.get(ip_bits)
            if mac_bits != 48 or ip_size is None:
                raise _nlri_error(
                    f"EVPN type 2 route with MAC length {mac_bits} and IP length {ip_bits}",
                    base + pos,
                )
            q = p + 30 + ip_size
            rest = nxt - q
            if rest == 3:
                label2 = None
            elif rest == 6:
                label2 = int.from_bytes(data[q + 3 : q + 6], "big")
            else:
                raise _nlri_error(
                    f"EVPN type 2 route of length {length} with IP length {ip_bits}", base + pos
                )
            value = (data[q] << 16) | (data[q + 1] << 8) | data[q + 2]
            label1 = labels.get(value)
            if label1 is None:
                # Interned: a fabric has few VNIs, and an int object per route costs 32 bytes.
                label1 = labels.setdefault(value, value) if len(labels) < 65536 else value
            append(
                new(
                    MacIpRoute,
                    (
                        rd_interned.get(rd) or RouteDistinguisher.intern(rd),
                        tag,
                        mac,
                        data[p + 30 : q] if ip_size else b"",
                        esi_interned.get(esi) or Esi.intern(esi),
                        label1,
                        label2,
                    ),
                )
            )
        else:
            decoder = _OTHER_DECODERS.get(route_type)
            if decoder is None:
                errors.append(
                    DecodeError(
                        ErrorAction.NLRI_DISCARD,
                        f"EVPN route type {route_type} is not known here; ignored",
                        base + pos,
                        subcode=UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                        data=data[pos:nxt],
                    )
                )
                if path_ids:
                    path_ids.pop()
            else:
                append(decoder(data, p, length, base + pos))
        pos = nxt
    return routes, path_ids, errors


# --- text forms -----------------------------------------------------------------------------

_TEXT = re.compile(r"\[([^\]]*)\]")


def route_from_text(
    text: str,
    rd: RouteDistinguisher | str,
    *,
    label: int = 0,
    label2: int | None = None,
    esi: Esi = ZERO_ESI,
    gateway: str | None = None,
) -> EvpnRoute:
    """Parse FRR's prefix form (`[2]:[0]:[48]:[02:00:00:00:00:01]:[32]:[10.0.100.11]`).

    The text holds only the route's key, so the RD (which FRR prints beside it) and the labels
    are arguments."""
    if isinstance(rd, str):
        rd = RouteDistinguisher.from_text(rd)
    fields = _TEXT.findall(text)
    if not fields or ":".join(f"[{f}]" for f in fields) != text.strip():
        raise ValueError(f"EVPN route {text!r}: expected [type]:[...]:... as FRR prints it")
    try:
        route_type = int(fields[0])
        if route_type == MAC_IP and len(fields) in (4, 6) and fields[2] == "48":
            ip = b""
            if len(fields) == 6:
                ip = ipaddress.ip_address(fields[5]).packed
                if len(ip) * 8 != int(fields[4]):
                    raise ValueError("IP length does not match the address")
            return MacIpRoute(rd, _tag(fields[1]), mac_from_text(fields[3]), ip, esi, label, label2)
        if route_type == INCLUSIVE_MULTICAST and len(fields) == 4:
            ip = ipaddress.ip_address(fields[3]).packed
            if len(ip) * 8 != int(fields[2]):
                raise ValueError("IP length does not match the address")
            return InclusiveMulticastRoute(rd, _tag(fields[1]), ip)
        if route_type == IP_PREFIX and len(fields) == 4:
            prefix = ipaddress.ip_address(fields[3]).packed
            prefix_len = int(fields[2])
            if not 0 <= prefix_len <= len(prefix) * 8:
                raise ValueError("prefix length out of range")
            gw = ipaddress.ip_address(gateway).packed if gateway else bytes(len(prefix))
            if len(gw) != len(prefix):
                raise ValueError("gateway and prefix are of different families")
            return IpPrefixRoute(rd, _tag(fields[1]), prefix_len, prefix, esi, gw, label)
        if route_type == ETHERNET_AD and len(fields) in (3, 6):
            return EthernetAdRoute(rd, Esi.from_text(fields[2]), _tag(fields[1]), label)
        if route_type == ETHERNET_SEGMENT and len(fields) == 4:
            ip = ipaddress.ip_address(fields[3]).packed
            return EthernetSegmentRoute(rd, Esi.from_text(fields[1]), ip)
    except ValueError as exc:
        raise ValueError(f"EVPN route {text!r}: {exc}") from None
    raise ValueError(f"EVPN route {text!r}: not a form of route type 1-5 that FRR prints")


def _tag(text: str) -> int:
    tag = int(text)
    if not 0 <= tag <= MAX_ETHERNET_TAG:
        raise ValueError(f"Ethernet tag {tag} out of range")
    return tag
