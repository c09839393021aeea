"""FRR 8.4's JSON for the vtysh commands evpnctl knows, from evpnd's own answers: the keys,
nesting and value types `vtysh -c '... json'` prints, so scripts written against FRR work on
evpnd (tests/test_frr_json.py compares both daemons' answers key by key). Pure functions:
evpnd's views in, FRR's shapes out. Where evpnd has no such number (BGP table versions,
memory use) the key is left out rather than filled with an invented value; docs/operations.md
lists those keys."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: FRR's prefix length of every EVPN prefix: the size of its `struct evpn_addr`, in bits
EVPN_PREFIX_LEN = 352
#: FRR's weight of a locally originated path
LOCAL_WEIGHT = 32768
DEFAULT_LOCAL_PREF = 100


@dataclass(frozen=True)
class Context:
    """What FRR's JSON says beside the routes: this speaker and its peers."""

    router_id: str
    asn: int
    hostname: str = ""
    #: address -> `show peers` row (remote AS, router id, hostname)
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, summary: dict[str, Any], peers: list[dict[str, Any]], hostname: str = ""
    ) -> Context:
        return cls(
            str(summary["router_id"]),
            int(summary["asn"]),
            hostname,
            {p["address"]: p for p in peers},
        )

    def internal(self, source: str) -> bool:
        peer = self.peers.get(source)
        return peer is not None and peer.get("remote_as") == self.asn


def _afi(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


def _uptime(seconds: float | None) -> str:
    s = int(seconds or 0)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h{s % 3600 // 60:02d}m"
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --- BGP: summary and neighbours -------------------------------------------------------------


def bgp_summary(peers: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """`show bgp l2vpn evpn summary json` (`show bgp summary json` wraps it in l2VpnEvpn)."""
    rows = {}
    for p in peers:
        up = p["uptime_s"] if p["state"] == "Established" else p.get("state_for_s")
        rows[p["address"]] = {
            "hostname": p.get("hostname") or "",
            "remoteAs": p["remote_as"] or 0,
            "localAs": summary["asn"],
            "version": 4,
            "msgRcvd": p["messages_received"],
            "msgSent": p["messages_sent"],
            "outq": 0,
            "inq": 0,
            "peerUptime": _uptime(up) if up is not None else "never",
            "peerUptimeMsec": int((up or 0) * 1000),
            # (0: never Established; the time of day would read as "up since now")
            "peerUptimeEstablishedEpoch": int(time.time() - p["uptime_s"])
            if p["uptime_s"] is not None and p["state"] == "Established"
            else 0,
            "pfxRcd": p["routes_received"],
            "pfxSnt": p["routes_sent"],
            "state": p["state"],
            "peerState": "OK" if p["state"] == "Established" else "Idle",
            "connectionsEstablished": p.get("sessions_established", 0),
            "connectionsDropped": p.get("flaps", 0),
            "idType": _afi(p["address"]),
        }
        if p.get("description"):
            rows[p["address"]]["desc"] = p["description"]
    established = sum(1 for p in peers if p["state"] == "Established")
    return {
        "routerId": summary["router_id"],
        "as": summary["asn"],
        "vrfId": 0,
        "vrfName": "default",
        "ribCount": summary["routes"],
        "peerCount": len(peers),
        "peers": rows,
        "failedPeers": len(peers) - established,
        "displayedPeers": len(peers),
        "totalPeers": len(peers),
        "dynamicPeers": sum(1 for p in peers if p.get("dynamic")),
        "bestPath": {"multiPathRelax": "false"},
    }


def _advertised_received(ours: bool, theirs: bool) -> str:
    if ours and theirs:
        return "advertisedAndReceived"
    return "advertised" if ours else "received"


def neighbor(n: dict[str, Any]) -> dict[str, Any]:
    """One entry of `show bgp neighbors json` (keyed by the address there)."""
    timers = n["timers"]
    counters = n["counters"]
    established = n["state"] == "Established"
    up = (n["uptime_s"] or 0) if established else 0
    out: dict[str, Any] = {
        "remoteAs": n["remote_as"] or 0,
        "localAs": n["local_as"],
        "nbrInternalLink": n["remote_as"] == n["local_as"],
        "hostname": n.get("hostname") or "",
        "bgpVersion": 4,
        "remoteRouterId": n.get("router_id") or "0.0.0.0",
        "localRouterId": n["local_router_id"],
        "bgpState": n["state"],
    }
    if established:
        out |= {
            "bgpTimerUpMsec": int(up * 1000),
            "bgpTimerUpString": _uptime(up),
            "bgpTimerUpEstablishedEpoch": int(time.time() - up),
        }
    if n.get("last_update_ago_s") is not None:
        out["bgpInUpdateElapsedTimeMsecs"] = int(n["last_update_ago_s"] * 1000)
    hold_configured = timers["hold_time_configured"]
    out |= {
        "bgpTimerConfiguredHoldTimeMsecs": hold_configured * 1000,
        "bgpTimerConfiguredKeepAliveIntervalMsecs": hold_configured // 3 * 1000,
    }
    if established:
        out |= {
            "bgpTimerHoldTimeMsecs": (timers["hold_time"] or 0) * 1000,
            "bgpTimerKeepAliveIntervalMsecs": (timers["keepalive"] or 0) * 1000,
        }
    caps = n.get("capabilities")
    if caps is not None:
        evpn = "25/70" in caps["families"]
        capabilities: dict[str, Any] = {
            "4byteAs": _advertised_received(True, caps["four_octet_as"]),
            "extendedMessage": _advertised_received(True, caps["extended_message"]),
        }
        if caps["add_path_receive"] or caps["add_path_send"]:
            capabilities["addPath"] = {
                "l2VpnEvpn": {
                    k: True
                    for k, on in (
                        ("rxAdvertisedAndReceived", bool(caps["add_path_receive"])),
                        ("txAdvertisedAndReceived", bool(caps["add_path_send"])),
                    )
                    if on
                }
            }
        capabilities["routeRefresh"] = _advertised_received(True, caps["route_refresh"])
        capabilities["enhancedRouteRefresh"] = _advertised_received(
            True, caps["enhanced_route_refresh"]
        )
        if evpn:
            capabilities["multiprotocolExtensions"] = {"l2VpnEvpn": {"advertisedAndReceived": True}}
        gr = caps.get("graceful_restart_peer")
        capabilities["gracefulRestart"] = _advertised_received(True, gr is not None)
        if gr is not None:
            capabilities["gracefulRestartRemoteTimerMsecs"] = gr["restart_time"] * 1000
        out["neighborCapabilities"] = capabilities
    out["messageStats"] = {
        "updatesSent": counters["updates_sent"],
        "updatesRecv": counters["updates_received"],
        "totalSent": counters["messages_sent"],
        "totalRecv": counters["messages_received"],
    }
    out["addressFamilyInfo"] = {
        "l2VpnEvpn": {
            "acceptedPrefixCounter": n["routes_received"],
            "sentPrefixCounter": n["routes_sent"],
        }
        | ({"routeReflectorClient": True} if n.get("route_reflector_client") else {})
    }
    out["connectionsEstablished"] = n["sessions_established"]
    out["connectionsDropped"] = n["flaps"]
    down = n.get("last_down")
    if down is not None:
        out["lastResetTimerMsecs"] = int((down["ago_s"] or 0) * 1000)
        out["lastResetDueTo"] = down["reason"]
    session = n.get("session")
    if session:
        for side, key in (("local", "Local"), ("remote", "Foreign")):
            host, _, port = str(session[side]).partition(" port ")
            out[f"host{key}"] = host
            if port.isdigit():
                out[f"port{key}"] = int(port)
    out["connectRetryTimer"] = int(timers["connect_retry"])
    if n.get("description"):
        out["nbrDesc"] = n["description"]
    return out


def neighbors(found: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """`show bgp neighbors [X] json`: the neighbours by address."""
    chosen = [found] if isinstance(found, dict) else found
    return {n["address"]: neighbor(n) for n in chosen}


# --- the EVPN table --------------------------------------------------------------------------


def _prefix_fields(r: dict[str, Any]) -> dict[str, Any]:
    """FRR's fields of an EVPN prefix (bgp_evpn_route2json)."""
    out: dict[str, Any] = {"routeType": r["type"], "ethTag": 0}
    if r["type"] == 2:
        out |= {"macLen": 48, "mac": r["mac"]}
        if r["ip"]:
            out |= {"ipLen": 128 if ":" in r["ip"] else 32, "ip": r["ip"]}
    elif r["type"] == 3 and r["ip"]:
        out |= {"ipLen": 128 if ":" in r["ip"] else 32, "ip": r["ip"]}
    elif r["type"] == 5 and r["prefix"]:
        network = ipaddress.ip_network(r["prefix"])
        out |= {"ipLen": network.prefixlen, "ip": str(network.network_address)}
    return out


ORIGINS = {0: ("IGP", "i"), 1: ("EGP", "e"), 2: ("incomplete", "?")}


def _origin(r: dict[str, Any]) -> tuple[str, str]:
    return ORIGINS.get(r.get("origin") or 0, ORIGINS[0])


def communities_text(r: dict[str, Any]) -> str:
    """FRR's text of a path's extended communities (its second line in the tables): route
    targets, ET, Rmac, MAC mobility."""
    words = [f"RT:{rt}" for rt in r["rts"]]
    if r.get("encapsulation") is not None:
        words.append(f"ET:{r['encapsulation']}")
    if r.get("router_mac"):
        words.append(f"Rmac:{r['router_mac']}")
    if r["seq"] is not None:
        words.append(f"MM:{r['seq']}" + (", sticky MAC" if r["sticky"] else ""))
    return " ".join(words)


def _local(r: dict[str, Any]) -> bool:
    return bool(r["source"] == "local")


def _nexthop_host(r: dict[str, Any], ctx: Context) -> str:
    if _local(r):
        return ctx.hostname
    return str((ctx.peers.get(r["source"]) or {}).get("hostname") or "")


def path_brief(r: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One path as FRR's table lists it (route_vty_out's JSON)."""
    out: dict[str, Any] = {"valid": True}
    if r["best"]:
        out |= {"bestpath": True, "selectionReason": r.get("best_reason") or "First path received"}
    if r["stale"]:
        out["stale"] = True
    local = _local(r)
    out["pathFrom"] = "internal" if not local and ctx.internal(r["source"]) else "external"
    out |= _prefix_fields(r)
    if r.get("med") is not None:
        out["metric"] = r["med"]
    if r.get("local_pref") is not None:
        out["locPrf"] = r["local_pref"]
    out["weight"] = LOCAL_WEIGHT if local else 0
    out["peerId"] = "(unspec)" if local else r["source"]
    out["path"] = r.get("as_path") or ""
    out["origin"] = _origin(r)[0]
    out["extendedCommunity"] = {"string": communities_text(r)}
    nexthop = r["nexthop"] or "0.0.0.0"
    out["nexthops"] = [
        {"ip": nexthop, "hostname": _nexthop_host(r, ctx), "afi": _afi(nexthop), "used": True}
    ]
    return out


#: an AS path's text (bgp/attributes.py AsPath.text): plain numbers, {set}, (confed
#: sequence), [confed set]
_SEGMENT = re.compile(r"\{([^}]*)\}|\(([^)]*)\)|\[([^\]]*)\]|(\d+(?:\s+\d+)*)")
_SEGMENT_TYPES = ("as-set", "as-confed-sequence", "as-confed-set", "as-sequence")


def _segments(as_path: str) -> list[dict[str, Any]]:
    """FRR's `segments` of an AS path given as text."""
    out = []
    for found in _SEGMENT.finditer(as_path):
        for kind, body in zip(_SEGMENT_TYPES, found.groups(), strict=True):
            if body is not None:
                out.append({"type": kind, "list": [int(a) for a in body.split()]})
    return out


def path_detail(r: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One path in full (route_vty_out_detail's JSON)."""
    local = _local(r)
    out: dict[str, Any] = {}
    if r["vni"] is not None and (r["type"] in (2, 5) or local):
        out |= {"VNI": str(r["vni"]), "vni": str(r["vni"])}
    as_path = r.get("as_path") or ""
    segments = _segments(as_path)
    out["aspath"] = {
        "string": as_path or "Local",
        "segments": segments,
        # (RFC 4271 §9.1.2.2: a set counts as one; confederation segments not at all)
        "length": sum(
            len(s["list"]) if s["type"] == "as-sequence" else s["type"] == "as-set"
            for s in segments
        ),
    }
    out["origin"] = _origin(r)[0]
    if r.get("med") is not None:
        out["metric"] = r["med"]
    if r.get("local_pref") is not None:
        out["locPrf"] = r["local_pref"]
    if local:
        out["weight"] = LOCAL_WEIGHT
    out["valid"] = True
    if local:
        out |= {"sourced": True, "local": True}
    if r["stale"]:
        out["stale"] = True
    if r["best"]:
        out["bestpath"] = {
            "overall": True,
            "selectionReason": r.get("best_reason") or "First path received",
        }
    out["extendedCommunity"] = {"string": communities_text(r)}
    if r.get("received_ago_s") is not None:
        epoch = int(time.time() - r["received_ago_s"])
        out["lastUpdate"] = {"epoch": epoch, "string": time.ctime(epoch) + "\n"}
    if r["type"] == 3 and r["vni"] is not None:
        out["pmsi"] = {"tunnelType": "Ingress Replication", "label": r["vni"]}
    nexthop = r["nexthop"] or "0.0.0.0"
    out["nexthops"] = [
        {
            "ip": nexthop,
            "hostname": _nexthop_host(r, ctx),
            "afi": _afi(nexthop),
            "metric": 0,
            "accessible": True,
            "used": True,
        }
    ]
    if local:
        out["peer"] = {"peerId": "0.0.0.0", "routerId": ctx.router_id}
    else:
        peer = ctx.peers.get(r["source"]) or {}
        out["peer"] = {
            "peerId": r["source"],
            "routerId": peer.get("router_id") or r["source"],
            "hostname": peer.get("hostname") or "",
            "type": "internal" if ctx.internal(r["source"]) else "external",
        }
    return out


def _by_rd(routes: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """rd -> prefix text -> paths, in the order given (evpnd's views sort them)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in routes:
        out.setdefault(r["rd"], {}).setdefault(r["text"], []).append(r)
    return out


def _table_head(ctx: Context) -> dict[str, Any]:
    return {
        "bgpLocalRouterId": ctx.router_id,
        "defaultLocPrf": DEFAULT_LOCAL_PREF,
        "localAS": ctx.asn,
    }


def evpn_table(routes: list[dict[str, Any]], ctx: Context, total: int) -> dict[str, Any]:
    """`show bgp l2vpn evpn json`, and `show bgp l2vpn evpn neighbors X routes json`: paths by
    RD and prefix, each prefix's paths as one list."""
    out = _table_head(ctx)
    prefixes = 0
    for rd, entries in _by_rd(routes).items():
        block: dict[str, Any] = {"rd": rd}
        for text, paths in entries.items():
            block[text] = {
                "prefix": text,
                "prefixLen": EVPN_PREFIX_LEN,
                "paths": [path_brief(p, ctx) for p in paths],
            }
            prefixes += 1
        out[rd] = block
    out["numPrefix"] = prefixes
    out["totalPrefix"] = total
    return out


def _entry(
    text: str, paths: list[dict[str, Any]], ctx: Context, detail: bool, titled: bool = True
) -> dict[str, Any]:
    """A prefix of `show bgp l2vpn evpn route`: each path in a list of its own (FRR's shape);
    `route rd RD` leaves out the prefix's own text and length."""
    entry: dict[str, Any] = {"prefix": text, "prefixLen": EVPN_PREFIX_LEN} if titled else {}
    if detail:
        entry["rd"] = paths[0]["rd"]
        entry |= _prefix_fields(paths[0])
        entry["paths"] = [[path_detail(p, ctx)] for p in paths]
    else:
        entry["paths"] = [[path_brief(p, ctx)] for p in paths]
    return entry


def evpn_route(
    routes: list[dict[str, Any]], ctx: Context, values: dict[str, Any]
) -> dict[str, Any]:
    """`show bgp l2vpn evpn route [vni N | rd RD] [mac M] [type T] [detail] json`, in the shape
    FRR gives each of these forms."""
    detail = bool(values.get("detail")) or "rd" in values
    if "mac" in values and ("rd" in values or "vni" in values):
        # one route (the MAC-only one), in full
        chosen = [r for r in routes if not r["ip"]]
        head: dict[str, Any] = {"rd": values.get("rd", "")}
        head |= {
            "routeType": 2,
            "ethTag": 0,
            "macLen": 48,
            "mac": values["mac"],
        }
        in_full = [[path_detail(r, ctx)] for r in chosen]
        if "rd" in values:
            text = chosen[0]["text"] if chosen else f"[2]:[0]:[48]:[{values['mac']}]"
            head[text] = in_full
        else:
            head["paths"] = in_full
        head["numPaths"] = len(chosen)
        return head
    out: dict[str, Any] = {}
    if "vni" in values:
        # the VNI's own table: one entry per prefix, whatever RD its paths carry
        by_text: dict[str, list[dict[str, Any]]] = {}
        for r in routes:
            by_text.setdefault(r["text"], []).append(r)
        for text, paths in by_text.items():
            out[text] = _entry(text, paths, ctx, detail=bool(values.get("detail")))
        out["numPrefix"] = len(by_text)
    else:
        prefixes = 0
        for rd, entries in _by_rd(routes).items():
            block: dict[str, Any] = {"rd": rd}
            for text, paths in entries.items():
                block[text] = _entry(text, paths, ctx, detail, titled="rd" not in values)
                prefixes += 1
            out[rd] = block
        out["numPrefix"] = prefixes
    out["numPaths"] = len(routes)
    return out


def advertised_routes(routes: list[dict[str, Any]], ctx: Context) -> dict[str, Any]:
    """`show bgp l2vpn evpn neighbors X advertised-routes json`."""
    out = _table_head(ctx)
    out["bgpStatusCodes"] = {
        "suppressed": "s",
        "damped": "d",
        "history": "h",
        "valid": "*",
        "best": ">",
        "internal": "i",
    }
    out["bgpOriginCodes"] = {"igp": "i", "egp": "e", "incomplete": "?"}
    advertised: dict[str, Any] = {}
    for rd, entries in _by_rd(routes).items():
        block: dict[str, Any] = {"rd": rd}
        for text, paths in entries.items():
            r = paths[0]
            entry = _prefix_fields(r) | {"nextHop": r["nexthop"] or "0.0.0.0"}
            if r.get("local_pref") is not None:
                entry["locPrf"] = r["local_pref"]
            entry |= {
                "weight": LOCAL_WEIGHT if _local(r) else 0,
                "path": r.get("as_path") or "",
                "bgpOriginCode": _origin(r)[1],
                "appliedStatusSymbols": {"*": True, ">": True},
            }
            block[text] = entry
        advertised[rd] = block
    out["advertisedRoutes"] = advertised
    out["totalPrefixCounter"] = len(routes)
    return out


def bgp_vnis(
    vnis: list[dict[str, Any]],
    l3vnis: list[dict[str, Any]],
    running: dict[str, Any],
    wanted: int | None,
) -> dict[str, Any]:
    """`show bgp l2vpn evpn vni [N] json`: the VNIs as BGP has them."""
    asn = running["asn"]

    def imports(v: dict[str, Any]) -> list[str]:
        # evpnd's auto import RT matches *:VNI; FRR writes its own auto RT as AS:VNI
        rts = [rt for rt in v.get("import_rts") or [] if rt != "auto"]
        return rts or [f"{asn}:{v['vni']}"]

    def exports(v: dict[str, Any]) -> list[str]:
        return list(v["export_rts"]) or [f"{asn}:{v['vni']}"]

    def l2(v: dict[str, Any], one: bool) -> dict[str, Any]:
        entry = {
            "vni": v["vni"],
            "type": "L2",
            "inKernel": "True" if v["vxlan"] else "False",
            "rd": v["rd"],
            "originatorIp": v["vtep"],
            "mcastGroup": "0.0.0.0",
            "advertiseGatewayMacip": "Disabled",
            "advertiseSviMacIp": "Disabled",
        }
        if one:
            if v.get("bridge"):
                entry["sviInterface"] = v["bridge"]
            return entry | {"importRts": imports(v), "exportRts": exports(v)}
        return entry | {"importRTs": imports(v), "exportRTs": exports(v)}

    if wanted is not None:
        found = [v for v in vnis if v["vni"] == wanted]
        return l2(found[0], one=True) if found else {}
    out: dict[str, Any] = {
        "advertiseGatewayMacip": "Disabled",
        "advertiseSviMacIp": "Disabled",
        "advertiseAllVnis": "Enabled" if running["evpn"]["advertise_all_vni"] else "Disabled",
        "flooding": "Head-end replication",
        "vxlanFlooding": "Enabled",
        "numVnis": len(vnis) + len(l3vnis),
        "numL2Vnis": len(vnis),
        "numL3Vnis": len(l3vnis),
    }
    for v in vnis:
        out[str(v["vni"])] = l2(v, one=False)
    for v in l3vnis:
        out[str(v["vni"])] = {
            "vni": v["vni"],
            "type": "L3",
            "inKernel": "True" if v["state"] == "up" else "False",
            "originatorIp": running["evpn"].get("vtep_ip") or running["router_id"],
            "rd": v["rd"] or "",
            "advertiseGatewayMacip": "n/a",
            "advertiseSviMacIp": "n/a",
            # no primary IP address (FRR's advertise-pip): FRR's system IP is then unset
            "advertisePip": "Disabled",
            "sysIP": "0.0.0.0",
            "sysMAC": v["router_mac"] or "",
            "rmac": v["router_mac"] or "",
            "importRTs": [rt for rt in v["import_rts"] if rt != "auto"] or [f"{asn}:{v['vni']}"],
            "exportRTs": list(v["export_rts"]) or [f"{asn}:{v['vni']}"],
        }
    return out


# --- zebra's views: VNIs, MACs, neighbours, Router's MACs ------------------------------------


def evpn_vnis(vnis: list[dict[str, Any]], l3vnis: list[dict[str, Any]], wanted: int | None) -> Any:
    """`show evpn vni [N] json`."""
    if wanted is not None:
        found = [v for v in vnis if v["vni"] == wanted]
        if not found:
            return {}
        v = found[0]
        entry: dict[str, Any] = {"vni": v["vni"], "type": "L2", "vrf": "default"}
        if v["vxlan"]:
            entry |= {"vxlanInterface": v["vxlan"], "ifindex": v.get("ifindex") or 0}
        if v.get("bridge"):
            entry |= {"sviInterface": v["bridge"], "sviIfindex": v.get("bridge_ifindex") or 0}
        return entry | {
            "vtepIp": v["vtep"],
            "mcastGroup": "0.0.0.0",
            "advertiseGatewayMacip": "No",
            "advertiseSviMacip": "No",
            "numMacs": v.get("macs", 0),
            "numArpNd": v.get("arps", 0),
            # (FRR's name for the list of remote VTEPs of one VNI)
            "numRemoteVteps": list(v["remote_vteps"]),
        }
    out: dict[str, Any] = {}
    for v in vnis:
        out[str(v["vni"])] = {
            "vni": v["vni"],
            "type": "L2",
            "vxlanIf": v["vxlan"] or "",
            "numMacs": v.get("macs", 0),
            "numArpNd": v.get("arps", 0),
            "numRemoteVteps": len(v["remote_vteps"]),
            "tenantVrf": "default",
        }
        if v["remote_vteps"]:  # (FRR leaves the list out when it is empty)
            out[str(v["vni"])]["remoteVteps"] = list(v["remote_vteps"])
    for v in l3vnis:
        out[str(v["vni"])] = {
            "vni": v["vni"],
            "vxlanIf": v.get("vxlan") or "",
            "numMacs": v.get("rmacs", 0),
            "numArpNd": v.get("next_hops", 0),
            "numRemoteVteps": "n/a",
            "type": "L3",
            "tenantVrf": v["vrf"],
        }
    return out


def _sequences(item: dict[str, Any]) -> dict[str, Any]:
    local = item["type"] == "local"
    return {
        "localSequence": item["seq"] if local else 0,
        "remoteSequence": 0 if local else item["seq"],
        "detectionCount": item.get("moves", 0),
        "isDuplicate": bool(item.get("frozen")),
    }


def _mac_entry(m: dict[str, Any], detail: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": m["type"]}
    if m["type"] == "local":
        entry["intf"] = m.get("port") or ""
        if detail:
            entry["ifindex"] = m.get("ifindex") or 0
    else:
        entry["remoteVtep"] = m["vtep"] or ""
    if m["sticky"]:
        entry["stickyMac"] = True
    if detail:
        entry["uptime"] = _uptime(m.get("uptime_s"))
    entry |= _sequences(m)
    if detail:
        entry["syncNeighCount"] = 0
        entry["neighbors"] = {"active": list(m.get("ips") or []), "inactive": []}
    return entry


def _per_vni(items: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        out.setdefault(item["vni"], []).append(item)
    return out


def evpn_macs(macs: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """`show evpn mac vni N|all [detail] [mac M] [vtep V] json`, each form in FRR's shape."""
    detail = bool(values.get("detail"))
    if "mac" in values:
        # one MAC, in full, keyed by itself
        return {m["mac"]: _mac_entry(m, detail=True) for m in macs}

    def block(mine: list[dict[str, Any]], counted: bool) -> dict[str, Any]:
        head: dict[str, Any] = {"numMacs": len(mine)} if counted else {}
        return head | {"macs": {m["mac"]: _mac_entry(m, detail) for m in mine}}

    if values.get("vni") is not None:
        return block(macs, counted=True)
    # (FRR leaves the count out of the per-VNI blocks of `vni all vtep V`)
    counted = "vtep" not in values
    return {str(vni): block(mine, counted) for vni, mine in sorted(_per_vni(macs).items())}


def _arp_entry(n: dict[str, Any], detail: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if detail:
        entry |= {"uptime": _uptime(n.get("uptime_s")), "ip": n["ip"]}
    entry |= {"type": n["type"], "state": "active", "mac": n["mac"]}
    if n["type"] == "remote":
        entry["remoteVtep"] = n["vtep"] or ""
    return entry | _sequences(n)


def evpn_arps(neighs: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """`show evpn arp-cache vni N|all [detail] [ip IP] [vtep V] json`."""
    detail = bool(values.get("detail"))
    if "ip" in values:
        return _arp_entry(neighs[0], detail=True) if neighs else {}

    def block(mine: list[dict[str, Any]], counted: bool) -> dict[str, Any]:
        head: dict[str, Any] = {"numArpNd": len(mine)} if counted else {}
        return head | {n["ip"]: _arp_entry(n, detail) for n in mine}

    counted = "vtep" not in values
    if values.get("vni") is not None:
        return block(neighs, counted)
    return {str(vni): block(mine, counted) for vni, mine in sorted(_per_vni(neighs).items())}


def evpn_rmacs(rows: list[dict[str, Any]], next_hops: bool, wanted: int | None) -> dict[str, Any]:
    """`show evpn rmac vni N|all json` and `show evpn next-hops vni N|all json`."""

    def block(mine: list[dict[str, Any]]) -> dict[str, Any]:
        if next_hops:
            out: dict[str, Any] = {"numNextHops": len(mine)}
            for r in mine:
                out[r["vtep"]] = {"nexthopIp": r["vtep"], "routerMac": r["router_mac"]}
            return out
        out = {"numRmacs": len({r["router_mac"] for r in mine})}
        for r in mine:
            out[r["router_mac"]] = {"routerMac": r["router_mac"], "vtepIp": r["vtep"]}
        return out

    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["l3vni"], []).append(r)
    if wanted is not None:
        return block(groups[wanted]) if wanted in groups else {}
    return {str(vni): block(mine) for vni, mine in sorted(groups.items())}
