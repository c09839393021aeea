"""Routes this speaker originates for its VNIs, with RDs and RTs derived as FRR derives them.

FRR: RD `<router-id>:<n>` with n from a counter shared by VNIs and VRFs in creation order (so
it can change across restarts); RT `<AS & 0xFFFF>:<VNI>`, type 0. We keep n per VNI in the
state directory instead, so a restart does not churn every route of the fabric.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from evpnd.bgp.attributes import PathAttributes
from evpnd.config import Config, L3VniConfig, Network, VniConfig
from evpnd.events import Event, L3VniOriginated, L3VniOutsideItsVrf, VniOriginated
from evpnd.evpn.extcommunities import ExtCommunity, RouterMac, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher, mac_from_text, mac_to_text
from evpnd.evpn.routes import EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpnd.local.attributes import local_attributes, vtep_bytes
from evpnd.local.step import NO_ATTRIBUTES, RibUpdate, Step

#: the kernel's main routing table: where the default VRF's routes go
RT_TABLE_MAIN = 254


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


class PortFacts(Protocol):
    """What origination needs of a VNI's ports in the kernel (kernel/links.py's VxlanPort)."""

    @property
    def vni(self) -> int: ...
    @property
    def local_ip(self) -> str | None: ...
    @property
    def bridge_mac(self) -> str: ...
    @property
    def svi_addresses(self) -> tuple[str, ...]: ...
    @property
    def vrf(self) -> str | None: ...
    @property
    def vrf_table(self) -> int | None: ...


def vni_configs(config: Config, ports: Mapping[int, PortFacts]) -> tuple[VniConfig, ...]:
    """Configured VNIs, plus (with advertise_all_vni) those found in the kernel; the kernel
    supplies the VTEP address where the configuration does not."""
    out = []
    for vni_config in config.evpn.vnis:
        port = ports.get(vni_config.vni)
        if vni_config.vtep_ip is None and port is not None and port.local_ip:
            vni_config = replace(vni_config, vtep_ip=port.local_ip)
        out.append(vni_config)
    if config.evpn.advertise_all_vni:
        configured = {v.vni for v in config.evpn.vnis}
        out += [
            VniConfig(vni=p.vni, vtep_ip=p.local_ip)
            for vni, p in sorted(ports.items())
            if vni not in configured
        ]
    return tuple(out)


def build_l3vnis(
    config: Config,
    store: RdIndexes,
    l3_ports: Mapping[int, PortFacts],
    ports: Mapping[int, PortFacts],
    events: list[Event],
) -> list[L3Vni]:
    """The configured L3VNIs that the kernel has: without the L3VNI's bridge there is no
    Router's MAC to route with, so nothing is announced for it."""
    out = []
    for l3 in config.evpn.l3vnis:
        port = l3_ports.get(l3.vni)
        if port is None:
            continue
        if l3.vrf is not None and port.vrf != l3.vrf:
            events.append(L3VniOutsideItsVrf(l3.vni, l3.vrf, port.vrf))
            continue
        tied = [p for p in ports.values() if p.vrf == l3.vrf]
        connected = tuple(
            dict.fromkeys(
                ipaddress.ip_interface(address).network for p in tied for address in p.svi_addresses
            )
        )
        out.append(
            build_l3vni(
                config,
                l3,
                store,
                vtep_ip=port.local_ip,
                router_mac=mac_from_text(port.bridge_mac),
                table=port.vrf_table or RT_TABLE_MAIN,
                l2vnis=tuple(sorted(p.vni for p in tied)),
                connected=connected,
            )
        )
    return out


class Originator:
    """What this VTEP originates from its configuration and its VNIs: a Type 3 per VNI, a
    sticky Type 2 per configured MAC, a Type 5 per L3VNI prefix. Each call brings the RIB to
    the new wish: the new and the changed announced, the gone withdrawn."""

    def __init__(self) -> None:
        self.vnis: list[Vni] = []
        self.l3vnis: list[L3Vni] = []
        #: L2VNI -> the L3VNI its hosts are routed in
        self.l3_of_l2: dict[int, L3Vni] = {}
        self._routes: dict[object, tuple[EvpnRoute, PathAttributes]] = {}

    def originate(
        self,
        config: Config,
        store: RdIndexes,
        ports: Mapping[int, PortFacts],
        l3_ports: Mapping[int, PortFacts],
    ) -> Step:
        step = Step()
        chosen = vni_configs(config, ports)
        vnis = build_vnis(config, store, chosen)
        l3vnis = build_l3vnis(config, store, l3_ports, ports, step.events)
        l3_of_l2 = {l2: l3 for l3 in l3vnis for l2 in l3.l2vnis}
        wanted: dict[object, tuple[EvpnRoute, PathAttributes]] = {}
        for l3 in l3vnis:
            for attrs, routes in prefix_routes(l3):
                wanted.update((route.key, (route, attrs)) for route in routes)
            if l3 not in self.l3vnis:
                step.events.append(
                    L3VniOriginated(
                        l3.vni,
                        l3.vrf or "default",
                        str(l3.rd),
                        mac_to_text(l3.router_mac),
                        list(l3.l2vnis),
                        [str(p) for p in l3.prefixes],
                    )
                )
        for vni_config, vni in zip(chosen, vnis, strict=True):
            statics = tuple((m.mac, m.ip) for m in vni_config.macs)
            for attrs, routes in local_routes(vni, statics, l3_of_l2.get(vni.vni)):
                wanted.update((route.key, (route, attrs)) for route in routes)
            if vni not in self.vnis:
                step.events.append(
                    VniOriginated(
                        vni.vni,
                        str(vni.rd),
                        vni.vtep_ip,
                        [rt.value for rt in vni.export_rts],
                        [rt.value for rt in vni.import_rts] or "auto (*:VNI)",
                    )
                )
        gone = [route for key, (route, _) in self._routes.items() if key not in wanted]
        if gone:
            step.updates.append(RibUpdate([], NO_ATTRIBUTES, gone))
        groups: dict[int, tuple[PathAttributes, list[EvpnRoute]]] = {}
        for key, (route, attrs) in wanted.items():
            if self._routes.get(key) != (route, attrs):
                groups.setdefault(id(attrs), (attrs, []))[1].append(route)
        step.updates += [RibUpdate(routes, attrs, []) for attrs, routes in groups.values()]
        self._routes = wanted
        self.vnis, self.l3vnis, self.l3_of_l2 = vnis, l3vnis, l3_of_l2
        return step
