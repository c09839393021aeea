"""Peers and routes as JSON-able dicts: what `evpnctl ... --json` prints. Absent fields are
null, never missing, so scripts can index them."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import platform
import socket
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from evpnd import __version__
from evpnd.bgp.attributes import PathAttributes
from evpnd.config import Config
from evpnd.control.pacing import Pacer, paced_sort
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


#: entries between two looks at the clock in a paced walk
PACE_SLICE = 256


async def paced_entries(daemon: Daemon, pacer: Pacer) -> AsyncIterator[list[Path | list[Path]]]:
    """A snapshot of the Loc-RIB's entries (as `snapshot_slices`) in small slices, the loop
    given back whenever the pacer's turn is used — by the walk and by what the caller does
    with each slice, which for a view costs twenty times a count's."""
    entries = daemon.rib.entries()
    for start in range(0, len(entries), PACE_SLICE):
        if start:
            await pacer.tick()
        yield entries[start : start + PACE_SLICE]


async def paced_best(daemon: Daemon, pacer: Pacer) -> AsyncIterator[list[Path]]:
    """The best paths of `paced_entries`."""
    async for entries in paced_entries(daemon, pacer):
        yield [entry if isinstance(entry, Path) else entry[0] for entry in entries]


async def paced_list(items: list[Any], pacer: Pacer) -> AsyncIterator[list[Any]]:
    """A list in slices of `PACE_SLICE`, the loop given back when the turn is used."""
    for start in range(0, len(items), PACE_SLICE):
        if start:
            await pacer.tick()
        yield items[start : start + PACE_SLICE]


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
                **driver.protections_view(),
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


#: id(attributes) -> (attributes, what `route_view` shows of them): paths share attribute
#: objects, and their text forms cost more than the rest of a row
AttributeMemo = dict[int, tuple[PathAttributes, tuple[Any, ...]]]


def _attribute_fields(attrs: PathAttributes) -> tuple[Any, ...]:
    sticky, seq = mobility(attrs)
    return (
        attrs.nexthop_text,
        [rt.value for rt in attrs.route_targets],
        seq if attrs.mac_mobility is not None else None,
        bool(sticky),
        attrs.as_path.text if attrs.as_path is not None else None,
        mac_to_text(attrs.router_mac) if attrs.router_mac else None,
        ip_to_text(attrs.originator_id) if attrs.originator_id else None,
    )


@functools.lru_cache(maxsize=4096)
def _rd_text(rd: RouteDistinguisher) -> str:
    return str(rd)


def route_view(
    path: Path,
    is_best: bool,
    imported_by: list[int] | None = None,
    memo: AttributeMemo | None = None,
) -> dict[str, Any]:
    route = path.route
    attrs = path.attributes
    if memo is None:
        fields = _attribute_fields(attrs)
    else:
        cached = memo.get(id(attrs))
        if cached is None or cached[0] is not attrs:
            cached = memo[id(attrs)] = (attrs, _attribute_fields(attrs))
        fields = cached[1]
    nexthop, rts, seq, sticky, as_path, router_mac, originator_id = fields
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
        "rd": _rd_text(route.rd),
        "vni": vni_of(route, attrs),
        "mac": mac,
        "ip": ip,
        "prefix": prefix,
        "nexthop": nexthop,
        "rts": list(rts),
        "seq": seq,
        "sticky": sticky,
        "source": path.source.name,
        "best": is_best,
        "stale": path.stale,
        "as_path": as_path,
        "local_pref": attrs.local_pref,
        "med": attrs.med,
        # 0 IGP, 1 EGP, 2 incomplete (RFC 4271 §5.1.1); None: not given (ours: IGP when sent)
        "origin": attrs.origin,
        "router_mac": router_mac,
        "encapsulation": attrs.encapsulation,
        "labels": _labels(route),
        "originator_id": originator_id,
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
    if filters.get("table_vni") is not None:
        out["table_vni"] = route_filters({"vni": filters["table_vni"]})["vni"]
    for key in ("vtep", "ip"):
        if filters.get(key) is not None:
            out[key] = ip_to_text(ipaddress.ip_address(str(filters[key])).packed)
    out["detail"] = bool(filters.get("detail"))
    return out


def holding_vnis(daemon: Daemon, path: Path) -> list[int]:
    """The VNIs whose table holds a path (what FRR lists under a VNI): our own route in its
    VNI, a remote one in every VNI whose import RTs match its RTs (`importing_vnis`) — never
    in a VNI only because its label says so."""
    if path.source.is_local:
        vni = vni_of(path.route, path.attributes)
        return [vni] if vni is not None else []
    return daemon.importing_vnis(path)


@functools.lru_cache(maxsize=4096)
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
    in_table = checked.get("table_vni")
    detail = checked["detail"]
    now = time.time()
    out = []
    pacer = Pacer()
    #: id(attributes) -> (attributes, VNIs): import depends on the attributes only
    imports: dict[int, tuple[PathAttributes, list[int]]] = {}
    memo: AttributeMemo = {}
    async for entries in paced_entries(daemon, pacer):
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
                attrs = path.attributes
                imported: list[int] = []
                if not path.source.is_local:  # (ours are imported by none: `_importing`)
                    cached = imports.get(id(attrs))
                    if cached is None or cached[0] is not attrs:
                        cached = imports[id(attrs)] = (attrs, daemon.importing_vnis(path))
                    imported = list(cached[1])
                view = route_view(path, best, imported, memo)
                if wanted_vni is not None and view["vni"] != wanted_vni:
                    continue
                if wanted_mac is not None and view["mac"] != wanted_mac:
                    continue
                if in_table is not None and in_table not in (
                    view["imported_by"] if not path.source.is_local else [view["vni"]]
                ):
                    continue
                if detail:
                    # FRR's "best (…)": what set the best path apart from the next one
                    view["best_reason"] = bestpath.reason(path, candidates) if best else None
                    view["paths"] = len(candidates)
                    view["received_ago_s"] = _ago(now, path.received or None)
                out.append(view)
    return await paced_sort(
        out, lambda v: (_rd_key(v["rd"]), v["type"], v["text"], not v["best"], v["source"]), pacer
    )


async def rmac_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Router's MACs per remote VTEP and L3VNI (FRR's `show evpn rmac vni all` and
    `show evpn next-hops vni all`): what symmetric IRB routes towards."""
    wanted = filters.get("vni")
    found: dict[tuple[int, str], tuple[str, int]] = {}
    async for paths in paced_best(daemon, Pacer()):
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
                "ifindex": port.ifindex if port else None,
                "bridge": port.bridge_name if port else None,
                "bridge_ifindex": port.bridge_ifindex if port else None,
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
    """Best Type 2 paths (MAC-only, or with an IP), each with the fields both views show, once
    for every VNI that holds it (`holding_vnis`): a remote MAC whose RTs no VNI of ours
    imports is in no VNI, as in the kernel."""
    wanted_vni = filters.get("vni")
    wanted_mac = filters.get("mac")
    wanted_vtep = filters.get("vtep")
    wanted_ip = filters.get("ip")
    now = time.time()
    #: id(attributes) -> (attributes, VNIs): import depends on the attributes only
    imports: dict[int, tuple[PathAttributes, list[int]]] = {}
    out = []
    async for paths in paced_best(daemon, Pacer()):
        for path in paths:
            route = path.route
            if not isinstance(route, MacIpRoute) or bool(route.ip) != with_ip:
                continue
            attrs = path.attributes
            if path.source.is_local:
                vnis = [route.label1]
            else:
                cached = imports.get(id(attrs))
                if cached is None or cached[0] is not attrs:
                    cached = imports[id(attrs)] = (attrs, daemon.importing_vnis(path))
                vnis = cached[1]
            if wanted_vni is not None:
                vnis = [v for v in vnis if v == int(wanted_vni)]
            if not vnis:
                continue
            mac = mac_to_text(route.mac)
            if wanted_mac is not None and mac != wanted_mac:
                continue
            vtep = attrs.nexthop_text
            if wanted_vtep is not None and (path.source.is_local or vtep != wanted_vtep):
                continue
            ip = ip_to_text(route.ip) if with_ip else None
            if wanted_ip is not None and ip != wanted_ip:
                continue
            sticky, seq = mobility(attrs)
            for vni in vnis:
                view: dict[str, Any] = {"vni": vni, "mac": mac}
                if with_ip:
                    view["ip"] = ip
                view |= {
                    "type": "local" if path.source.is_local else "remote",
                    "vtep": vtep,
                    "seq": seq,
                    "sticky": bool(sticky),
                    "source": path.source.name,
                    "uptime_s": _ago(now, path.received or None),
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
    """MACs per VNI, local (with their port) and remote; with `detail`, each MAC's IPs."""
    checked = route_filters(filters)
    out = []
    ports = daemon.local.ports
    names: dict[int, str | None] = {}
    pacer = Pacer()
    duplicates = daemon.local.duplicates
    async for found in paced_list(await _type2(daemon, checked, with_ip=False), pacer):
        for route, view in found:
            frozen = duplicates.is_frozen(view["vni"], route.mac)
            moves = duplicates.moves_seen(view["vni"], route.mac)
            ifindex = ports.get((route.label1, route.mac)) if view["type"] == "local" else None
            port = _port_name(ifindex, names) if ifindex else None
            view |= {"frozen": frozen, "moves": moves, "port": port, "ifindex": ifindex}
            out.append(view)
    if checked["detail"]:
        # FRR's "Neighbors:": the IPs bound to each MAC in its VNI
        ips: dict[tuple[int, str], list[str]] = {}
        bindings = {k: v for k, v in checked.items() if k in ("vni", "mac")}
        neighs = await _type2(daemon, bindings | {"detail": False}, with_ip=True)
        async for found in paced_list(neighs, pacer):
            for _, neigh in found:
                ips.setdefault((neigh["vni"], neigh["mac"]), []).append(str(neigh["ip"]))
        async for views in paced_list(out, pacer):
            for view in views:
                view["ips"] = sorted(ips.get((view["vni"], view["mac"]), []), key=address_key)
    return await paced_sort(out, lambda m: (m["vni"], m["mac"], m["type"]), pacer)


async def neigh_view(daemon: Daemon, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """MAC/IP bindings, local and remote: what ARP/ND suppression answers from."""
    out = [view for _, view in await _type2(daemon, route_filters(filters), with_ip=True)]
    return await paced_sort(
        out, lambda n: (n["vni"], address_key(str(n["ip"])), n["type"]), Pacer()
    )


async def vni_counts_view(daemon: Daemon) -> list[dict[str, Any]]:
    """`vni_view` with the MACs and MAC/IP bindings each VNI holds (FRR's # MACs, # ARPs),
    counted as `show mac` and `show neigh` list them."""
    macs: dict[int, int] = {}
    arps: dict[int, int] = {}
    for with_ip, counts in ((False, macs), (True, arps)):
        for _, view in await _type2(daemon, {}, with_ip=with_ip):
            counts[view["vni"]] = counts.get(view["vni"], 0) + 1
    return [
        v | {"macs": macs.get(v["vni"], 0), "arps": arps.get(v["vni"], 0)} for v in vni_view(daemon)
    ]


async def peer_routes_view(daemon: Daemon, address: str, advertised: bool) -> dict[str, Any]:
    """`show bgp neighbors X routes`: the paths X sent that we accepted (its Adj-RIB-In);
    `advertised-routes`: what X has from us, as sent (its update group's Adj-RIB-Out)."""
    driver = daemon.drivers.get(address)
    if driver is None:
        raise ValueError(f"no peer {address!r} (show peers lists them)")
    routes: list[dict[str, Any]] = []
    pacer = Pacer()
    memo: AttributeMemo = {}
    if advertised:
        adj_out = driver.adj_out
        sent = list(adj_out.sent.values()) if adj_out is not None else []
        async for pairs in paced_list(sent, pacer):
            for route, attrs in pairs:
                best = daemon.rib.best(route.key)
                source = best.source if best is not None else daemon.local_source
                view = route_view(Path(route, attrs, source), True, memo=memo)
                routes.append(view)
    else:
        paths = list(daemon.rib.adj_in.get(address, {}).values())
        async for some in paced_list(paths, pacer):
            for path in some:
                is_best = daemon.rib.best(path.route.key) is path
                imported = daemon.importing_vnis(path)
                routes.append(route_view(path, is_best, imported, memo))
    routes = await paced_sort(routes, lambda v: (_rd_key(v["rd"]), v["type"], v["text"]), pacer)
    return {
        "peer": address,
        "direction": "advertised" if advertised else "received",
        "state": driver.state.value,
        "routes": routes,
        # every path of the Loc-RIB (FRR's "out of N total prefixes")
        "total": len(daemon.rib),
    }


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


#: what `show running-config` prints for a TCP MD5 password
MASKED = "********"


def running_config_view(config: Config) -> dict[str, Any]:
    """The configuration the daemon runs (after the last good reload, defaults filled in),
    in the file's own keys (docs/configuration.md), passwords masked: a file `evpnd --check`
    accepts, but for the passwords."""

    def secret(password: str | None) -> dict[str, str]:
        return {"password": MASKED} if password is not None else {}

    def rts(targets: tuple[Any, ...]) -> list[str]:
        return [rt.value for rt in targets]

    neighbors = []
    for n in config.neighbors:
        entry: dict[str, Any] = {"address": n.address, "remote_as": n.remote_as}
        entry |= secret(n.password)
        entry |= {"port": n.port, "passive": n.passive, "connect_retry": n.connect_retry}
        optional = {
            "hold_time": n.hold_time,
            "update_source": n.update_source,
            "multihop": n.multihop,
            "ttl_security_hops": n.ttl_security_hops,
            "max_routes": n.max_routes,
            "description": n.description or None,
        }
        entry |= {k: v for k, v in optional.items() if v is not None}
        if n.route_reflector_client:
            entry["route_reflector_client"] = True
        neighbors.append(entry)
    ranges = []
    for r in config.listen_ranges:
        entry = {"prefix": str(r.prefix), **secret(r.password)}
        if r.remote_as is not None:
            entry["remote_as"] = r.remote_as
        if r.route_reflector_client:
            entry["route_reflector_client"] = True
        if r.max_routes is not None:
            entry["max_routes"] = r.max_routes
        ranges.append(entry)
    evpn = config.evpn
    vnis = []
    for v in evpn.vnis:
        entry = {"vni": v.vni, "rd": str(v.rd) if v.rd is not None else "auto"}
        if v.import_rts:
            entry["import_rts"] = rts(v.import_rts)
        if v.export_rts:
            entry["export_rts"] = rts(v.export_rts)
        if v.vtep_ip:
            entry["vtep_ip"] = v.vtep_ip
        if v.macs:
            entry["macs"] = [
                {"mac": mac_to_text(m.mac)} | ({"ip": ip_to_text(m.ip)} if m.ip else {})
                for m in v.macs
            ]
        vnis.append(entry)
    evpn_out: dict[str, Any] = {
        "advertise_all_vni": evpn.advertise_all_vni,
        "program_kernel": evpn.program_kernel,
        "flush_on_exit": evpn.flush_on_exit,
    }
    if evpn.vtep_ip:
        evpn_out["vtep_ip"] = evpn.vtep_ip
    evpn_out["vnis"] = vnis
    vrfs: dict[str, Any] = {}
    for l3 in evpn.l3vnis:
        entry = {
            "l3vni" if l3.vrf is not None else "vni": l3.vni,
            "rd": str(l3.rd) if l3.rd is not None else "auto",
        }
        if l3.import_rts:
            entry["import_rts"] = rts(l3.import_rts)
        if l3.export_rts:
            entry["export_rts"] = rts(l3.export_rts)
        entry["advertise"] = {
            "connected": l3.advertise_connected,
            "prefixes": [str(p) for p in l3.prefixes],
        }
        if l3.vrf is None:
            evpn_out["l3vni"] = entry
        else:
            vrfs[l3.vrf] = entry
    if vrfs:
        evpn_out["vrfs"] = vrfs
    out: dict[str, Any] = {
        "asn": config.asn,
        "router_id": config.router_id,
        "hostname": config.hostname,
        "listen": {"address": config.listen_address, "port": config.listen_port},
        "hold_time": config.hold_time,
        "graceful_restart": {
            "restart_time": config.graceful_restart_time,
            "stale_path_time": config.stale_path_time,
            "notification": config.graceful_notification,
        },
        "resolve_via_default": config.resolve_via_default,
        "neighbors": neighbors,
        "listen_ranges": ranges,
        "evpn": evpn_out,
        "control_socket": config.control_socket,
        "state_dir": config.state_dir,
    }
    for key in ("control_group", "control_write_group"):
        if getattr(config, key) is not None:
            out[key] = getattr(config, key)
    if config.metrics is not None:
        out["metrics"] = {"address": config.metrics[0], "port": config.metrics[1]}
    if config.debug_peers or config.debug_vnis:
        out["debug"] = {"peers": list(config.debug_peers), "vnis": list(config.debug_vnis)}
    return out


def version_view(daemon: Daemon) -> dict[str, Any]:
    """`show version`: the running daemon's (evpnctl --version is evpnctl's own)."""
    return {
        "version": __version__,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "hostname": daemon.config.hostname,
        "router_id": daemon.config.router_id,
        "uptime_s": round(time.time() - daemon.started_at, 1),
        "config_file": daemon.config.source,
    }
