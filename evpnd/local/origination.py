"""Routes this speaker originates for its VNIs, with RDs and RTs derived as FRR derives them.

FRR: RD `<router-id>:<n>` with n from a counter shared by VNIs and VRFs in creation order (so
it can change across restarts); RT `<AS & 0xFFFF>:<VNI>`, type 0. We keep n per VNI in the
state directory instead, so a restart does not churn every route of the fabric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from evpnd.bgp.attributes import PathAttributes
from evpnd.config import Config, L3VniConfig, Network, VniConfig
from evpnd.evpn.extcommunities import ExtCommunity, RouterMac, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpnd.local.attributes import local_attributes, vtep_bytes


def auto_route_target(asn: int, vni: int) -> RouteTarget:
    """FRR's auto RT: always the 2-byte-AS form, so a 4-byte AS is cut to its low 16 bits and
    the VNI keeps all of its 24 bits."""
    return RouteTarget(0, asn & 0xFFFF, vni)


class RdIndexes(Protocol):
    """Where RD indexes come from (daemon/rd_index.py keeps them in a file)."""

    def index_for(self, vni: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Vni:
    """One L2VNI as the routing side sees it."""

    vni: int
    rd: RouteDistinguisher
    export_rts: tuple[RouteTarget, ...]
    import_rts: tuple[RouteTarget, ...]  # empty: auto, matching any *:VNI
    vtep_ip: str

    def imports(self, route_targets: tuple[RouteTarget, ...]) -> bool:
        if self.import_rts:
            return any(rt in self.import_rts for rt in route_targets)
        # FRR's auto import ignores the AS part, so sites in different ASes import each other.
        return any(rt.assigned == self.vni for rt in route_targets)


@dataclass(frozen=True, slots=True)
class L3Vni(Vni):
    """A routing VNI (RFC 9135 symmetric IRB) with what the kernel told us of it."""

    vrf: str | None = None
    router_mac: bytes = bytes(6)
    table: int = 254
    #: the L2VNIs whose SVIs route in this VRF: their hosts' routes carry this L3VNI too
    l2vnis: tuple[int, ...] = ()
    #: what we announce as Type 5 routes (connected SVI subnets and configured prefixes)
    prefixes: tuple[Network, ...] = ()

    def l3_communities(self) -> tuple[ExtCommunity, ...]:
        return (*self.export_rts, RouterMac(self.router_mac))


def build_l3vni(
    config: Config,
    l3: L3VniConfig,
    store: RdIndexes,
    *,
    vtep_ip: str | None,
    router_mac: bytes,
    table: int,
    l2vnis: tuple[int, ...],
    connected: tuple[Network, ...],
) -> L3Vni:
    rd = l3.rd or RouteDistinguisher.type1(config.router_id, store.index_for(l3.vni))
    prefixes = [*(connected if l3.advertise_connected else ()), *l3.prefixes]
    return L3Vni(
        vni=l3.vni,
        rd=rd,
        export_rts=l3.export_rts or (auto_route_target(config.asn, l3.vni),),
        import_rts=l3.import_rts,
        vtep_ip=vtep_ip or config.evpn.vtep_ip or config.router_id,
        vrf=l3.vrf,
        router_mac=router_mac,
        table=table,
        l2vnis=l2vnis,
        prefixes=tuple(dict.fromkeys(prefixes)),
    )


def prefix_routes(l3: L3Vni) -> list[tuple[PathAttributes, list[EvpnRoute]]]:
    """Type 5 routes (RFC 9136 §4.4.1, interface-less: gateway 0, the L3VNI as label, the
    Router's MAC in an extended community), as FRR sends them."""
    if not l3.prefixes:
        return []
    attrs = local_attributes(l3.vtep_ip, (), l3=l3)
    routes: list[EvpnRoute] = [
        IpPrefixRoute(
            l3.rd,
            0,
            p.prefixlen,
            p.network_address.packed,
            ZERO_ESI,
            bytes(len(p.network_address.packed)),
            l3.vni,
        )
        for p in l3.prefixes
    ]
    return [(attrs, routes)]


def build_vnis(
    config: Config, store: RdIndexes, vni_configs: tuple[VniConfig, ...] | None = None
) -> list[Vni]:
    chosen = config.evpn.vnis if vni_configs is None else vni_configs
    return [_vni(config, vni_config, store) for vni_config in chosen]


def _vni(config: Config, vni_config: VniConfig, store: RdIndexes) -> Vni:
    rd = vni_config.rd or RouteDistinguisher.type1(
        config.router_id, store.index_for(vni_config.vni)
    )
    return Vni(
        vni=vni_config.vni,
        rd=rd,
        export_rts=vni_config.export_rts or (auto_route_target(config.asn, vni_config.vni),),
        import_rts=vni_config.import_rts,
        vtep_ip=vni_config.vtep_ip or config.evpn.vtep_ip or config.router_id,
    )


def local_routes(
    vni: Vni, static_macs: tuple[tuple[bytes, bytes], ...] = (), l3: L3Vni | None = None
) -> list[tuple[PathAttributes, list[EvpnRoute]]]:
    """The Type 3 route of a VNI and the Type 2 routes of its static (sticky) MACs; with an
    L3VNI, those with an IP also carry its label, RTs and Router's MAC (RFC 9135 §5.1)."""
    imet = local_attributes(vni.vtep_ip, vni.export_rts, flood_label=vni.vni)
    out: list[tuple[PathAttributes, list[EvpnRoute]]] = [
        (imet, [InclusiveMulticastRoute(vni.rd, 0, vtep_bytes(vni.vtep_ip))])
    ]
    plain = [(mac, ip) for mac, ip in static_macs if l3 is None or not ip]
    routed = [(mac, ip) for mac, ip in static_macs if l3 is not None and ip]
    if plain:
        sticky = local_attributes(vni.vtep_ip, vni.export_rts, sticky=True)
        out.append(
            (sticky, [MacIpRoute(vni.rd, 0, mac, ip, ZERO_ESI, vni.vni) for mac, ip in plain])
        )
    if routed and l3 is not None:
        both = local_attributes(vni.vtep_ip, vni.export_rts, sticky=True, l3=l3)
        routes: list[EvpnRoute] = [
            MacIpRoute(vni.rd, 0, mac, ip, ZERO_ESI, vni.vni, l3.vni) for mac, ip in routed
        ]
        out.append((both, routes))
    return out
