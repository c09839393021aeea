"""`evpnctl doctor`: the failure modes of an EVPN fabric, walked in order, each finding with
what is wrong, the evidence and the command that fixes it. Read from what evpnd already
knows — sessions, the RIB, the kernel as the reconciler knows it, the underlay watch — so
it answers at once and changes nothing.

The order follows a packet's dependencies: a session, then EVPN routes over it, then kernel
entries from them, then an underlay that can carry the traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from evpnd.bgp.events import State
from evpnd.bgp.negotiation import EVPN_FAMILY
from evpnd.daemon.views import address_key, vni_of
from evpnd.evpn.identifiers import ip_to_text, is_address, mac_to_text
from evpnd.evpn.routes import INCLUSIVE_MULTICAST, InclusiveMulticastRoute
from evpnd.kernel.underlay import Way, links_behind
from evpnd.local.origination import Vni
from evpnd.rib.paths import LOCAL, Path

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon


def finding(check: str, what: str, evidence: dict[str, Any], fix: str) -> dict[str, Any]:
    return {"check": check, "what": what, "evidence": evidence, "fix": fix}


#: how long a probe of a peer's BGP port may take
PROBE_TIMEOUT = 1.0
#: the kernel's counters of segments dropped for their TCP MD5 signature (RFC 2385)
MD5_COUNTERS = ("TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure")


async def examine(daemon: Daemon, vni: int | None = None) -> dict[str, Any]:
    """Every finding, or those about one VNI (and the sessions every VNI needs). A session
    that is not Established gets its peer's BGP port probed (one TCP connection, closed at
    once), in parallel: at most a second."""
    down = [
        d for d in daemon.drivers.values() if not d.dynamic and d.state is not State.ESTABLISHED
    ]
    probes = await asyncio.gather(*(_probe(d.address, d.port, d.update_source) for d in down))
    return {
        "findings": findings(daemon, vni, dict(zip((d.address for d in down), probes, strict=True)))
    }


async def _probe(address: str, port: int, source: str | None) -> str:
    local = (source, 0) if source is not None and is_address(source) else None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, local_addr=local), PROBE_TIMEOUT
        )
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT:.0f} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    writer.close()
    return "accepts connections"


def md5_drops() -> dict[str, int]:
    """The kernel's MD5 drop counters in this network namespace (nonzero ones)."""
    try:
        lines = open("/proc/net/netstat").read().splitlines()  # noqa: SIM115
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return {k: int(table[k]) for k in MD5_COUNTERS if int(table.get(k, 0))}
    return {}


def findings(
    daemon: Daemon, vni: int | None = None, probes: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    out += _sessions(daemon, probes or {})
    out += _vnis(daemon, vni)
    out += _kernel(daemon, vni)
    out += _underlay(daemon, vni)
    return out


def _sessions(daemon: Daemon, probes: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    md5 = md5_drops()
    for address, driver in sorted(daemon.drivers.items()):
        if driver.dynamic:
            continue
        state = driver.state
        if state is State.ESTABLISHED:
            negotiated = driver.negotiated
            if negotiated is not None and EVPN_FAMILY not in negotiated.families:
                out.append(
                    finding(
                        "session",
                        f"{address} is up without the L2VPN EVPN address family",
                        {"families": sorted(negotiated.families)},
                        "activate it on the peer (FRR: address-family l2vpn evpn / neighbor "
                        f"{daemon.config.router_id} activate)",
                    )
                )
            continue
        error = driver.peer.last_error or ""
        evidence: dict[str, Any] = {"state": state.value, "last_error": error or None}
        if driver.last_down is not None:
            end = driver.last_down
            evidence |= {
                "last_down": end.reason,
                "sent": end.sent or None,
                "received": end.received or None,
            }
        probe = probes.get(address)
        if probe is not None:
            evidence["port_probe"] = f"{address} port {driver.port}: {probe}"
        if driver.password and md5:
            evidence["md5_drops"] = md5
        lowered = f"{error} {probe or ''}".lower()
        if driver.password and md5:
            fix = "the kernel drops segments for their MD5 signature: the passwords differ"
        elif "refused" in lowered:
            fix = f"nothing listens on {address} port {driver.port}: is the peer's BGP running?"
        elif "no answer" in lowered:
            fix = f"nothing answers from {address}: a firewall, or packets lost on the way"
        elif "no route" in lowered or "unreachable" in lowered:
            fix = f"the underlay has no way to {address}: ip route get {address}"
        elif "cannot assign" in lowered or "update_source" in lowered:
            fix = f"update_source {driver.update_source} is not an address of this host"
        elif "reset" in lowered and driver.password:
            fix = "connections are reset at once: the MD5 passwords likely differ"
        elif "hold timer" in lowered:
            fix = "KEEPALIVEs do not arrive in time: a lossy or congested path, or a stuck peer"
        else:
            fix = f"see the peer's side, and `evpnctl show peers`; configured: {address}"
        out.append(finding("session", f"{address} is not Established", evidence, fix))
    return out


def _vnis(daemon: Daemon, only: int | None) -> list[dict[str, Any]]:
    out = []
    if not daemon.config.evpn.program_kernel:
        out.append(
            finding(
                "kernel",
                "kernel programming is off",
                {"program_kernel": False},
                "evpn: {program_kernel: true} (off is for a route reflector that is no VTEP)",
            )
        )
    # Type 3 routes by the VNI they carry, whichever RTs: who has which VNI
    flood_by_vni: dict[int, list[Any]] = {}
    for path in daemon.rib.best_of_type(INCLUSIVE_MULTICAST):
        if not path.source.is_local:
            flood_by_vni.setdefault(_vni_of(path), []).append(path)
    # a VNI whose VTEPs are unreachable: the underlay finding names that cause
    behind_unreachable = {
        _vni_of(p) for p in daemon.rib.ineligible() if isinstance(p.route, InclusiveMulticastRoute)
    }
    ports = daemon.kernel_ports
    for vni in daemon.vnis:
        if only is not None and vni.vni != only:
            continue
        port = ports.get(vni.vni)
        if port is None:
            out.append(
                finding(
                    "vni",
                    f"VNI {vni.vni} is configured but has no vxlan device that is up in a bridge",
                    {"vni": vni.vni},
                    f"ip link add vxlan{vni.vni} type vxlan id {vni.vni} local {vni.vtep_ip} "
                    f"dstport 4789 nolearning; ip link set vxlan{vni.vni} master br{vni.vni} up",
                )
            )
            continue
        for problem in port.problems:
            out.append(
                finding(
                    "vni",
                    f"VNI {vni.vni}: {problem}",
                    {"device": port.name},
                    _fix_port(port.name, problem),
                )
            )
        others = flood_by_vni.get(vni.vni, [])
        out += foreign_route_targets(vni, others)
        out += alone_in_fabric(
            vni.vni, bool(others), vni.vni in behind_unreachable, vni.vni in daemon.l3_of_l2
        )
    for frozen_vni, mac in sorted(daemon.local.duplicates.frozen):
        if only is None or frozen_vni == only:
            out.append(
                finding(
                    "mac",
                    f"MAC {mac_to_text(mac)} in VNI {frozen_vni} is frozen: it moved too often",
                    {"vni": frozen_vni, "mac": mac_to_text(mac)},
                    f"find the loop or the duplicate, then: evpnctl clear mac {frozen_vni} "
                    f"{mac_to_text(mac)}",
                )
            )
    # From the RIB's count of received paths per next hop, not a walk of every path: and a
    # route towards our own address is never a candidate (next-hop tracking: an address of
    # this host), so it would not be among the best paths.
    mine = {vni.vtep_ip for vni in daemon.vnis}
    ours = {n for n in daemon.rib.nexthops if ip_to_text(n) in mine}
    found = next(
        (
            (name, path)
            for name, table in (daemon.rib.adj_in.items() if ours else ())
            if name != LOCAL
            for path in table.values()
            if path.attributes.nexthop in ours
        ),
        None,
    )
    if found is not None:
        peer, path = found
        nexthop = path.attributes.nexthop_text
        out.append(
            finding(
                "vtep",
                f"{peer} announces routes with our VTEP address {nexthop}",
                {"peer": peer, "route": path.route.text},
                "two speakers have the same VTEP address: give each its own (evpn.vtep_ip)",
            )
        )
    return out


def foreign_route_targets(vni: Vni, flood: list[Path]) -> list[dict[str, Any]]:
    """Each remote VTEP whose Type 3 routes for this VNI (by their VNI, whichever RTs) carry
    no route target the VNI imports: its hosts are unreachable from here, and ours from
    there, though both have the VNI — each side must be told, not only the one whose
    configuration changed (one VTEP importing the others' routes hides nothing here)."""
    by_vtep: dict[str, list[Path]] = {}
    for path in flood:
        by_vtep.setdefault(_vtep_of(path), []).append(path)
    ours = [rt.value for rt in vni.import_rts] or [f"auto (*:{vni.vni})"]
    out = []
    for vtep, paths in sorted(by_vtep.items(), key=lambda item: address_key(item[0])):
        if any(vni.imports(p.attributes.route_targets) for p in paths):
            continue
        theirs = sorted({rt.value for p in paths for rt in p.attributes.route_targets})
        carried = f"route targets {', '.join(theirs)}" if theirs else "no route target"
        export = vni.import_rts[0].value if vni.import_rts else f"an RT ending :{vni.vni}"
        importing = (
            f"import {' or '.join(theirs)} here (evpn.vnis: [{{vni: {vni.vni}, import_rts: "
            f"[{theirs[0]}]}}]), or "
            if theirs
            else ""
        )
        out.append(
            finding(
                "vni",
                f"VNI {vni.vni}: VTEP {vtep} announces it with {carried}; this VTEP imports "
                f"{', '.join(ours)} for it",
                {"vtep": vtep, "vni": vni.vni, "theirs": theirs, "ours": ours},
                f"{importing}have {vtep} export {export} for VNI {vni.vni}",
            )
        )
    return out


def alone_in_fabric(
    vni: int, announced: bool, behind_unreachable: bool, routed: bool
) -> list[dict[str, Any]]:
    """A VNI no other VTEP announces (no Type 3 route for it, whichever RTs): nothing to bridge
    with — unless its VTEPs are only unreachable (the underlay finding says so), or it is
    routed: in symmetric IRB (RFC 9135) a subnet may live on one VTEP alone, its hosts
    reaching the others' subnets through the L3VNI, as in `evpnd demo --irb`."""
    if announced or behind_unreachable or routed:
        return []
    return [
        finding(
            "vni",
            f"VNI {vni}: no other VTEP announces it (no Type 3 route)",
            {"vni": vni},
            "create the VNI on the other VTEPs, or check their sessions and RTs",
        )
    ]


def _vtep_of(path: Path) -> str:
    """The VTEP a Type 3 route is for: its PMSI tunnel's endpoint, else its next hop."""
    tunnel = path.attributes.pmsi_tunnel
    endpoint = tunnel.endpoint if tunnel is not None else None
    route = path.route
    originator = route.originator if isinstance(route, InclusiveMulticastRoute) else None
    return endpoint or path.attributes.nexthop_text or ip_to_text(originator or bytes(4))


def _kernel(daemon: Daemon, only: int | None) -> list[dict[str, Any]]:
    dataplane = daemon.dataplane
    if dataplane is None or only is not None:
        return []
    out = []
    report = dataplane.compare()
    if not report["in_sync"] and report["settled"]:
        rows = cast(list[Any], report["differences"])
        out.append(
            finding(
                "kernel",
                f"the kernel differs from what the routes call for ({len(rows)} entries)",
                {"first": rows[:5], "wish_differences": report["wish_differences"]},
                "evpnctl show kernel; the next pass repairs what it can (refusals are logged)",
            )
        )
    if dataplane.counters.netlink_errors:
        out.append(
            finding(
                "kernel",
                "the kernel refused some of evpnd's entries",
                {"refusals": dataplane.counters.netlink_errors},
                "journalctl -u evpnd | grep 'netlink refused' names each kind",
            )
        )
    return out


def _underlay(daemon: Daemon, only: int | None) -> list[dict[str, Any]]:
    watch = daemon.underlay
    out = unreachable_vteps(
        daemon.rib.unreachable,
        watch.ways,
        watch.last_device,
        watch.links_down,
        daemon.rib.nexthops,
    )
    for vni, problem in sorted(watch.mtu_problems.items()):
        if only is None or vni == only:
            out.append(
                finding(
                    "mtu",
                    f"VNI {vni}: frames larger than the underlay carries",
                    {"inner_mtu": watch.inner.get(vni)},
                    problem.partition(": ")[2],
                )
            )
    return out


#: what to do about a link, by why it carries nothing (kernel/underlay.py `link_state`)
_LINK_FIXES = {
    "down": "ip link set {link} up",
    "no carrier": "ip -d link show {link}; check the cable, or the other end of the link",
    "gone": "{link} no longer exists: create it again, or route the VTEPs another way",
}


def unreachable_vteps(
    unreachable: Iterable[bytes],
    ways: dict[bytes, Way],
    last_device: dict[bytes, str],
    links_down: dict[str, str],
    paths: Mapping[bytes, int],
) -> list[dict[str, Any]]:
    """A local link that carries nothing, named once with the VTEPs behind it (reached by it,
    or last reached by it before they became unreachable) — the cause, not one finding per
    VTEP; then each unreachable VTEP no down link explains."""
    out = []
    unreachable = frozenset(unreachable)
    behind, alone = links_behind(unreachable, ways, last_device, links_down)
    for link, vteps in sorted(behind.items()):
        state = links_down[link]
        texts = [ip_to_text(v) for v in vteps]
        out.append(
            finding(
                "underlay",
                f"link {link} is {state}, the way to VTEP{'' if len(texts) == 1 else 's'} "
                f"{', '.join(texts)}",
                {
                    "link": link,
                    "state": state,
                    "vteps": texts,
                    "unreachable": [ip_to_text(v) for v in vteps if v in unreachable],
                },
                _LINK_FIXES.get(state, "ip -d link show {link}").format(link=link),
            )
        )
    for vtep in alone:
        way = ways.get(vtep)
        text = ip_to_text(vtep)
        out.append(
            finding(
                "underlay",
                f"VTEP {text} is unreachable: routes towards it are not used",
                {"reason": way.reason if way else None, "paths": paths.get(vtep, 0)},
                f"ip route get {text}; a route to it (or resolve_via_default: true)",
            )
        )
    return out


def _vni_of(path: Any) -> int:
    """The VNI a Type 3 route is for: its PMSI tunnel's label, else its Ethernet tag."""
    return vni_of(path.route, path.attributes) or int(path.route.ethernet_tag)


def _fix_port(name: str, problem: str) -> str:
    if "learning" in problem:
        return f"bridge link set dev {name} learning off"
    if "neigh_suppress" in problem:
        return f"bridge link set dev {name} neigh_suppress on"
    return f"ip -d link show {name}"
