"""RTM_NEWROUTE / RTM_DELROUTE for the routes symmetric IRB installs (`PREFIX via VTEP dev
<L3VNI bridge> onlink`), packed with struct like the neighbour messages, and parsed from dumps.

Every route evpnd installs carries protocol RTPROT_EVPND, so that reconciliation can tell its
own routes from everyone else's and never touches the others."""

from __future__ import annotations

import os
import socket
import struct
from typing import NamedTuple

from evpnd.kernel import neighbours as nl

RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_MULTIPATH = 9
RTA_TABLE = 15

RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
RTNH_F_ONLINK = 4
RT_TABLE_MAIN = 254

#: Not in iproute2's list of assigned numbers (FRR's bgpd uses 186, zebra 11).
RTPROT_EVPND = 238
#: FRR installs EVPN routes with metric 20; so do we, so that `ip route` reads the same.
METRIC = 20

_HEADER = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NLA = struct.Struct("=HH")
_U32 = struct.Struct("=I")


class RouteKey(NamedTuple):
    table: int
    dst: bytes  # 4 or 16 bytes, host bits clear
    dst_len: int


class Nexthop(NamedTuple):
    gateway: bytes
    oif: int


#: a route's next hops, sorted: one, or several for ECMP (one prefix from several VTEPs)
Nexthops = tuple[Nexthop, ...]
_RTNH = struct.Struct("=HBBi")  # struct rtnexthop: len, flags, hops, ifindex


def _nla(kind: int, value: bytes) -> bytes:
    size = _NLA.size + len(value)
    return _NLA.pack(size, kind) + value + bytes(-size % 4)


def route_message(kind: int, flags: int, seq: int, key: RouteKey, nexthops: Nexthops = ()) -> bytes:
    """One route message; `nexthops` only for RTM_NEWROUTE (more than one: RTA_MULTIPATH,
    each on-link)."""
    family = socket.AF_INET if len(key.dst) == 4 else socket.AF_INET6
    # as iproute2 does: tables past 255 only in RTA_TABLE, which the kernel prefers anyway
    table_field = key.table if key.table < 256 else 0
    attrs = _nla(RTA_DST, key.dst) if key.dst_len else b""
    rtm_flags = 0
    if len(nexthops) == 1:
        attrs += _nla(RTA_GATEWAY, nexthops[0].gateway)
        attrs += _nla(RTA_OIF, _U32.pack(nexthops[0].oif))
        rtm_flags = RTNH_F_ONLINK
    elif nexthops:
        hops = b""
        for hop in nexthops:
            gateway = _nla(RTA_GATEWAY, hop.gateway)
            hops += _RTNH.pack(_RTNH.size + len(gateway), RTNH_F_ONLINK, 0, hop.oif) + gateway
        attrs += _nla(RTA_MULTIPATH, hops)
    attrs += _nla(RTA_TABLE, _U32.pack(key.table))
    if nexthops:
        # (a removal names no metric: the kernel then takes ours whatever its metric is)
        attrs += _nla(RTA_PRIORITY, _U32.pack(METRIC))
    body = _RTMSG.pack(
        family,
        key.dst_len,
        0,
        0,
        table_field,
        RTPROT_EVPND,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        rtm_flags,
    )
    length = _HEADER.size + len(body) + len(attrs)
    return _HEADER.pack(length, kind, flags, seq, 0) + body + attrs


def parse_routes(
    data: bytes, protocol: int = RTPROT_EVPND
) -> tuple[dict[RouteKey, Nexthops], bool]:
    """Routes of `protocol` in a dump's messages, and whether the dump is done."""
    out: dict[RouteKey, Nexthops] = {}
    offset = 0
    done = False
    while offset + _HEADER.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if kind == nl.NLMSG_DONE:
            done = True
        elif kind == nl.NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            if error:
                raise OSError(-error, os.strerror(-error))
        elif kind == RTM_NEWROUTE:
            body = offset + _HEADER.size
            family, dst_len, _, _, table, proto, _, rtype, _ = _RTMSG.unpack_from(data, body)
            if proto == protocol and rtype == RTN_UNICAST:
                dst = bytes(4 if family == socket.AF_INET else 16)
                gateway, oif = b"", 0
                hops: list[Nexthop] = []
                at = body + _RTMSG.size
                while at + _NLA.size <= offset + length:
                    size, attr = _NLA.unpack_from(data, at)
                    if size < _NLA.size:
                        break
                    value = data[at + _NLA.size : at + size]
                    attr &= 0x3FFF
                    if attr == RTA_DST:
                        dst = value
                    elif attr == RTA_GATEWAY:
                        gateway = value
                    elif attr == RTA_OIF:
                        (oif,) = _U32.unpack(value)
                    elif attr == RTA_TABLE:
                        (table,) = _U32.unpack(value)
                    elif attr == RTA_MULTIPATH:
                        hops = _multipath(value)
                    at += (size + 3) & ~3
                found = hops or [Nexthop(gateway, oif)]
                out[RouteKey(table, dst, dst_len)] = tuple(sorted(found))
        offset += (length + 3) & ~3
    return out, done


def _multipath(value: bytes) -> list[Nexthop]:
    hops = []
    at = 0
    while at + _RTNH.size <= len(value):
        length, _, _, ifindex = _RTNH.unpack_from(value, at)
        if length < _RTNH.size:
            break
        gateway = b""
        inner = at + _RTNH.size
        while inner + _NLA.size <= at + length:
            size, attr = _NLA.unpack_from(value, inner)
            if size < _NLA.size:
                break
            if attr & 0x3FFF == RTA_GATEWAY:
                gateway = value[inner + _NLA.size : inner + size]
            inner += (size + 3) & ~3
        hops.append(Nexthop(gateway, ifindex))
        at += (length + 3) & ~3
    return hops


def dump_request(family: int, seq: int) -> bytes:
    body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    return (
        _HEADER.pack(
            _HEADER.size + len(body), RTM_GETROUTE, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, seq, 0
        )
        + body
    )
