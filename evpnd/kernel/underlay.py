"""The underlay's way to each remote VTEP: whether it is reachable at all, by which device,
and so how large an inner frame may be.

- Reachable means a route other than a default route (FRR's next-hop tracking does not resolve
  through the default route either, unless told to): a VTEP behind a tunnel that went down, or
  whose loopback route was withdrawn, is unreachable, and the RIB stops using routes towards it
  (rib/locrib.py).
- The inner MTU of a VNI is the smallest, over its remote VTEPs, of the way's MTU (the route's
  own `mtu` if it has one, else the device's — `wg0`'s 1420 when the way is a WireGuard
  tunnel) less the VXLAN overhead: 50 bytes over IPv4, 70 over IPv6 (outer IP, UDP, VXLAN and
  the inner Ethernet header). A vxlan device or bridge with a larger MTU sends frames the
  underlay drops or fragments: the classic silent failure of an overlay (`mtu_problem`).

The lookup is one RTM_GETROUTE with RTM_F_FIB_MATCH per VTEP (the kernel answers with the
matching route itself, prefix length included); the decisions are plain functions.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
from collections.abc import Iterable
from typing import NamedTuple

from evpnd.kernel import iproutes as ipr
from evpnd.kernel import neighbours as nl

RTM_F_FIB_MATCH = 0x2000
RTA_METRICS = 8
RTAX_MTU = 2
SIOCGIFMTU = 0x8921
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_RUNNING = 0x40  # the operational state is up (carrier, and not dormant)
#: outer IPv4 (20) or IPv6 (40) header, UDP (8), VXLAN (8), the inner Ethernet header (14)
OVERHEAD = {4: 50, 16: 70}

_RTMSG = struct.Struct("=BBBBBBBBI")
_TYPES = {2: "an address of this host", 6: "a blackhole route", 7: "an unreachable route",
          8: "a prohibit route"}  # fmt: skip
_NLA = struct.Struct("=HH")


class Way(NamedTuple):
    """How the underlay reaches one VTEP."""

    reachable: bool
    #: the device the route leaves by, and the MTU of that way (None: unreachable)
    device: str | None = None
    mtu: int | None = None
    #: why it is unreachable, for people
    reason: str = ""


def inner_mtu(vteps: Iterable[bytes], ways: dict[bytes, Way]) -> int | None:
    """The largest inner frame every reachable VTEP of a VNI can get whole."""
    sizes = [
        way.mtu - OVERHEAD[len(vtep)]
        for vtep in vteps
        if (way := ways.get(vtep)) is not None and way.mtu is not None
    ]
    return min(sizes) if sizes else None


def mtu_problem(name: str, mtu: int, bridge: str, bridge_mtu: int, inner: int | None) -> str | None:
    """What is wrong with a VNI's devices given the path's inner MTU, with the fix."""
    if inner is None:
        return None
    too_big = [(dev, size) for dev, size in ((name, mtu), (bridge, bridge_mtu)) if size > inner]
    if not too_big:
        return None
    devices = ", ".join(f"{dev} {size}" for dev, size in too_big)
    fixes = "; ".join(f"ip link set {dev} mtu {inner}" for dev, _ in too_big)
    return f"MTU larger than the underlay carries ({devices} > {inner}): {fixes}"


def links_behind(
    unreachable: Iterable[bytes],
    ways: dict[bytes, Way],
    last_device: dict[bytes, str],
    links_down: dict[str, str],
) -> tuple[dict[str, list[bytes]], list[bytes]]:
    """Which down link explains which VTEPs: those reached by it now (a link without carrier
    keeps its routes) or, when unreachable, last reached by it (a link set down takes its routes
    with it). Returns the VTEPs under each down link, and the unreachable VTEPs no down link
    explains — so that one local cause is named once, not once per VTEP behind it."""
    behind: dict[str, list[bytes]] = {}
    for vtep, way in sorted(ways.items()):
        if way.reachable and way.device in links_down:
            behind.setdefault(way.device, []).append(vtep)
    alone = []
    for vtep in sorted(unreachable):
        device = last_device.get(vtep)
        if device is not None and device in links_down:
            behind.setdefault(device, []).append(vtep)
        else:
            alone.append(vtep)
    return behind, alone


# --- the lookup (blocking: call it in a thread) -------------------------------------------------


def link_state(name: str) -> str | None:
    """Why a device carries nothing, for people: `down` (set down), `no carrier`, `gone`; None
    while it is up."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        try:
            answer = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH", name.encode(), 0))
        except OSError:
            return "gone"
    flags = int(struct.unpack_from("16sH", answer)[1])
    if not flags & IFF_UP:
        return "down"
    if not flags & IFF_RUNNING:
        return "no carrier"
    return None


def links_down(names: Iterable[str]) -> dict[str, str]:
    """The devices among `names` that carry nothing, and why."""
    return {name: state for name in set(names) if (state := link_state(name)) is not None}


def look_up(vteps: Iterable[bytes], via_default: bool = False) -> dict[bytes, Way]:
    """The way to each VTEP, from the kernel's FIB; `via_default`: the default route counts."""
    out: dict[bytes, Way] = {}
    with contextlib.closing(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)) as sock:
        sock.settimeout(5)
        sock.bind((0, 0))
        for seq, vtep in enumerate(vteps, 1):
            out[vtep] = _way(sock, seq, vtep, via_default)
    return out


def _way(sock: socket.socket, seq: int, vtep: bytes, via_default: bool) -> Way:
    family = socket.AF_INET if len(vtep) == 4 else socket.AF_INET6
    body = _RTMSG.pack(family, len(vtep) * 8, 0, 0, 0, 0, 0, 0, RTM_F_FIB_MATCH)
    attr = _NLA.pack(4 + len(vtep), ipr.RTA_DST) + vtep
    request = struct.pack("=IHHII", 16 + len(body) + len(attr), ipr.RTM_GETROUTE,
                          nl.NLM_F_REQUEST, seq, 0) + body + attr  # fmt: skip
    sock.sendall(request)
    data = sock.recv(65536)
    length, kind = struct.unpack_from("=IH", data)
    if kind == nl.NLMSG_ERROR:
        return Way(False, reason="no route")
    _, dst_len, _, _, _, _, _, rtype, _ = _RTMSG.unpack_from(data, 16)
    if rtype != ipr.RTN_UNICAST:
        return Way(False, reason=_TYPES.get(rtype, f"a route of type {rtype}"))
    if dst_len == 0 and not via_default:
        return Way(False, reason="only the default route")
    oif = None
    route_mtu = None
    at = 28
    while at + 4 <= length:
        nla_len, nla_type = _NLA.unpack_from(data, at)
        if nla_len < 4:
            break
        value = data[at + 4 : at + nla_len]
        if nla_type == ipr.RTA_OIF:
            oif = struct.unpack("=i", value)[0]
        elif nla_type == ipr.RTA_MULTIPATH and len(value) >= 8:
            oif = struct.unpack_from("=i", value, 4)[0]  # the first way of several
        elif nla_type == RTA_METRICS:
            route_mtu = _metric(value, RTAX_MTU)
        at += (nla_len + 3) & ~3
    if oif is None:
        return Way(False, reason="a route without a device")
    device = socket.if_indextoname(oif)
    mtu = route_mtu or _device_mtu(device)
    return Way(True, device, mtu)


def _metric(value: bytes, wanted: int) -> int | None:
    at = 0
    while at + 4 <= len(value):
        nla_len, nla_type = _NLA.unpack_from(value, at)
        if nla_len < 4:
            break
        if nla_type == wanted and nla_len >= 8:
            return int(struct.unpack_from("=I", value, at + 4)[0])
        at += (nla_len + 3) & ~3
    return None


def _device_mtu(name: str) -> int | None:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        try:
            answer = fcntl.ioctl(sock, SIOCGIFMTU, struct.pack("16si", name.encode(), 0))
        except OSError:
            return None
    return int(struct.unpack("16si", answer)[1])
