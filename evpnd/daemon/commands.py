"""What each control request does: the daemon's answers to `evpnctl`. The socket, its
permissions and the streaming of `watch` are control/server.py's."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from evpnd import __version__
from evpnd.daemon import doctor
from evpnd.daemon.views import (
    address_key,
    kernel_view,
    l3vni_view,
    mac_view,
    neigh_view,
    neighbor_view,
    peer_routes_view,
    peer_view,
    rmac_view,
    routes_view,
    running_config_view,
    version_view,
    vni_counts_view,
)
from evpnd.evpn.identifiers import ip_to_text, mac_from_text, mac_to_text

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon

log = structlog.get_logger("evpnd.control")


def handle(daemon: Daemon, request: dict[str, Any]) -> Any:
    """One control request (see control/server.py for the protocol)."""
    command = request.get("command")
    filters = request.get("filters") or {}
    if command == "show peers":
        return peer_view(daemon)
    if command == "show neighbor":
        address = filters.get("address")
        if address is None:
            addresses = sorted(daemon.drivers, key=address_key)
            return [neighbor_view(daemon, address) for address in addresses]
        return neighbor_view(daemon, str(address))
    if command == "show neighbor routes":
        address = str(filters.get("address") or "")
        return peer_routes_view(daemon, address, advertised=bool(filters.get("advertised")))
    if command == "show running-config":
        return running_config_view(daemon.config)
    if command == "show version":
        return version_view(daemon)
    if command == "show rmac":
        return rmac_view(daemon, filters)
    if command == "show debug":
        return daemon.debugging.status()
    if command == "debug":
        scope, target = str(request.get("scope")), str(request.get("target"))
        on = bool(request.get("on"))
        if scope == "peer" and on and not daemon.may_be_peer(target):
            raise ValueError(f"no peer {target!r}: not a neighbour, nor in a listen range")
        return daemon.debugging.set(scope, target, on)
    if command == "show routes":
        return routes_view(daemon, filters)
    if command == "show vni":
        return vni_counts_view(daemon)
    if command == "show mac":
        return mac_view(daemon, filters)
    if command == "show neigh":
        return neigh_view(daemon, filters)
    if command == "show l3vni":
        return l3vni_view(daemon)
    if command == "show kernel":
        return kernel_view(daemon)
    if command == "doctor":
        vni = filters.get("vni")
        return doctor.examine(daemon, int(vni) if vni is not None else None)
    if command == "show summary":
        return {
            "asn": daemon.config.asn,
            "router_id": daemon.config.router_id,
            "routes": len(daemon.rib),
            "peers": len(daemon.drivers),
            # next-hop tracking: VTEPs the underlay cannot reach, and how many paths wait
            "vteps_unreachable": [
                {
                    "vtep": ip_to_text(vtep),
                    "reason": daemon.underlay.ways[vtep].reason
                    if vtep in daemon.underlay.ways
                    else "",
                    "paths": daemon.rib.nexthops.get(vtep, 0),
                }
                for vtep in sorted(daemon.rib.unreachable)
            ],
            # peers of one outbound policy share their UPDATEs (docs/speaker.md)
            "update_groups": [
                {
                    "ibgp": policy.ibgp,
                    "route_reflector_client": policy.route_reflector_client,
                    "members": sorted(d.address for d in group.members),
                    "routes": len(group.adj_out),
                }
                for policy, group in daemon.groups.items()
            ],
            "loop_lag_worst_s": round(daemon.lag.worst, 4),
            "peers_up": daemon.peers_up(),
            "status": daemon.status_line(),
            "version": __version__,
            "uptime_s": round(time.time() - daemon.started_at, 1),
            "reload": {
                "last_ok": daemon.reloads.last_ok,
                "last_ago_s": round(time.time() - daemon.reloads.last_at, 1)
                if daemon.reloads.last_at is not None
                else None,
                "succeeded": daemon.reloads.succeeded,
                "failed": daemon.reloads.failed,
            },
            "connections_refused": daemon.connections_refused(),
            "vnis": [
                {
                    "vni": v.vni,
                    "rd": str(v.rd),
                    "vtep": v.vtep_ip,
                    "export_rts": [rt.value for rt in v.export_rts],
                }
                for v in daemon.vnis
            ],
        }
    if command == "clear peer":
        address = str(request.get("address") or "")
        driver = daemon.drivers.get(address)
        if driver is None:
            raise ValueError(f"no peer {address!r}")
        soft = bool(request.get("soft"))
        log.info("clear peer", peer=address, soft=soft)
        return driver.clear(soft)
    if command == "clear mac":
        if daemon.dataplane is None:
            raise ValueError("kernel programming is off: no duplicate detection")
        vni = int(request.get("vni") or 0)
        mac = mac_from_text(str(request.get("mac") or ""))
        if not daemon.unfreeze(vni, mac):
            raise ValueError(f"{mac_to_text(mac)} in VNI {vni} is not frozen")
        return {"vni": vni, "mac": mac_to_text(mac), "action": "cleared"}
    if command == "reload":
        if daemon.reload_file is None:
            raise ValueError("reload: this evpnd runs without a configuration file")
        return daemon.reload_file()
    raise ValueError(f"unknown command {command!r}")
