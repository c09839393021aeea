"""What a received route must be before it is imported (RFC 7432, RFC 8365): a route that
breaks these rules is not put in the RIB, so it is never programmed, never reflected, and can
never touch another route's kernel entry.

- Type 2: the MAC is a unicast station's — not 00:00:00:00:00:00 (that is the flood list's key
  in the kernel: a zero-MAC route's withdrawal would delete a VTEP's flood entry), not
  multicast or broadcast (RFC 7432 §7.2 carries a station's MAC; group MACs are flooded, never
  learned).
- Type 2 and Type 5 carry a next hop of an address family (4 or 16 bytes; 32 for an IPv6
  global + link-local pair): the VTEP.
- Type 3: the PMSI Tunnel attribute, when present, is ingress replication (type 6, the only
  kind a VXLAN VTEP can do, RFC 8365 §5.1.3) with an IPv4 or IPv6 endpoint.

A next hop of the other family than a VNI's vxlan device is not refused here (another VNI may
use it); the kernel side does not program it (kernel/desired.py)."""

from __future__ import annotations

from evpnd.bgp.attributes import PMSI_INGRESS_REPLICATION, PathAttributes
from evpnd.evpn.routes import EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute

_ZERO_MAC = bytes(6)


def problem(route: EvpnRoute, attrs: PathAttributes) -> str | None:
    """Why the route may not be imported, or None."""
    if isinstance(route, MacIpRoute):
        if route.mac == _ZERO_MAC:
            return "MAC 00:00:00:00:00:00"
        if route.mac[0] & 1:
            return "multicast or broadcast MAC"
    if isinstance(route, MacIpRoute | IpPrefixRoute):
        if attrs.nexthop is None or len(attrs.nexthop) not in (4, 16, 32):
            return "no IPv4 or IPv6 next hop"
    if isinstance(route, InclusiveMulticastRoute):
        pmsi = attrs.pmsi_tunnel
        if pmsi is not None:
            if pmsi.tunnel_type != PMSI_INGRESS_REPLICATION:
                # one reason whatever the type: reasons key counters and log limits
                return "PMSI tunnel not ingress replication"
            if len(pmsi.tunnel_id) not in (4, 16):
                return "PMSI tunnel endpoint neither IPv4 nor IPv6"
        elif len(route.originator) not in (4, 16):
            return "originator neither IPv4 nor IPv6"
    return None


def split(
    routes: list[EvpnRoute], attrs: PathAttributes
) -> tuple[list[EvpnRoute], list[tuple[EvpnRoute, str]]]:
    """The routes that may be imported, and the others with the reason. (The common case,
    nothing wrong, costs one look at each MAC.)"""
    nexthop_ok = attrs.nexthop is not None and len(attrs.nexthop) in (4, 16, 32)
    refused: list[tuple[EvpnRoute, str]] = []
    for route in routes:
        if isinstance(route, MacIpRoute):
            if nexthop_ok and not route.mac[0] & 1 and route.mac != _ZERO_MAC:
                continue
        reason = problem(route, attrs)
        if reason is not None:
            refused.append((route, reason))
    if not refused:
        return routes, refused
    bad = {id(route) for route, _ in refused}
    return [r for r in routes if id(r) not in bad], refused
