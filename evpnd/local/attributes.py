"""The one builder of the path attributes of routes this VTEP originates: Type 2 (learned or
static), Type 3 and Type 5 all carry them in FRR's form and order — Encapsulation VXLAN, the
export RTs, MAC Mobility when there is a sequence number or the MAC is sticky, and, for routes
of an L3VNI (RFC 9135 §5.1, RFC 9136), its RTs and the Router's MAC. The next hop is the VTEP
address."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evpnd.bgp.attributes import PMSI_INGRESS_REPLICATION, AsPath, PathAttributes, PmsiTunnel
from evpnd.evpn.extcommunities import (
    TUNNEL_VXLAN,
    Encapsulation,
    ExtCommunity,
    MacMobility,
    RouteTarget,
)

if TYPE_CHECKING:
    from evpnd.local.origination import L3Vni

_EMPTY_AS_PATH = AsPath()


@functools.lru_cache(maxsize=256)
def vtep_bytes(vtep_ip: str) -> bytes:
    """The VTEP address as the next hop carries it (4 or 16 bytes)."""
    return ipaddress.ip_address(vtep_ip).packed


def local_attributes(
    vtep_ip: str,
    export_rts: Sequence[RouteTarget],
    *,
    sequence: int = 0,
    sticky: bool = False,
    l3: L3Vni | None = None,
    flood_label: int | None = None,
) -> PathAttributes:
    """`flood_label`: a Type 3 route's PMSI Tunnel attribute (ingress replication, the VNI as
    label, RFC 8365 §5.1.3)."""
    vtep = vtep_bytes(vtep_ip)
    communities: tuple[ExtCommunity, ...] = (Encapsulation(TUNNEL_VXLAN), *export_rts)
    if sequence or sticky:
        communities += (MacMobility(sequence, sticky),)
    if l3 is not None:
        communities += l3.l3_communities()
    pmsi = (
        PmsiTunnel(0, PMSI_INGRESS_REPLICATION, flood_label, vtep)
        if flood_label is not None
        else None
    )
    return PathAttributes(
        origin=0,
        as_path=_EMPTY_AS_PATH,
        ext_communities=communities,
        pmsi_tunnel=pmsi,
        nexthop=vtep,
    )
