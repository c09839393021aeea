"""Peers and routes as JSON-able dicts: what `evpnctl ... --json` prints. Absent fields are
null, never missing, so scripts can index them."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from evpnd.bgp.attributes import PathAttributes
from evpnd.evpn.identifiers import RouteDistinguisher, ip_to_text, mac_from_text, mac_to_text
from evpnd.evpn.routes import (
    EthernetAdRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
)
from evpnd.kernel.desired import V4_MAPPED
from evpnd.rib import bestpath
from evpnd.rib.bestpath import mobility
from evpnd.rib.paths import Path

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon


#: paths looked at per turn of the loop when a view or a scrape walks the whole RIB (about
#: 25 ms of work)
WALK_SLICE = 20_000


async def snapshot_slices(daemon: Daemon) -> AsyncIterator[list[Path | list[Path]]]:
    """A snapshot of the Loc-RIB's entries (`Rib.entries`), in slices, the loop given back
    between them: a walk of a million paths in one turn kept sessions and other evpnctl
    clients waiting for half a second."""
    entries = daemon.rib.entries()
    for start in range(0, len(entries), WALK_SLICE):
        if start:
            await asyncio.sleep(0)
        yield entries[start : start + WALK_SLICE]


async def sliced(daemon: Daemon) -> AsyncIterator[list[Path]]:
    """The best paths of a snapshot of the Loc-RIB, in slices (`snapshot_slices`)."""
    async for entries in snapshot_slices(daemon):
        yield [entry if isinstance(entry, Path) else entry[0] for entry in entries]


def _ago(now: float, at: float | None) -> float | None:
    return round(now - at, 1) if at is not None else None


def peer_view(daemon: Daemon, only: str | None = None) -> list[dict[str, Any]]:
    out = []
    now = time.time()
    chosen = [only] if only is not None else sorted(daemon.drivers, key=address_key)
    for address in chosen:
        driver = daemon.drivers[address]
        negotiated = driver.negotiated if driver.adj_out is not None else None
        messages_received, messages_sent, _ = driver.message_counts()
        end = driver.last_down
        out.append(
            {
                "address": address,
                "remote_as": driver.peer.settings.peer_as,
                "state": driver.state.value,
                "uptime_s": round(now - driver.up_since_wall, 1) if driver.up_since_wall else None,
                # since the last change between up and down (FRR's Up/Down)
                "state_for_s": _ago(now, driver.changed_wall),
                "routes_received": daemon.rib.received_from(address),
                "routes_sent": len(driver.adj_out) if driver.adj_out is not None else 0,
                "router_id": driver.source.router_id if driver.source else None,
                # kept from the last session while the peer is down
                "hostname": driver.hostname,
                "hold_time": negotiated.hold_time if negotiated else None,
                "updates_received": driver.updates_received,
                "messages_received": messages_received,
                "messages_sent": messages_sent,
                "sessions_established": driver.sessions_established,
                "flaps": driver.flaps,
                # the latest failure (a connection attempt's, with its errno)
                "last_error": driver.peer.last_error or None,
                # how the last Established session ended: the first reason, kept
                "last_down": {
                    "reason": end.reason,
                    "ago_s": _ago(now, end.at),
                    "uptime_s": round(end.uptime_s, 1),
                    "notification_sent": end.sent or None,
                    "notification_received": end.received or None,
                }
                if end is not None
                else None,
                "last_update_ago_s": _ago(now, driver.last_update_wall),
                "stale_routes": driver.stale_routes(),
                "dynamic": driver.dynamic,
                "description": driver.description or None,
            }
        )
    return out


def neighbor_view(daemon: Daemon, address: str) -> dict[str, Any]:
    """`show bgp neighbors X`: one peer in full — what was negotiated, timers, counters, and
    how its sessions ended."""
    driver = daemon.drivers.get(address)
    if driver is None:
        raise ValueError(f"no peer {address!r} (show peers lists them)")
    (view,) = peer_view(daemon, address)
    negotiated = driver.negotiated if driver.adj_out is not None else None
    settings = driver.peer.settings
    local = driver.peer.local
    now = time.time()
    capabilities: dict[str, Any] | None = None
    if negotiated is not None:
        gr = negotiated.peer_graceful_restart
        capabilities = {
            "families": [f"{afi}/{safi}" for afi, safi in sorted(negotiated.families)],
            "four_octet_as": negotiated.four_octet_as,
            "route_refresh": negotiated.route_refresh,
            "enhanced_route_refresh": negotiated.enhanced_route_refresh,
            "extended_message": negotiated.extended_message,
            "add_path_receive": [f"{a}/{s}" for a, s in sorted(negotiated.add_path_receive)],
            "add_path_send": [f"{a}/{s}" for a, s in sorted(negotiated.add_path_send)],
            "graceful_restart_peer": {
                "restart_time": gr.restart_time,
                "families": [f"{f.afi}/{f.safi}" for f in gr.families],
            }
            if gr is not None
            else None,
            "graceful_notification": negotiated.graceful_notification,
        }
    sent_at = driver.notification_sent
    received_at = driver.notification_received
    return view | {
        "local_as": daemon.config.asn,
        "local_router_id": daemon.config.router_id,
        "port": driver.port,
        "passive": settings.passive,
        "route_reflector_client": driver.route_reflector_client,
        "max_routes": driver.max_routes,
        "update_source": driver.update_source,
        "ttl": driver.ttl,
        "min_ttl": driver.min_ttl,
        "md5": bool(driver.password),
        "session": driver.endpoints(),
        "timers": {
            "hold_time_configured": local.hold_time,
            "hold_time": negotiated.hold_time if negotiated else None,
            "keepalive": negotiated.keepalive if negotiated else None,
            "connect_retry": settings.connect_retry,
            "graceful_restart_time": local.graceful_restart_time,
            "stale_path_time": settings.stale_path_time,
        },
        "capabilities": capabilities,
        "counters": {
            "updates_received": driver.updates_received,
            "bytes_received": driver.bytes_received,
            "routes_announced": driver.routes_announced,
            "routes_withdrawn": driver.routes_withdrawn,
            "routes_refused": dict(sorted(driver.routes_refused.items())),
            "update_errors": driver.update_errors,
            "messages_received": view["messages_received"],
            "messages_sent": view["messages_sent"],
            "updates_sent": driver.message_counts()[2],
            "connections_refused_gtsm": driver.gtsm_refused,
            "connections_refused_extra": driver.peer.connections_refused,
        },
        "notification_sent": {"ago_s": _ago(now, sent_at[0]), "text": sent_at[1]}
        if sent_at
        else None,
        "notification_received": {"ago_s": _ago(now, received_at[0]), "text": received_at[1]}
        if received_at
        else None,
        "end_of_rib_received": driver.end_of_rib_received,
    }


def address_key(text: str) -> tuple[int, bytes | str]:
    """Addresses in numeric order (198.18.0.4 before 198.18.0.10), IPv4 before IPv6."""
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return (2, text)
    return (parsed.version, parsed.packed)


def vni_of(route: EvpnRoute, attrs: PathAttributes) -> int | None:
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
        "vni": vni_of(route, attrs),
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
        "encapsulation": attrs.encapsulation,
        "labels": _labels(route),
        "originator_id": ip_to_text(attrs.originator_id) if attrs.originator_id else None,
        "imported_by": imported_by if imported_by is not None else [],
        "text": route.text,
    }


def _labels(route: EvpnRoute) -> list[int]:
    if isinstance(route, MacIpRoute):
        return [route.label1, route.label2] if route.label2 else [route.label1]
    if isinstance(route, IpPrefixRoute | EthernetAdRoute):
        return [route.label]
    return []


def route_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters of `show routes`/`show mac`/`show neigh`, checked: a filter that cannot
    match (`--mac zz`) is an error that says why, never an empty answer."""
    out: dict[str, Any] = {}
    if filters.get("type") is not None:
        kind = int(filters["type"])
        if kind not in (1, 2, 3, 4, 5):
            raise ValueError(f"type {kind}: EVPN route types are 1 to 5")
        out["type"] = kind
    if filters.get("vni") is not None:
        vni = int(filters["vni"])
        if not 0 < vni < 1 << 24:
            raise ValueError(f"VNI {vni}: 1 to 16777215")
        out["vni"] = vni
    if filters.get("mac") is not None:
        out["mac"] = mac_to_text(mac_from_text(str(filters["mac"])))
    if filters.get("rd") is not None:
        out["rd"] = str(RouteDistinguisher.from_text(str(filters["rd"])))
    out["detail"] = bool(filters.get("detail"))
    return out


def _rd_key(rd: str) -> tuple[int, bytes | str, int]:
    admin, _, assigned = rd.rpartition(":")
    version, packed = address_key(admin)
    if version == 2 and admin.isdigit():
        return (0, int(admin).to_bytes(4, "big"), int(assigned))
    return (version, packed, int(assigned) if assigned.isdigit() else 0)


async def routes_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    checked = route_filters(filters)
    wanted_type = checked.get("type")
    wanted_vni = checked.get("vni")
    wanted_mac = checked.get("mac")
    wanted_rd = checked.get("rd")
    detail = checked["detail"]
    now = time.time()
    out = []
    async for entries in snapshot_slices(daemon):
        for entry in entries:
            # every candidate of the key, the best first (as the snapshot has them); they share
            # the key, so its type and RD too: a key filtered out is left at its first path
            candidates = [entry] if isinstance(entry, Path) else entry
            for path in candidates:
                route = path.route
                if wanted_type is not None and route.route_type != wanted_type:
                    break
                if wanted_rd is not None and str(route.rd) != wanted_rd:
                    break
                best = path is candidates[0]
                view = route_view(path, best, daemon.importing_vnis(path))
                if wanted_vni is not None and view["vni"] != wanted_vni:
                    continue
                if wanted_mac is not None and view["mac"] != wanted_mac:
                    continue
                if detail:
                    # FRR's "best (…)": what set the best path apart from the next one
                    view["best_reason"] = bestpath.reason(path, candidates) if best else None
                    view["paths"] = len(candidates)
                    view["received_ago_s"] = _ago(now, path.received or None)
                out.append(view)
    out.sort(key=lambda v: (_rd_key(v["rd"]), v["type"], v["text"], not v["best"], v["source"]))
    return out


async def rmac_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Router's MACs per remote VTEP and L3VNI (FRR's `show evpn rmac vni all` and
    `show evpn next-hops vni all`): what symmetric IRB routes towards."""
    wanted = filters.get("vni")
    found: dict[tuple[int, str], tuple[str, int]] = {}
    async for paths in sliced(daemon):
        for path in paths:
            attrs = path.attributes
            rmac = attrs.router_mac
            if rmac is None or path.source.is_local or attrs.nexthop_text is None:
                continue
            for l3vni in daemon.importing_l3vnis(path):
                if wanted is not None and l3vni != int(wanted):
                    continue
                key = (l3vni, attrs.nexthop_text)
                _, count = found.get(key, ("", 0))
                found[key] = (mac_to_text(rmac), count + 1)
    return [
        {"l3vni": l3vni, "vtep": vtep, "router_mac": rmac, "routes": count}
        for (l3vni, vtep), (rmac, count) in sorted(
            found.items(), key=lambda item: (item[0][0], address_key(item[0][1]))
        )
    ]


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
                "inner_mtu_vteps": daemon.underlay.inner_over.get(vni.vni, []),
                "mtu_problem": daemon.underlay.mtu_problems.get(vni.vni),
                "problems": port.problems if port else ["not in the kernel"],
            }
        )
    return out


async def _type2(
    daemon: Daemon, filters: dict[str, Any], with_ip: bool
) -> list[tuple[MacIpRoute, dict[str, Any]]]:
    """Best Type 2 paths (MAC-only, or with an IP), each with the fields both views show."""
    wanted_vni = filters.get("vni")
    out = []
    async for paths in sliced(daemon):
        for path in paths:
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
            out.append((route, view))
    return out


def _port_name(ifindex: int, names: dict[int, str | None]) -> str | None:
    if ifindex not in names:
        try:
            names[ifindex] = socket.if_indextoname(ifindex)
        except OSError:
            names[ifindex] = None
    return names[ifindex]


async def mac_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    ports = daemon.local.ports
    names: dict[int, str | None] = {}
    for route, view in await _type2(daemon, route_filters(filters), with_ip=False):
        frozen = daemon.local.duplicates.is_frozen(route.label1, route.mac)
        ifindex = ports.get((route.label1, route.mac)) if view["type"] == "local" else None
        port = _port_name(ifindex, names) if ifindex else None
        out.append(view | {"frozen": frozen, "port": port})
    out.sort(key=lambda m: (m["vni"], m["mac"], m["type"]))
    return out


async def neigh_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """MAC/IP bindings, local and remote: what ARP/ND suppression answers from."""
    out = [view for _, view in await _type2(daemon, route_filters(filters), with_ip=True)]
    out.sort(key=lambda n: (n["vni"], address_key(str(n["ip"])), n["type"]))
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
