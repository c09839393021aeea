"""FRR 8.4 and evpnd peered in namespaces, a host behind each, asked the same vtysh commands
with `json`: evpnd's JSON must have FRR's keys (at every level, the keys that name data —
addresses, MACs, RDs, prefixes, VNIs — taken as one) with FRR's value types, so a script
written against vtysh reads evpnd too. Each side is asked about the other's routes (the MAC,
RD and VTEP that are remote to it), so both answer with the same kinds of paths."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.netns import LAB, Evpnd, Frr, lab, wait_for
from tests.test_dataplane import H1_MAC, H2_MAC, two_vteps, vtep_config
from tests.test_interop_frr import frr_config

pytestmark = [
    *LAB,
    pytest.mark.skipif(
        not os.path.exists("/usr/lib/frr/bgpd"),
        reason="FRR is not installed (scripts/test installs Debian's frr)",
    ),
]

UNDERLAY = "192.168.73"
EVPND, FRR = f"{UNDERLAY}.1", f"{UNDERLAY}.2"

#: FRR's keys evpnd leaves out, and why: numbers evpnd does not have (a table version, memory,
#: queue depths of FRR's own I/O threads, per-type message counters), FRR's options evpnd has
#: no equivalent of, or facts evpnd's answers do not carry. Matched against "a.b.<data>.c".
NOT_IN_EVPND = {
    # BGP table versions: evpnd's RIB keeps none
    "*tableVersion": "no table versions",
    "*bgpTableVersion": "no table versions",
    "*].version": "no table versions",  # (a path's, in a list)
    "ribMemory": "no memory accounting",
    "peerMemory": "no memory accounting",
    "*.ribMemory": "no memory accounting",
    "*.peerMemory": "no memory accounting",
    # a prefix's `advertisedTo`: which peers have it is each update group's, not the view's
    "*.advertisedTo*": "the route views do not say which peers have a route",
    # show bgp neighbors: FRR's internals and options evpnd does not have
    "<data>.localRole": "no BGP roles (RFC 9234)",
    "<data>.remoteRole": "no BGP roles (RFC 9234)",
    "<data>.bgpTimerLastRead": "not kept",
    "<data>.bgpTimerLastWrite": "not kept",
    "<data>.extendedOptionalParametersLength": "not kept",
    "<data>.bgpTimerConfiguredConditionalAdvertisementsSec": "no conditional advertisement",
    "<data>.neighborCapabilities.longLivedGracefulRestart": "no LLGR",
    "<data>.neighborCapabilities.hostName*": "the hostname capability is not kept apart",
    "<data>.neighborCapabilities.addressFamiliesByPeer*": "per-family GR state not kept",
    "<data>.neighborCapabilities.addPath*": "FRR advertises ADD-PATH receive; evpnd does not",
    "<data>.gracefulRestartInfo*": "graceful restart state per family not kept",
    "<data>.messageStats.depth*": "no queues of that kind",
    "<data>.messageStats.opens*": "per-type message counts not kept",
    "<data>.messageStats.notifications*": "per-type message counts not kept",
    "<data>.messageStats.keepalives*": "per-type message counts not kept",
    "<data>.messageStats.routeRefresh*": "per-type message counts not kept",
    "<data>.messageStats.capability*": "per-type message counts not kept",
    "<data>.minBtwnAdvertisementRunsTimerMsecs": "no MRAI timer",
    "<data>.addressFamilyInfo.l2VpnEvpn.*": "per-family policy state not kept (but counters)",
    "<data>.lastResetCode": "not kept",
    # FRR names a reset from its first connection attempts on; evpnd once a session ended
    "<data>.lastResetDueTo": "only after a session ended",
    "<data>.lastResetTimerMsecs": "only after a session ended",
    "<data>.internalBgpNbrMaxHopsAway": "not kept",
    "<data>.nexthop*": "BGP next hops of the session not kept",
    "<data>.bgpConnection": "not kept",
    "<data>.readThread": "FRR's threads",
    "<data>.writeThread": "FRR's threads",
}

#: evpnd's keys FRR had no reason to show in this lab (set only for what this lab lacks)
ONLY_SOMETIMES = {
    "*.addressFamilyInfo.l2VpnEvpn.acceptedPrefixCounter",
    "*.addressFamilyInfo.l2VpnEvpn.sentPrefixCounter",
    "*.lastResetTimerMsecs",
    "*.lastResetDueTo",
    "*.bgpInUpdateElapsedTimeMsecs",
}

#: (vtysh words, evpnctl words); {peer}, {mac}, {ip}, {rd}: the other side's
COMMANDS = [
    "show bgp summary",
    "show bgp l2vpn evpn summary",
    "show bgp neighbors {peer}",
    "show bgp l2vpn evpn",
    "show bgp l2vpn evpn route",
    "show bgp l2vpn evpn route detail",
    "show bgp l2vpn evpn route type macip",
    "show bgp l2vpn evpn route type multicast",
    "show bgp l2vpn evpn route vni 100",
    "show bgp l2vpn evpn route vni 100 mac {mac}",
    "show bgp l2vpn evpn route rd {rd}",
    "show bgp l2vpn evpn route rd {rd} mac {mac}",
    "show bgp l2vpn evpn vni",
    "show bgp l2vpn evpn vni 100",
    "show bgp l2vpn evpn neighbors {peer} routes",
    "show bgp l2vpn evpn neighbors {peer} advertised-routes",
    "show evpn vni",
    "show evpn vni 100",
    "show evpn mac vni 100",
    "show evpn mac vni all",
    "show evpn mac vni all detail",
    "show evpn mac vni 100 mac {mac}",
    "show evpn mac vni 100 vtep {peer}",
    "show evpn mac vni all vtep {peer}",
    "show evpn arp-cache vni 100",
    "show evpn arp-cache vni all",
    "show evpn arp-cache vni all detail",
    "show evpn arp-cache vni 100 ip {ip}",
    "show evpn arp-cache vni 100 vtep {peer}",
    "show evpn rmac vni all",
    "show evpn next-hops vni all",
]


def _is_data(key: str) -> bool:
    """A key that names a thing (an address, MAC, RD, prefix, VNI) rather than a field."""
    return key.startswith("[") or key.isdigit() or "." in key or ":" in key


def schema(value: Any, where: str = "") -> dict[str, str]:
    """Every path to a value, with its type: dict keys that name data become <data>, list
    items [] (all of them merged)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            name = "<data>" if _is_data(key) else key
            for path, kind in schema(item, f"{where}.{name}" if where else name).items():
                out[path] = kind if out.get(path) in (None, kind) else f"{out[path]}|{kind}"
        if not value:
            out[where or "."] = "dict"
    elif isinstance(value, list):
        for item in value:
            for path, kind in schema(item, f"{where}.[]").items():
                out[path] = kind if out.get(path) in (None, kind) else f"{out[path]}|{kind}"
        if not value:
            out[f"{where}.[]"] = "empty"
    else:
        out[where] = type(value).__name__
    return out


def _covered(path: str, patterns: Any) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def differences(frr: Any, ours: Any) -> list[str]:
    theirs_paths, our_paths = schema(frr), schema(ours)
    problems = []
    for path, kind in sorted(theirs_paths.items()):
        if path not in our_paths:
            if not _covered(path, NOT_IN_EVPND) and not path.endswith(".[]"):
                problems.append(f"missing {path} ({kind})")
        elif our_paths[path] != kind and "empty" not in (kind, our_paths[path]):
            problems.append(f"{path}: FRR {kind}, evpnd {our_paths[path]}")
    for path, kind in sorted(our_paths.items()):
        if path not in theirs_paths and not _covered(path, ONLY_SOMETIMES):
            if not path.endswith(".[]"):
                problems.append(f"extra {path} ({kind})")
    return problems


class Pair:
    def __init__(self, evpnd: Evpnd, frr: Frr) -> None:
        self.evpnd, self.frr = evpnd, frr


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with lab() as the_lab:
        v1, v2, h1, h2 = two_vteps(the_lab, UNDERLAY)
        frr = the_lab.frr(v2, "frr", frr_config(FRR, 65000, EVPND, 65000))
        evpnd = the_lab.evpnd(v1, "e1", vtep_config(EVPND, FRR))
        wait_for("Established", lambda: evpnd.peer_state(FRR) == "Established", 60)
        the_lab.run(h1, "ping", "-c1", "-W1", "10.0.100.1")
        the_lab.run(h2, "ping", "-c1", "-W1", "10.0.100.2")

        def frr_knows() -> bool:
            arps = frr.json("show evpn arp-cache vni 100")
            return "10.0.100.11" in arps and "10.0.100.12" in arps

        def evpnd_knows() -> bool:
            ips = {n["ip"] for n in evpnd.ctl("show", "neigh")}
            return {"10.0.100.11", "10.0.100.12"} <= ips

        wait_for("both hosts' bindings at FRR", frr_knows, 60)
        wait_for("both hosts' bindings at evpnd", evpnd_knows, 60)
        yield Pair(evpnd, frr)


def _rd_of(routes: dict[str, Any], vtep: str) -> str:
    return next(rd for rd in routes if rd.startswith(f"{vtep}:"))


@pytest.mark.parametrize("command", COMMANDS)
def test_evpnd_answers_with_frrs_json_keys(pair: Pair, command: str) -> None:
    table = pair.frr.json("show bgp l2vpn evpn")
    at_frr = command.format(peer=EVPND, mac=H1_MAC, ip="10.0.100.11", rd=_rd_of(table, EVPND))
    at_evpnd = command.format(peer=FRR, mac=H2_MAC, ip="10.0.100.12", rd=_rd_of(table, FRR))
    theirs = pair.frr.json(at_frr)
    ours = pair.evpnd.ctl(*at_evpnd.split())
    assert (
        theirs or command.startswith("show evpn rmac") or command.startswith("show evpn next-hops")
    ), f"FRR answered {at_frr!r} with nothing: the lab is not what the test expects"
    problems = differences(theirs, ours)
    assert not problems, f"{command}:\n  " + "\n  ".join(problems)


def test_the_values_agree_where_both_know_them(pair: Pair) -> None:
    """Not only the keys: the counts and addresses a script reads are the same facts."""
    theirs = pair.frr.json("show bgp l2vpn evpn summary")
    ours = pair.evpnd.ctl("show", "bgp", "l2vpn", "evpn", "summary")
    assert theirs["peers"][EVPND]["pfxRcd"] == ours["peers"][FRR]["pfxSnt"] == 3
    assert theirs["peers"][EVPND]["pfxSnt"] == ours["peers"][FRR]["pfxRcd"] == 3
    assert ours["peers"][FRR]["state"] == "Established" and ours["routerId"] == EVPND
    their_vni = pair.frr.json("show evpn vni")["100"]
    our_vni = pair.evpnd.ctl("show", "evpn", "vni")["100"]
    for key in ("numMacs", "numArpNd", "numRemoteVteps"):
        assert their_vni[key] == our_vni[key] == (1 if key == "numRemoteVteps" else 2), key
    macs = pair.evpnd.ctl("show", "evpn", "mac", "vni", "100")["macs"]
    assert macs[H2_MAC]["remoteVtep"] == FRR and macs[H1_MAC]["type"] == "local"
    sent = pair.evpnd.ctl("show", "bgp", "l2vpn", "evpn", "neighbors", FRR, "advertised-routes")
    received_at_frr = pair.frr.json(f"show bgp l2vpn evpn neighbors {EVPND} routes")
    ours_sent = {(rd, p) for rd, b in sent["advertisedRoutes"].items() for p in b if p != "rd"}
    theirs_got = {
        (rd, p) for rd, b in received_at_frr.items() if isinstance(b, dict) for p in b if p != "rd"
    }
    assert ours_sent == theirs_got and len(ours_sent) == 3


# --- symmetric IRB: Router's MACs, next hops, L3VNIs and prefix routes --------------------------

IRB_UNDERLAY = "192.168.75"
IRB_EVPND, IRB_FRR = f"{IRB_UNDERLAY}.1", f"{IRB_UNDERLAY}.2"

#: both sides are asked about the L3VNI they share; the L2VNIs differ (110 here, 220 there)
IRB_COMMANDS = [
    "show evpn rmac vni all",
    "show evpn rmac vni 4001",
    "show evpn next-hops vni all",
    "show evpn next-hops vni 4001",
    "show evpn vni",
    "show bgp l2vpn evpn vni",
    "show bgp l2vpn evpn route type prefix",
    "show bgp l2vpn evpn route type macip",
]


@pytest.fixture(scope="module")
def irb() -> Iterator[Pair]:
    from tests.test_irb import FRR_IRB, irb_config, irb_vtep

    with lab() as the_lab:
        v1, v2, h1, h2 = (the_lab.ns(n) for n in ("v1", "v2", "h1", "h2"))
        the_lab.link(v1, f"{IRB_EVPND}/24", v2, f"{IRB_FRR}/24")
        irb_vtep(the_lab, v1, h1, IRB_EVPND, "10.1.1", 110)
        irb_vtep(the_lab, v2, h2, IRB_FRR, "10.2.2", 220)
        frr = the_lab.frr(v2, "frr", FRR_IRB.format(me=IRB_FRR, other=IRB_EVPND))
        evpnd = the_lab.evpnd(v1, "e1", irb_config(IRB_EVPND, IRB_FRR))
        wait_for("Established", lambda: evpnd.peer_state(IRB_FRR) == "Established", 60)
        the_lab.run(h1, "ping", "-c3", "-W2", "10.2.2.10")
        wait_for(
            "FRR's Router's MAC at evpnd",
            lambda: pair_ready(evpnd.ctl("show", "evpn", "rmac", "vni", "all")),
            30,
        )
        wait_for(
            "evpnd's Router's MAC at FRR",
            lambda: pair_ready(frr.json("show evpn rmac vni all")),
            30,
        )
        yield Pair(evpnd, frr)


def pair_ready(rmacs: dict[str, Any]) -> bool:
    return bool(rmacs.get("4001"))


@pytest.mark.parametrize("command", IRB_COMMANDS)
def test_evpnd_answers_irb_commands_with_frrs_json_keys(irb: Pair, command: str) -> None:
    theirs = irb.frr.json(command)
    ours = irb.evpnd.ctl(*command.split())
    assert theirs, f"FRR answered {command!r} with nothing: the lab is not what it expects"
    problems = differences(theirs, ours)
    assert not problems, f"{command}:\n  " + "\n  ".join(problems)
