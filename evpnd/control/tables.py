"""What evpnctl prints: evpnd's own tables, and FRR's layouts for the vtysh commands."""

from __future__ import annotations

import json
import time
from typing import Any

from evpnd.control.frr import communities_text


def printable(text: object) -> str:
    """What a peer sent (its hostname, a shutdown message) as it may reach a terminal: control
    characters, escape sequences among them, shown as `\\xNN` instead of being obeyed."""
    return "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
        for c in str(text)
    )


def table(rows: list[list[str]], headers: list[str]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _up_down(peer: dict[str, Any]) -> str:
    """FRR's Up/Down: time since the session came up, or since it went down."""
    if peer["uptime_s"] is not None:
        return _uptime(peer["uptime_s"])
    if peer.get("last_down") is None:
        return "never"
    return _uptime(peer.get("state_for_s"))


def _last_error(peer: dict[str, Any]) -> str:
    """The first reason the last session ended, then the latest attempt's failure."""
    down = peer.get("last_down")
    words = []
    if down is not None:
        words.append(down["reason"])
    if peer["last_error"] and peer["state"] != "Established":
        if not words or peer["last_error"] != words[0]:
            words.append(f"now: {peer['last_error']}")
    return "; ".join(words)


def show_peers(peers: list[dict[str, Any]]) -> str:
    rows = [
        [
            p["address"],
            str(p["remote_as"] or "*"),
            p["state"],
            _up_down(p),
            str(p["routes_received"]),
            str(p["routes_sent"]),
            str(p.get("flaps", 0)),
            p["hostname"] or "",
            p.get("description") or "",
            _last_error(p),
        ]
        for p in peers
    ]
    headers = ["Neighbor", "AS", "State", "Up/Down", "PfxRcd", "PfxSnt", "Flaps", "Hostname"]
    return table(rows, [*headers, "Desc", "Last down / error"])


def show_routes(routes: list[dict[str, Any]]) -> str:
    if routes and "best_reason" in routes[0]:
        return show_routes_detail(routes)
    rows = []
    for r in routes:
        flags = (">" if r["best"] else " ") + ("S" if r["stale"] else "")
        rows.append(
            [
                flags,
                r["rd"],
                r["text"],
                r["nexthop"] or "",
                "/".join(str(label) for label in r.get("labels") or []),
                "" if r.get("local_pref") is None else str(r["local_pref"]),
                r.get("as_path") or "",
                r["source"],
                communities_text(r),
            ]
        )
    headers = ["", "RD", "Route", "Next hop", "Label", "LocPrf", "Path", "From"]
    out = table(rows, [*headers, "Extended communities"])
    return out + f"\n\n{len(routes)} paths; > best, S stale"


def show_routes_detail(routes: list[dict[str, Any]]) -> str:
    """One block per path, as FRR's `detail`: attributes, and why the best path is best."""
    blocks = []
    for r in routes:
        status = "best" if r["best"] else "not best"
        if r["best"] and r.get("best_reason"):
            status += f" ({r['best_reason']})"
        if r["stale"]:
            status += ", stale"
        lines = [
            f"Route [{r['type']}] {r['text']}  RD {r['rd']}",
            f"  from {r['source']}, next hop {r['nexthop'] or '-'}, {status}"
            f" (1 of {r.get('paths', 1)} paths)",
            f"  AS path: {r.get('as_path') or '(empty)'}, local preference "
            f"{r.get('local_pref') if r.get('local_pref') is not None else '-'}",
            f"  labels: {'/'.join(str(x) for x in r.get('labels') or []) or '-'}"
            + (f", originator {r['originator_id']}" if r.get("originator_id") else ""),
            f"  extended communities: {communities_text(r) or '-'}",
        ]
        if r.get("imported_by"):
            lines.append("  imported by VNI " + ", ".join(str(v) for v in r["imported_by"]))
        if r.get("received_ago_s") is not None:
            lines.append(f"  last update: {_uptime(r['received_ago_s'])} ago")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + f"\n\n{len(routes)} paths"


def show_mac_table(macs: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(m["vni"]),
            m["mac"],
            m["type"],
            (m.get("port") or "") if m["type"] == "local" else (m["vtep"] or ""),
            str(m["seq"]),
            ",".join(f for f in ("sticky", "frozen") if m[f]),
        ]
        for m in macs
    ]
    return table(rows, ["VNI", "MAC", "Type", "Port/VTEP", "Seq", "Flags"])


def show_vni_table(vnis: list[dict[str, Any]], l3vnis: list[dict[str, Any]] | None = None) -> str:
    rows = [
        [
            str(v["vni"]),
            "L2",
            v["vxlan"] or "",
            v["bridge"] or "",
            v["vtep"],
            v["rd"],
            " ".join(v.get("import_rts") or []),
            " ".join(v["export_rts"]),
            str(len(v["remote_vteps"])),
            str(v["local_macs"]),
            f"{v.get('mtu') or ''}/{v.get('inner_mtu') or '-'}",
            "; ".join([*v["problems"], *filter(None, [v.get("mtu_problem")])]),
        ]
        for v in vnis
    ]
    for v in l3vnis or []:
        rows.append(
            [
                str(v["vni"]),
                "L3",
                v.get("vxlan") or "",
                v["bridge"] or "",
                "",
                v["rd"] or "",
                " ".join(v.get("import_rts") or []),
                " ".join(v["export_rts"]),
                str(len(v.get("remote_vteps") or [])),
                "",
                "",
                "" if v["state"] == "up" else v["state"],
            ]
        )
    headers = ["VNI", "Type", "VxLAN", "Bridge", "VTEP", "RD", "Import RTs", "Export RTs"]
    return table(rows, [*headers, "Remote VTEPs", "Local MACs", "MTU/path", "Problems"])


def show_l3vni_table(l3vnis: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(v["vni"]),
            v["vrf"],
            v["state"],
            v["bridge"] or "",
            v["router_mac"] or "",
            str(v["table"] or ""),
            v["rd"] or "",
            " ".join(v["export_rts"]),
            ",".join(str(n) for n in v["l2vnis"]),
            str(len(v["advertised"])),
            str(v["routes_installed"]),
        ]
        for v in l3vnis
    ]
    headers = ["L3VNI", "VRF", "State", "Bridge", "Router MAC", "Table", "RD", "Export RTs"]
    return table(rows, [*headers, "L2VNIs", "Advertised", "Installed"])


def show_neigh_table(neighs: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(n["vni"]),
            n["ip"],
            n["mac"],
            n["type"],
            n["vtep"] or "",
            str(n["seq"]),
            "sticky" if n["sticky"] else "",
        ]
        for n in neighs
    ]
    return table(rows, ["VNI", "IP", "MAC", "Type", "VTEP", "Seq", "Flags"])


def show_kernel_table(result: dict[str, Any]) -> str:
    if not result["programming"]:
        return "kernel programming is off (evpn.program_kernel: false, or netlink failed)"
    wanted, kernel = result["wanted"], result["kernel"]
    head = (
        f"wanted: {wanted['fdb']} FDB, {wanted['flood']} flood, {wanted['neigh']} neighbour"
        f" entries, {wanted['routes']} routes; kernel: {kernel['fdb']} FDB, {kernel['flood']}"
        f" flood, {kernel['neigh']} neighbour entries, {kernel['routes']} routes"
    )
    if not result["settled"]:
        head += "\n(peers have not all sent End-of-RIB: extra entries are kept until they do)"
    if result["in_sync"]:
        return head + "\nin sync"
    rows = [
        [
            d["kind"],
            str(d["vni"] or ""),
            d["device"] or "",
            d["entry"],
            d["wanted"] or "(none)",
            d["kernel"] or "(none)",
        ]
        for d in result["differences"]
    ]
    body = table(rows, ["Kind", "VNI", "Device", "Entry", "evpnd wants", "kernel has"])
    out = f"{head}\n{body}\n\n{len(rows)} differences"
    wish = result.get("wish_differences") or []
    if wish:
        # evpnd's own bookkeeping disagrees with the best paths: a bug to report
        out += "\nwish out of step with the best paths (please report):\n  " + "\n  ".join(wish)
    return out


def show_summary(result: dict[str, Any]) -> str:
    lines = [
        f"evpnd {result.get('version', '')}, AS {result['asn']}, router id {result['router_id']}",
        f"{result['routes']} routes, {result.get('peers_up', '?')}/{result['peers']} peers up,"
        f" {len(result['vnis'])} VNIs",
    ]
    if result.get("status"):
        lines.append(f"status: {result['status']}")
    return "\n".join(lines)


def show_rmac(rows: list[dict[str, Any]]) -> str:
    body = [[str(r["l3vni"]), r["vtep"], r["router_mac"], str(r["routes"])] for r in rows]
    return table(body, ["L3VNI", "Remote VTEP", "Router MAC", "Routes"])


def show_debug(result: dict[str, Any]) -> str:
    if result["everything"]:
        return "debugging everything (--log-level debug)"
    peers = ", ".join(result["peers"]) or "none"
    vnis = ", ".join(str(v) for v in result["vnis"]) or "none"
    return f"debugging peers: {peers}; VNIs: {vnis}"


# --- FRR's layouts (vtysh habits), from the same data ----------------------------------------


def frr_bgp_summary(peers: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    head = [
        f"BGP router identifier {summary['router_id']}, local AS number {summary['asn']}",
        f"RIB entries {summary['routes']}",
        "",
    ]
    return _frr_summary(head, peers, queues=False)


def _frr_summary(head: list[str], peers: list[dict[str, Any]], queues: bool) -> str:
    """FRR's summary table, one row per neighbour; `queues`: the per-family layout's TblVer,
    InQ and OutQ columns (always 0 here: evpnd has no table versions or input queue)."""
    rows = [
        [
            p["address"],
            "4",
            str(p["remote_as"] or "*"),
            str(p["messages_received"]),
            str(p["messages_sent"]),
            *(["0", "0", "0"] if queues else []),
            _up_down(p),
            str(p["routes_received"]) if p["state"] == "Established" else p["state"],
            str(p["routes_sent"]),
            p.get("description") or "N/A",
        ]
        for p in peers
    ]
    headers = ["Neighbor", "V", "AS", "MsgRcvd", "MsgSent"]
    headers += [*(["TblVer", "InQ", "OutQ"] if queues else []), "Up/Down", "State/PfxRcd"]
    body = table(rows, [*headers, "PfxSnt", "Desc"])
    return "\n".join(head) + body + f"\n\nTotal number of neighbors {len(peers)}"


def frr_neighbor(n: dict[str, Any]) -> str:
    lines = [
        f"BGP neighbor is {n['address']}, remote AS {n['remote_as'] or '*'}, local AS "
        f"{n['local_as']}, {'internal' if n['remote_as'] == n['local_as'] else 'external'} link",
    ]
    if n.get("hostname"):
        lines.append(f"  Hostname: {printable(n['hostname'])}")
    if n.get("description"):
        lines.append(f" Description: {printable(n['description'])}")
    lines.append(
        f"  BGP version 4, remote router ID {n['router_id'] or '0.0.0.0'}, local router ID "
        f"{n['local_router_id']}"
    )
    lines.append(
        f"  BGP state = {n['state']}"
        + (f", up for {_uptime(n['uptime_s'])}" if n["uptime_s"] is not None else "")
    )
    timers = n["timers"]
    lines.append(
        f"  Hold time is {timers['hold_time'] or timers['hold_time_configured']}, keepalive "
        f"interval is {timers['keepalive'] or '-'} seconds; configured hold time "
        f"{timers['hold_time_configured']}, connect retry {timers['connect_retry']:g}"
    )
    caps = n.get("capabilities")
    if caps is not None:
        lines.append("  Neighbor capabilities:")
        lines.append(
            f"    4 Byte AS: {'advertised and received' if caps['four_octet_as'] else 'no'}"
        )
        lines.append(f"    Address families: {', '.join(caps['families'])} (25/70: L2VPN EVPN)")
        lines.append(
            f"    Route refresh: {'yes' if caps['route_refresh'] else 'no'}"
            f"{', enhanced' if caps['enhanced_route_refresh'] else ''}"
        )
        lines.append(f"    Extended message: {'yes' if caps['extended_message'] else 'no'}")
        if caps["add_path_receive"] or caps["add_path_send"]:
            lines.append(
                f"    ADD-PATH: receive {', '.join(caps['add_path_receive']) or '-'}, send "
                f"{', '.join(caps['add_path_send']) or '-'}"
            )
        gr = caps.get("graceful_restart_peer")
        lines.append(
            "    Graceful restart: "
            + (f"peer restarts in {gr['restart_time']} s" if gr else "not offered by the peer")
            + (", N bit" if caps["graceful_notification"] else "")
        )
    counters = n["counters"]
    lines += [
        "  Message statistics:",
        f"    Received {counters['messages_received']} messages, {counters['updates_received']}"
        f" updates ({counters['bytes_received']} bytes in updates)",
        f"    Sent {counters['messages_sent']} messages, {counters['updates_sent']} updates",
        f"    Routes: {counters['routes_announced']} announced, {counters['routes_withdrawn']}"
        f" withdrawn, {n['routes_received']} held; {n['routes_sent']} sent",
    ]
    if counters["routes_refused"]:
        refused = ", ".join(f"{k} {v}" for k, v in counters["routes_refused"].items())
        lines.append(f"    Refused: {refused}")
    if counters["update_errors"]:
        lines.append(f"    UPDATE errors kept the session: {counters['update_errors']}")
    lines.append(f"  Connections established {n['sessions_established']}; dropped {n['flaps']}")
    down = n.get("last_down")
    if down is not None:
        lines.append(
            f"  Last reset {_uptime(down['ago_s'])} ago, due to {printable(down['reason'])}"
            f" (it had been up {_uptime(down['uptime_s'])})"
        )
    for key, title in (("notification_sent", "sent"), ("notification_received", "received")):
        note = n.get(key)
        if note:
            ago = _uptime(note["ago_s"])
            lines.append(f"  Last NOTIFICATION {title} {ago} ago: {printable(note['text'])}")
    if n["last_error"] and n["state"] != "Established":
        lines.append(f"  Last connection attempt: {printable(n['last_error'])}")
    if n.get("session"):
        lines.append(f"  Local host: {n['session']['local']}")
        lines.append(f"  Foreign host: {n['session']['remote']}")
    extras = []
    if n["md5"]:
        extras.append("TCP MD5 password set")
    if n["route_reflector_client"]:
        extras.append("route reflector client")
    if n["max_routes"]:
        extras.append(f"maximum routes {n['max_routes']}")
    if n.get("stale_routes"):
        extras.append(f"{n['stale_routes']} stale routes kept (graceful restart)")
    if extras:
        lines.append("  " + "; ".join(extras))
    return "\n".join(lines)


EVPN_PREFIX_FORMS = (
    "EVPN type-1 prefix: [1]:[EthTag]:[ESI]:[IPlen]:[VTEP-IP]:[Frag-id]",
    "EVPN type-2 prefix: [2]:[EthTag]:[MAClen]:[MAC]:[IPlen]:[IP]",
    "EVPN type-3 prefix: [3]:[EthTag]:[IPlen]:[OrigIP]",
    "EVPN type-4 prefix: [4]:[ESI]:[IPlen]:[OrigIP]",
    "EVPN type-5 prefix: [5]:[EthTag]:[IPlen]:[IP]",
)


def _path_column(r: dict[str, Any]) -> str:
    """FRR's Path column: the AS path, then the origin's code (i IGP, e EGP, ? incomplete)."""
    code = {1: "e", 2: "?"}.get(r.get("origin") or 0, "i")
    return f"{r['as_path']} {code}" if r.get("as_path") else code


def _status_line(r: dict[str, Any]) -> str:
    status = "*" + (">" if r["best"] else " ") + ("i" if r["source"] != "local" else " ")
    return "S" + status[1:] if r["stale"] else status


def frr_evpn_table(
    routes: list[dict[str, Any]],
    summary: dict[str, Any],
    by_rd: bool = True,
    footer: str | None = None,
) -> str:
    """`show bgp l2vpn evpn [route]`: paths grouped by route distinguisher (a VNI's table:
    not grouped), FRR's three-line form."""
    if routes and "best_reason" in routes[0]:
        return frr_evpn_detail(routes)
    lines = [
        f"BGP table version is 0, local router ID is {summary['router_id']}",
        "Status codes: s suppressed, d damped, h history, * valid, > best, i - internal",
        "Origin codes: i - IGP, e - EGP, ? - incomplete",
        *EVPN_PREFIX_FORMS,
        "",
        f"   {'Network':<16} {'Next Hop':<19} {'Metric':>6} {'LocPrf':>6} {'Weight':>6} Path",
    ]
    rd = None
    for r in routes:
        if by_rd and r["rd"] != rd:
            rd = r["rd"]
            lines.append(f"Route Distinguisher: {rd}")
        nexthop = r["nexthop"] or "0.0.0.0"
        locprf = "" if r.get("local_pref") is None else str(r["local_pref"])
        metric = "" if r.get("med") is None else str(r["med"])
        weight = "32768" if r["source"] == "local" else "0"
        path = _path_column(r)
        lines.append(f"{_status_line(r)}{r['text']}")
        lines.append(f"{'':<20}{nexthop:<19} {metric:>6} {locprf:>6} {weight:>6} {path}")
        lines.append(f"{'':<20}{communities_text(r)}")
    lines.append("")
    prefixes = len({(r["rd"] if by_rd else "", r["text"]) for r in routes})
    lines.append(footer or f"Displayed {prefixes} prefixes ({len(routes)} paths)")
    return "\n".join(lines)


def frr_evpn_detail(routes: list[dict[str, Any]], rd_in_title: bool = True) -> str:
    """FRR's detail form (`route detail`, `route rd RD`, `route vni N mac M`): a block per
    prefix, then each of its paths."""
    lines = [*(f for f in EVPN_PREFIX_FORMS), ""]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in routes:
        groups.setdefault((r["rd"] if rd_in_title else "", r["text"]), []).append(r)
    for (rd, text), paths in groups.items():
        best = next((n for n, p in enumerate(paths, 1) if p["best"]), None)
        lines += [
            f"BGP routing table entry for {rd + ':' if rd else ''}{text}",
            f"Paths: ({len(paths)} available" + (f", best #{best})" if best else ", no best path)"),
        ]
        for r in paths:
            vni = f" VNI {r['vni']}" if r.get("vni") is not None and r["type"] in (2, 5) else ""
            lines.append(f"  Route {text}{vni}")
            if r.get("imported_by") and r["source"] != "local":
                lines.append("  Imported into VNI " + ", ".join(str(v) for v in r["imported_by"]))
            lines.append(f"  {r.get('as_path') or 'Local'}")
            source = r["source"]
            where = "0.0.0.0" if source == "local" else f"{source} ({source})"
            lines.append(f"    {r['nexthop'] or '0.0.0.0'} from {where}")
            origin = {1: "EGP", 2: "incomplete"}.get(r.get("origin") or 0, "IGP")
            words = [f"Origin {origin}"]
            if r.get("local_pref") is not None:
                words.append(f"localpref {r['local_pref']}")
            if source == "local":
                words.append("weight 32768")
            words.append("valid")
            words.append("sourced, local" if source == "local" else "internal")
            if r["best"]:
                words.append(f"best ({r.get('best_reason') or 'only path'})")
            if r["stale"]:
                words.append("stale")
            lines.append("      " + ", ".join(words))
            lines.append(f"      Extended Community: {communities_text(r)}")
            if r.get("received_ago_s") is not None:
                at = time.time() - r["received_ago_s"]
                lines.append(f"      Last update: {time.ctime(at)}")
    lines += ["", f"Displayed {len(groups)} prefixes ({len(routes)} paths)"]
    return "\n".join(lines)


def frr_evpn_summary(peers: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """`show bgp l2vpn evpn summary`: FRR's columns for one address family."""
    head = [
        f"BGP router identifier {summary['router_id']}, local AS number {summary['asn']} vrf-id 0",
        f"RIB entries {summary['routes']}",
        f"Peers {len(peers)}",
        "",
    ]
    return _frr_summary(head, peers, queues=True)


def frr_peer_routes(result: dict[str, Any], summary: dict[str, Any]) -> str:
    """`show bgp l2vpn evpn neighbors X routes | advertised-routes`."""
    routes = result["routes"]
    if result["direction"] == "received":
        footer = f"Displayed {len({(r['rd'], r['text']) for r in routes})} out of"
        return frr_evpn_table(routes, summary, footer=f"{footer} {result['total']} total prefixes")
    lines = [
        f"BGP table version is 0, local router ID is {summary['router_id']}",
        f"Default local pref 100, local AS {summary['asn']}",
        "Status codes: s suppressed, d damped, h history, * valid, > best, i - internal",
        "Origin codes: i - IGP, e - EGP, ? - incomplete",
        "",
        f"   {'Network':<16} {'Next Hop':<19} {'Metric':>6} {'LocPrf':>6} {'Weight':>6} Path",
    ]
    rd = None
    for r in routes:
        if r["rd"] != rd:
            rd = r["rd"]
            lines.append(f"Route Distinguisher: {rd}")
        locprf = "" if r.get("local_pref") is None else str(r["local_pref"])
        metric = "" if r.get("med") is None else str(r["med"])
        weight = "32768" if r["source"] == "local" else "0"
        path = _path_column(r)
        lines.append(f"*> {r['text']}")
        lines.append(
            f"{'':<20}{r['nexthop'] or '0.0.0.0':<19} {metric:>6} {locprf:>6} {weight:>6} {path}"
        )
        lines.append(f"{'':<20}{communities_text(r)}")
    lines += ["", f"Total number of prefixes {len(routes)}"]
    return "\n".join(lines)


def frr_bgp_vni(
    vnis: list[dict[str, Any]], l3vnis: list[dict[str, Any]], wanted: int | None
) -> str:
    """`show bgp l2vpn evpn vni [N]`: the VNIs as BGP has them."""

    def rts(v: dict[str, Any], key: str) -> list[str]:
        return [rt for rt in v.get(key) or [] if rt != "auto"] or ["auto (AS:VNI; imports *:VNI)"]

    if wanted is not None:
        if not vnis:
            return f"% VNI {wanted} does not exist"
        v = vnis[0]
        return "\n".join(
            [
                f"VNI: {v['vni']}" + (" (known to the kernel)" if v["vxlan"] else ""),
                "  Type: L2",
                "  Tenant-Vrf: default",
                f"  RD: {v['rd']}",
                f"  Originator IP: {v['vtep']}",
                "  Mcast group: 0.0.0.0",
                "  Advertise-gw-macip : Disabled",
                "  Advertise-svi-macip : Disabled",
                f"  SVI interface : {v.get('bridge') or '-'}",
                "  Import Route Target:",
                *[f"    {rt}" for rt in rts(v, "import_rts")],
                "  Export Route Target:",
                *[f"    {rt}" for rt in rts(v, "export_rts")],
            ]
        )
    head = [
        f"Number of L2 VNIs: {len(vnis)}",
        f"Number of L3 VNIs: {len(l3vnis)}",
        "Flags: * - Kernel",
    ]
    rows = [
        [
            "*" if v["vxlan"] else "",
            str(v["vni"]),
            "L2",
            v["rd"],
            " ".join(rts(v, "import_rts")),
            " ".join(rts(v, "export_rts")),
            "default",
        ]
        for v in vnis
    ]
    rows += [
        [
            "*" if v["state"] == "up" else "",
            str(v["vni"]),
            "L3",
            v["rd"] or "",
            " ".join(rts(v, "import_rts")),
            " ".join(rts(v, "export_rts")),
            v["vrf"],
        ]
        for v in l3vnis
    ]
    body = table(rows, ["", "VNI", "Type", "RD", "Import RT", "Export RT", "Tenant VRF"])
    return "\n".join(head) + "\n" + body


def running_config(config: dict[str, Any]) -> str:
    """`show running-config`: evpnd's configuration as YAML, in the file's keys."""
    import yaml

    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=100)
    return (
        "# evpnd's running configuration (YAML, the keys of evpnd.yaml; passwords masked)\n"
        + text.rstrip()
    )


def show_version(v: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"evpnd {v['version']} ({printable(v['hostname'])}) on {v['system']},"
            f" Python {v['python']}",
            f"router id {v['router_id']}, up {_uptime(v['uptime_s'])},"
            f" configuration {printable(v['config_file'])}",
        ]
    )


def frr_evpn_vni(
    vnis: list[dict[str, Any]], l3vnis: list[dict[str, Any]], wanted: int | None
) -> str:
    if wanted is not None:
        if not vnis:
            return f"% VNI {wanted} does not exist"
        v = vnis[0]
        return "\n".join(
            [
                f"VNI: {v['vni']}",
                " Type: L2",
                f" VxLAN interface: {v['vxlan'] or '-'}",
                f" Bridge: {v['bridge'] or '-'}",
                f" Local VTEP IP: {v['vtep']}",
                f" RD: {v['rd']}",
                f" Import RTs: {' '.join(v.get('import_rts') or [])}",
                f" Export RTs: {' '.join(v['export_rts'])}",
                " Remote VTEPs for this VNI:",
                *[f"  {vtep} flood: HER" for vtep in v["remote_vteps"]],
                f" Number of MACs (local and remote) known for this VNI: {v.get('macs', 0)}",
                f" Number of ARPs (IPv4 and IPv6, local and remote) known for this VNI:"
                f" {v.get('arps', 0)}",
                f" MTU: {v.get('mtu') or '-'}, inner path MTU {v.get('inner_mtu') or '-'}",
                *[f" Problem: {p}" for p in v["problems"]],
            ]
        )
    rows = [
        [
            str(v["vni"]),
            "L2",
            v["vxlan"] or "",
            str(v.get("macs", 0)),
            str(v.get("arps", 0)),
            str(len(v["remote_vteps"])),
            "default",
        ]
        for v in vnis
    ]
    rows += [
        [
            str(v["vni"]),
            "L3",
            v.get("vxlan") or "",
            "",
            "",
            str(len(v.get("remote_vteps") or [])),
            v["vrf"],
        ]
        for v in l3vnis
    ]
    headers = ["VNI", "Type", "VxLAN IF", "# MACs", "# ARPs", "# Remote VTEPs", "Tenant VRF"]
    return table(rows, headers)


def _grouped(items: list[dict[str, Any]], key: str) -> list[list[dict[str, Any]]]:
    """Items by the value of `key`, in its order, in one pass (a million MACs, many VNIs)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(item[key], []).append(item)
    return [groups[k] for k in sorted(groups)]


def _seqs(item: dict[str, Any]) -> str:
    """FRR's "Seq #'s": the local sequence number / the remote one."""
    local = item["type"] == "local"
    return f"{item['seq'] if local else 0}/{0 if local else item['seq']}"


def _mac_detail(m: dict[str, Any]) -> list[str]:
    lines = [f"MAC: {m['mac']}"]
    if m["type"] == "local":
        lines.append(f" Intf: {m.get('port') or '-'}({m.get('ifindex') or 0})")
    else:
        lines.append(f" Remote VTEP: {m['vtep'] or '-'}")
    flags = [f for f in ("sticky", "frozen") if m.get(f)]
    if flags:
        lines.append(" Flags: " + ", ".join(flags))
    local = m["type"] == "local"
    lines += [
        f" Local Seq: {m['seq'] if local else 0} Remote Seq: {0 if local else m['seq']}",
        f" Uptime: {_uptime(m.get('uptime_s'))}",
        " Neighbors:",
        *[f"    {ip} Active" for ip in m.get("ips") or []],
        "",
    ]
    return lines


def frr_evpn_mac(macs: list[dict[str, Any]], values: dict[str, Any] | None = None) -> str:
    """`show evpn mac vni N|all [detail] [mac M] [vtep V]`: a block per VNI, headed as FRR
    heads it."""
    values = values or {}
    detail = bool(values.get("detail"))
    if "mac" in values:
        if not macs:
            return f"% MAC {values['mac']} does not exist in this VNI"
        return "\n".join(line for m in macs for line in _mac_detail(m)).rstrip()
    one = values.get("vni") is not None
    out = []
    for mine in _grouped(macs, "vni"):
        vni = mine[0]["vni"]
        if "vtep" in values:
            head = f"VNI {vni}\n"
        elif one:
            head = f"Number of MACs (local and remote) known for this VNI: {len(mine)}"
        else:
            head = f"VNI {vni} #MACs (local and remote) {len(mine)}\n"
        if detail:
            body = "\n".join(line for m in mine for line in _mac_detail(m)).rstrip()
        else:
            rows = [
                [
                    m["mac"],
                    m["type"],
                    ("X" if m["frozen"] else "") + ("S" if m["sticky"] else ""),
                    (m.get("port") or "") if m["type"] == "local" else (m["vtep"] or ""),
                    _seqs(m),
                ]
                for m in mine
            ]
            body = table(rows, ["MAC", "Type", "Flags", "Intf/Remote ES/VTEP", "Seq #'s"])
        out.append(f"{head}\n{body}")
    if out:
        return "\n\n".join(out)
    return "no MACs" + (f" of VTEP {values['vtep']}" if "vtep" in values else "")


def _arp_detail(n: dict[str, Any]) -> list[str]:
    local = n["type"] == "local"
    lines = [
        f"IP: {n['ip']}",
        f" Type: {n['type']}",
        " State: active",
        f" Uptime: {_uptime(n.get('uptime_s'))}",
        f" MAC: {n['mac']}",
    ]
    if not local:
        lines.append(f" Remote VTEP: {n['vtep'] or '-'}")
    lines.append(f" Local Seq: {n['seq'] if local else 0} Remote Seq: {0 if local else n['seq']}")
    return lines


def frr_evpn_arp(neighs: list[dict[str, Any]], values: dict[str, Any] | None = None) -> str:
    """`show evpn arp-cache vni N|all [detail] [ip IP] [vtep V]`."""
    values = values or {}
    if "ip" in values:
        if not neighs:
            return f"% Neighbor {values['ip']} does not exist in this VNI"
        return "\n".join(line for n in neighs for line in _arp_detail(n))
    one = values.get("vni") is not None
    out = []
    for mine in _grouped(neighs, "vni"):
        vni = mine[0]["vni"]
        if "vtep" in values:
            head = f"VNI {vni}\n"
        elif one:
            head = f"Number of ARPs (local and remote) known for this VNI: {len(mine)}"
        else:
            head = f"VNI {vni} #ARP (IPv4 and IPv6, local and remote) {len(mine)}\n"
        if values.get("detail"):
            body = "\n".join(line for n in mine for line in _arp_detail(n))
        else:
            rows = [
                [
                    n["ip"],
                    n["type"],
                    "S" if n["sticky"] else "",
                    "active",
                    n["mac"],
                    n["vtep"] if n["type"] == "remote" else "",
                    _seqs(n),
                ]
                for n in mine
            ]
            headers = ["Neighbor", "Type", "Flags", "State", "MAC", "Remote ES/VTEP", "Seq #'s"]
            body = table(rows, headers)
        out.append(f"{head}\n{body}")
    if out:
        return "\n\n".join(out)
    return "no MAC/IP bindings" + (f" of VTEP {values['vtep']}" if "vtep" in values else "")


def frr_evpn_rmac(rows: list[dict[str, Any]], next_hops: bool) -> str:
    out = []
    for mine in _grouped(rows, "l3vni"):
        l3vni = mine[0]["l3vni"]
        if next_hops:
            body = table([[r["vtep"], r["router_mac"]] for r in mine], ["IP", "RMAC"])
            out.append(f"VNI {l3vni} #Next-Hops {len(mine)}\n\n{body}")
        else:
            body = table([[r["router_mac"], r["vtep"]] for r in mine], ["RMAC", "Remote VTEP"])
            out.append(f"VNI {l3vni} #RMACs {len(mine)}\n\n{body}")
    return "\n\n".join(out) or "no Router's MACs (no L3VNI, or no remote host routes)"


def format_event(event: dict[str, Any]) -> str:
    """One line per event, for people: time, what, then the fields."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", 0)))
    rest = {k: v for k, v in event.items() if k not in ("time", "event", "action")}
    words = [stamp, event.get("event", "?")]
    if "action" in event:
        words.append(str(event["action"]))
    words += [f"{k}={v}" for k, v in rest.items() if v is not None and v != []]
    return " ".join(words)


def show_findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "no problem found"
    lines = []
    for n, f in enumerate(findings, 1):
        lines.append(f"{n}. [{f['check']}] {printable(f['what'])}")
        for key, value in f["evidence"].items():
            if value not in (None, [], {}):
                lines.append(f"     {key}: {printable(json.dumps(value))}")
        lines.append(f"     fix: {printable(f['fix'])}")
    return "\n".join(lines)
