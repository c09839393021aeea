"""Peers and routes as JSON-able dicts: what `evpnctl ... --json` prints. Absent fields are
null, never missing, so scripts can index them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from evpnd.bgp.attributes import PathAttributes
from evpnd.evpn.identifiers import ip_to_text, mac_to_text
from evpnd.evpn.routes import (
    EthernetAdRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
)
from evpnd.kernel.desired import V4_MAPPED
from evpnd.rib.bestpath import mobility
from evpnd.rib.paths import Path

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon


def peer_view(daemon: Daemon) -> list[dict[str, Any]]:
    out = []
    now = time.time()
    for address, driver in sorted(daemon.drivers.items()):
        negotiated = driver.negotiated if driver.adj_out is not None else None
        messages_received, messages_sent, _ = driver.message_counts()
        out.append(
            {
                "address": address,
                "remote_as": driver.peer.settings.peer_as,
                "state": driver.state.value,
                "uptime_s": round(now - driver.up_since_wall, 1) if driver.up_since_wall else None,
                "routes_received": daemon.rib.received_from(address),
                "routes_sent": len(driver.adj_out) if driver.adj_out is not None else 0,
                "router_id": driver.source.router_id if driver.source else None,
                "hostname": negotiated.peer_hostname if negotiated else None,
                "hold_time": negotiated.hold_time if negotiated else None,
                "updates_received": driver.updates_received,
                "messages_received": messages_received,
                "messages_sent": messages_sent,
                "sessions_established": driver.sessions_established,
                "last_error": driver.peer.last_error or None,
                "dynamic": driver.dynamic,
                "description": driver.description or None,
            }
        )
    return out


def _vni_of(route: EvpnRoute, attrs: PathAttributes) -> int | None:
    if isinstance(route, MacIpRoute):
        return route.label1
    if isinstance(route, IpPrefixRoute | EthernetAdRoute):
        return route.label
    if isinstance(route, InclusiveMulticastRoute) and attrs.pmsi_tunnel is not None:
        return attrs.pmsi_tunnel.label
    return None


def route_view(path: Path, is_best: bool, imported_by: list[int] | None = None) -> dict[str, Any]:
    route = path.route
    attrs = path.attributes
    sticky, seq = mobility(attrs)
    has_mobility = attrs.mac_mobility is not None
    mac = ip = prefix = None
    if isinstance(route, MacIpRoute):
        mac = mac_to_text(route.mac)
        ip = ip_to_text(route.ip) if route.ip else None
    elif isinstance(route, InclusiveMulticastRoute):
        ip = ip_to_text(route.originator)
    elif isinstance(route, IpPrefixRoute):
        prefix = str(route.network)
    return {
        "type": route.route_type,
        "rd": str(route.rd),
        "vni": _vni_of(route, attrs),
        "mac": mac,
        "ip": ip,
        "prefix": prefix,
        "nexthop": attrs.nexthop_text,
        "rts": [rt.value for rt in attrs.route_targets],
        "seq": seq if has_mobility else None,
        "sticky": bool(sticky),
        "source": path.source.name,
        "best": is_best,
        "stale": path.stale,
        "as_path": attrs.as_path.text if attrs.as_path is not None else None,
        "local_pref": attrs.local_pref,
        "router_mac": mac_to_text(attrs.router_mac) if attrs.router_mac else None,
        "imported_by": imported_by if imported_by is not None else [],
        "text": route.text,
    }


def routes_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    wanted_type = filters.get("type")
    wanted_vni = filters.get("vni")
    wanted_mac = (filters.get("mac") or "").lower() or None
    wanted_rd = filters.get("rd")
    out = []
    for path in daemon.rib.all_paths():
        route = path.route
        if wanted_type is not None and route.route_type != int(wanted_type):
            continue
        if wanted_rd is not None and str(route.rd) != wanted_rd:
            continue
        view = route_view(path, daemon.rib.best(route.key) is path, daemon.importing_vnis(path))
        if wanted_vni is not None and view["vni"] != int(wanted_vni):
            continue
        if wanted_mac is not None and view["mac"] != wanted_mac:
            continue
        out.append(view)
    out.sort(key=lambda v: (v["rd"], v["type"], v["text"], not v["best"], v["source"]))
    return out


def vni_view(daemon: Daemon) -> list[dict[str, Any]]:
    ports = daemon.kernel_ports
    dataplane = daemon.dataplane
    local_counts = daemon.local.mac_counts()
    out = []
    for vni in daemon.vnis:
        port = ports.get(vni.vni)
        remote_vteps = sorted(
            {
                ip_to_text(vtep)
                for (ifindex, vtep) in (dataplane.state.desired.flood if dataplane else {})
                if port is not None and ifindex == port.ifindex
            }
        )
        out.append(
            {
                "vni": vni.vni,
                "rd": str(vni.rd),
                "export_rts": [rt.value for rt in vni.export_rts],
                "import_rts": [rt.value for rt in vni.import_rts] or ["auto"],
                "vtep": vni.vtep_ip,
                "vxlan": port.name if port else None,
                "bridge": port.bridge_name if port else None,
                "svi_addresses": list(port.svi_addresses) if port else [],
                "remote_vteps": remote_vteps,
                "local_macs": local_counts.get(vni.vni, 0),
                "mtu": port.mtu if port else None,
                # the largest inner frame the ways to its remote VTEPs carry (underlay.py)
                "inner_mtu": daemon.underlay.inner.get(vni.vni),
                "mtu_problem": daemon.underlay.mtu_problems.get(vni.vni),
                "problems": port.problems if port else ["not in the kernel"],
            }
        )
    return out


def _type2(
    daemon: Daemon, filters: dict[str, Any], with_ip: bool
) -> Iterator[tuple[MacIpRoute, dict[str, Any]]]:
    """Best Type 2 paths (MAC-only, or with an IP), each with the fields both views show."""
    wanted_vni = filters.get("vni")
    for path in daemon.rib.best_paths():
        route = path.route
        if not isinstance(route, MacIpRoute) or bool(route.ip) != with_ip:
            continue
        if wanted_vni is not None and route.label1 != int(wanted_vni):
            continue
        sticky, seq = mobility(path.attributes)
        view = {"vni": route.label1, "mac": mac_to_text(route.mac)}
        if with_ip:
            view["ip"] = ip_to_text(route.ip)
        view |= {
            "type": "local" if path.source.is_local else "remote",
            "vtep": path.attributes.nexthop_text,
            "seq": seq,
            "sticky": bool(sticky),
            "source": path.source.name,
        }
        yield route, view


def mac_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for route, view in _type2(daemon, filters, with_ip=False):
        frozen = daemon.local.duplicates.is_frozen(route.label1, route.mac)
        out.append(view | {"frozen": frozen})
    out.sort(key=lambda m: (m["vni"], m["mac"], m["type"]))
    return out


def neigh_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """MAC/IP bindings, local and remote: what ARP/ND suppression answers from."""
    out = [view for _, view in _type2(daemon, filters, with_ip=True)]
    out.sort(key=lambda n: (n["vni"], len(str(n["ip"])), str(n["ip"]), n["type"]))
    return out


def kernel_view(daemon: Daemon) -> dict[str, Any]:
    """What evpnd wants programmed against what the kernel holds, entry by entry."""
    dataplane = daemon.dataplane
    if dataplane is None:
        return {"programming": False, "in_sync": True, "wanted": {}, "differences": []}
    return dataplane.compare()


def l3vni_view(daemon: Daemon) -> list[dict[str, Any]]:
    """Configured L3VNIs: what the kernel has of them and what they route."""
    dataplane = daemon.dataplane
    active = {l3.vni: l3 for l3 in daemon.l3vnis}
    installed: dict[int, int] = {}
    vteps: dict[int, set[str]] = {}
    if dataplane is not None:
        by_table = {p.table: vni for vni, p in dataplane.state.l3ports.items()}
        for key, nexthop in dataplane.state.desired.routes.items():
            vni = by_table.get(key.table)
            if vni is not None:
                installed[vni] = installed.get(vni, 0) + 1
                for hop in nexthop:
                    gateway = hop.gateway
                    vteps.setdefault(vni, set()).add(
                        ip_to_text(gateway[12:] if gateway[:12] == V4_MAPPED else gateway)
                    )
    out = []
    for config in daemon.config.evpn.l3vnis:
        l3 = active.get(config.vni)
        port = dataplane.l3_ports.get(config.vni) if dataplane else None
        out.append(
            {
                "vni": config.vni,
                "vrf": config.vrf or "default",
                "state": "up" if l3 is not None else "not in the kernel",
                "vxlan": port.name if port else None,
                "bridge": port.bridge_name if port else None,
                "router_mac": mac_to_text(l3.router_mac) if l3 else None,
                "table": l3.table if l3 else None,
                "rd": str(l3.rd) if l3 else None,
                "export_rts": [rt.value for rt in l3.export_rts] if l3 else [],
                "import_rts": ([rt.value for rt in l3.import_rts] or ["auto"]) if l3 else [],
                "l2vnis": list(l3.l2vnis) if l3 else [],
                "advertised": [str(p) for p in l3.prefixes] if l3 else [],
                "routes_installed": installed.get(config.vni, 0),
                "remote_vteps": sorted(vteps.get(config.vni, ())),
            }
        )
    return out
