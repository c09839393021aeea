"""Symmetric IRB (RFC 9135) and IP prefix routes (RFC 9136) against the real kernel: two VTEPs
with hosts in different subnets (one L2VNI each) share L3VNI 4001 in the default VRF, set up
as docs/frr-reference.md describes, and route to each other through the fabric —
evpnd with evpnd, and evpnd with FRR."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.netns import LAB, Evpnd, Lab, lab, sh, wait_for

pytestmark = LAB

PROTO = "238"  # evpnd's route protocol number (evpnd/kernel/iproutes.py)


@dataclass
class Side:
    vtep: str
    host: str
    address: str  # underlay
    subnet: str  # "10.1.1"
    vni: int
    router_mac: str


def irb_vtep(the_lab: Lab, vtep: str, host: str, address: str, subnet: str, vni: int) -> Side:
    """The reference's layout: vxlan4001 in br4001 (its MAC is the Router's MAC), an L2VNI
    bridge with the hosts' gateway address, forwarding on; a host in the subnet behind it."""
    run = the_lab.run
    run(vtep, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    run(vtep, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    for number in (4001, vni):
        vxlan, bridge = f"vxlan{number}", f"br{number}"
        run(vtep, "ip", "link", "add", vxlan, "type", "vxlan", "id", str(number),
            "dstport", "4789", "local", address, "nolearning")  # fmt: skip
        run(vtep, "ip", "link", "add", bridge, "type", "bridge")
        run(vtep, "ip", "link", "set", vxlan, "master", bridge)
        run(vtep, "ip", "link", "set", vxlan, "type", "bridge_slave",
            "neigh_suppress", "on", "learning", "off")  # fmt: skip
        run(vtep, "ip", "link", "set", vxlan, "up")
        run(vtep, "ip", "link", "set", bridge, "up")
    run(vtep, "ip", "addr", "add", f"{subnet}.1/24", "dev", f"br{vni}")
    run(vtep, "ip", "addr", "add", f"fd00:{vni}::1/64", "dev", f"br{vni}", "nodad")
    port = f"p{the_lab.tag}{host[-2:]}"
    run(vtep, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host)
    run(vtep, "ip", "link", "set", port, "master", f"br{vni}")
    run(vtep, "ip", "link", "set", port, "up")
    run(host, "ip", "addr", "add", f"{subnet}.10/24", "dev", "eth0")
    run(host, "ip", "addr", "add", f"fd00:{vni}::10/64", "dev", "eth0", "nodad")
    run(host, "ip", "link", "set", "eth0", "up")
    run(host, "ip", "route", "add", "default", "via", f"{subnet}.1")
    run(host, "ip", "-6", "route", "add", "default", "via", f"fd00:{vni}::1")
    mac = run(vtep, "cat", "/sys/class/net/br4001/address").strip()
    return Side(vtep, host, address, subnet, vni, mac)


def irb_config(me: str, other: str, extra: str = "") -> str:
    return f"""asn: 65000
router_id: {me}
listen: {{address: "{me}", port: 179}}
neighbors:
  - {{address: {other}, remote_as: 65000, connect_retry: 1}}
evpn:
  l3vni: {{vni: 4001{extra}}}
"""


@dataclass
class Pair:
    lab: Lab
    one: Side
    two: Side
    e1: Evpnd
    e2: Evpnd


@pytest.fixture
def pair() -> Iterator[Pair]:
    with lab() as the_lab:
        v1, v2, h1, h2 = (the_lab.ns(n) for n in ("v1", "v2", "h1", "h2"))
        the_lab.link(v1, "192.168.61.1/24", v2, "192.168.61.2/24")
        one = irb_vtep(the_lab, v1, h1, "192.168.61.1", "10.1.1", 110)
        two = irb_vtep(the_lab, v2, h2, "192.168.61.2", "10.2.2", 220)
        e1 = the_lab.evpnd(
            v1,
            "e1",
            irb_config("192.168.61.1", "192.168.61.2", ", advertise: {prefixes: [10.9.9.0/24]}"),
        )
        e2 = the_lab.evpnd(v2, "e2", irb_config("192.168.61.2", "192.168.61.1"))
        wait_for("Established", lambda: e1.peer_state("192.168.61.2") == "Established", 30)
        yield Pair(the_lab, one, two, e1, e2)


def routes(the_lab: Lab, ns: str, *family: str) -> str:
    return the_lab.run(ns, "ip", *family, "route", "show", "proto", PROTO)


def test_hosts_in_different_subnets_route_through_the_l3vni(pair: Pair) -> None:
    lab_, one, two = pair.lab, pair.one, pair.two
    # Type 5 for each side's connected subnet, installed at the other as FRR installs it
    wait_for(
        "v1 to route 10.2.2.0/24 via v2",
        lambda: (
            "10.2.2.0/24 via 192.168.61.2 dev br4001 metric 20 onlink" in routes(lab_, one.vtep)
        ),
        30,
    )
    wait_for(
        "v2 to route 10.1.1.0/24 and the configured 10.9.9.0/24 via v1",
        lambda: all(
            f"{prefix} via 192.168.61.1 dev br4001 metric 20 onlink" in routes(lab_, two.vtep)
            for prefix in ("10.1.1.0/24", "10.9.9.0/24")
        ),
        30,
    )
    assert "fd00:220::/64 via ::ffff:192.168.61.2 dev br4001 metric 20 onlink" in routes(
        lab_, one.vtep, "-6"
    )
    # the remote Router's MAC: a neighbour on the L3VNI bridge and the two FDB entries
    neighbours = lab_.run(one.vtep, "ip", "neigh", "show", "dev", "br4001")
    assert f"192.168.61.2 lladdr {two.router_mac} extern_learn NOARP" in neighbours
    fdb = lab_.run(one.vtep, "bridge", "fdb", "show", "dev", "vxlan4001")
    assert f"{two.router_mac} dst 192.168.61.2 self extern_learn" in fdb
    assert f"{two.router_mac} extern_learn master br4001" in fdb
    # the hosts reach each other, routed: IPv4 and IPv6
    lab_.run(one.host, "ping", "-c2", "-W2", f"{two.subnet}.10")
    lab_.run(two.host, "ping", "-c2", "-W2", f"{one.subnet}.10")
    lab_.run(one.host, "ping", "-6", "-c2", "-W2", "fd00:220::10")

    # now each VTEP knows its host's MAC/IP: Type 2 with both labels, both RTs and the Rmac
    def host_route() -> dict[str, object] | None:
        found = [
            r
            for r in pair.e1.routes(type="2")
            if r["ip"] == "10.2.2.10" and r["source"] == "192.168.61.2"
        ]
        return found[0] if found else None

    route = wait_for("h2's MAC/IP route at v1", host_route, 30)
    assert route["router_mac"] == two.router_mac
    assert set(route["rts"]) == {"65000:220", "65000:4001"}  # type: ignore[arg-type]
    assert "[2]:[0]:[48]:" in str(route["text"])
    local = [r for r in pair.e2.routes(type="2") if r["ip"] == "10.2.2.10"]
    assert local and local[0]["source"] == "local"
    wait_for(
        "the host route at v1",
        lambda: "10.2.2.10 via 192.168.61.2 dev br4001 metric 20 onlink" in routes(lab_, one.vtep),
        30,
    )
    # the Type 5 routes carry what FRR's do
    (t5,) = [r for r in pair.e1.routes(type="5") if r["prefix"] == "10.2.2.0/24"]
    assert t5["vni"] == 4001 and t5["rts"] == ["65000:4001"] and t5["router_mac"] == two.router_mac

    (l3,) = pair.e1.ctl("show", "l3vni")
    assert (l3["vni"], l3["vrf"], l3["state"], l3["bridge"]) == (4001, "default", "up", "br4001")
    assert l3["router_mac"] == one.router_mac and l3["l2vnis"] == [110] and l3["table"] == 254
    assert l3["advertised"] == ["10.1.1.0/24", "fd00:110::/64", "10.9.9.0/24"]
    assert l3["routes_installed"] >= 3 and l3["remote_vteps"] == ["192.168.61.2"]
    table = sh(sys.executable, "-m", "evpnd.control.cli", "-s", pair.e1.socket, "show", "l3vni")
    assert table.splitlines()[1].split()[:5] == ["4001", "default", "up", "br4001", one.router_mac]

    # the configured prefix: reachable from the other side's host (v1 owns 10.9.9.1)
    lab_.run(one.vtep, "ip", "addr", "add", "10.9.9.1/32", "dev", "lo")
    lab_.run(two.host, "ping", "-c2", "-W2", "10.9.9.1")
    # withdrawn by a reload without it: gone at v2, and only that route
    config = pair.e1.home / "evpnd.yaml"
    config.write_text(config.read_text().replace(", advertise: {prefixes: [10.9.9.0/24]}", ""))
    assert pair.e1.ctl("reload")["reloaded"]
    wait_for("10.9.9.0/24 gone at v2", lambda: "10.9.9.0/24" not in routes(lab_, two.vtep), 30)
    assert "10.1.1.0/24 via 192.168.61.1" in routes(lab_, two.vtep)

    # routes evpnd did not install are never touched, and the kernel is in sync
    lab_.run(two.vtep, "ip", "route", "add", "10.77.0.0/16", "via", "192.168.61.1", "proto", "bgp")
    result = pair.e2.ctl("show", "kernel")
    assert result["wanted"]["routes"] >= 2 and not [
        d for d in result["differences"] if d["kind"] == "route"
    ]
    assert "10.77.0.0/16" in lab_.run(two.vtep, "ip", "route")
    # one of ours deleted by hand comes back at once (a route event), not at the next
    # periodic comparison
    lab_.run(two.vtep, "ip", "route", "del", "10.1.1.0/24", "proto", PROTO)
    wait_for(
        "10.1.1.0/24 back",
        lambda: "10.1.1.0/24 via 192.168.61.1" in routes(lab_, two.vtep),
        5,
        0.05,
    )

    # a restart keeps the routes in place; one of ours that no route backs any more (left by
    # a crash, say) goes once the peer has sent End-of-RIB; everyone else's stays
    lab_.run(two.vtep, "ip", "route", "add", "10.66.0.0/16", "via", "192.168.61.1",
             "dev", "br4001", "onlink", "proto", PROTO)  # fmt: skip
    pair.e2.stop()
    assert "10.1.1.0/24 via 192.168.61.1 dev br4001" in routes(lab_, two.vtep)
    pair.e2.start()
    wait_for("v2 back", lambda: pair.e2.peer_state("192.168.61.1") == "Established", 30)
    wait_for("the stale route gone", lambda: "10.66.0.0/16" not in routes(lab_, two.vtep), 30)
    assert "10.1.1.0/24 via 192.168.61.1 dev br4001" in routes(lab_, two.vtep)
    assert "10.77.0.0/16" in lab_.run(two.vtep, "ip", "route")
    lab_.run(two.host, "ping", "-c1", "-W2", f"{one.subnet}.10")


FRR_IRB = """frr defaults traditional
hostname frr-irb
!
vni 4001
!
router bgp 65000
 bgp router-id {me}
 no bgp default ipv4-unicast
 neighbor {other} remote-as 65000
 neighbor {other} timers connect 1
 !
 address-family ipv4 unicast
  redistribute connected
 exit-address-family
 !
 address-family l2vpn evpn
  neighbor {other} activate
  advertise-all-vni
  advertise ipv4 unicast
 exit-address-family
!
"""


@pytest.mark.skipif(
    not os.path.exists("/usr/lib/frr/bgpd"),
    reason="FRR is not installed (scripts/test installs Debian's frr)",
)
def test_a_reload_that_changes_what_the_l3vni_imports(pair: Pair) -> None:
    """The L3VNI stops importing the other VTEP's routes (RT 65000:999): its routes, the
    remote Router's MAC neighbour and both FDB entries go, the kernel in sync; and come back
    when the file does. The other side keeps what it imports from us."""
    lab_, one, two = pair.lab, pair.one, pair.two

    def remote_rmac() -> tuple[bool, bool]:
        neighbours = lab_.run(one.vtep, "ip", "neigh", "show", "dev", "br4001")
        fdb = lab_.run(one.vtep, "bridge", "fdb", "show", "dev", "vxlan4001")
        return (f"lladdr {two.router_mac} extern_learn" in neighbours, two.router_mac in fdb)

    via_two = "10.2.2.0/24 via 192.168.61.2 dev br4001 metric 20 onlink"
    wait_for("v1 to route via v2", lambda: via_two in routes(lab_, one.vtep), 30)
    wait_for("v2's Router's MAC at v1", lambda: remote_rmac() == (True, True), 30)
    config = pair.e1.home / "evpnd.yaml"
    good = config.read_text()
    config.write_text(
        good.replace("l3vni: {vni: 4001", 'l3vni: {vni: 4001, import_rts: ["65000:999"]')
    )
    answer = pair.e1.ctl("reload")
    assert answer["reloaded"]
    assert "L3VNI 4001: import RTs auto (*:4001) -> 65000:999" in answer["changes"]
    wait_for("no route via v2 at v1", lambda: "192.168.61.2" not in routes(lab_, one.vtep), 30)
    assert "192.168.61.2" not in routes(lab_, one.vtep, "-6")
    wait_for("v2's Router's MAC gone at v1", lambda: remote_rmac() == (False, False), 30)
    wait_for("v1 in sync", lambda: pair.e1.ctl("show", "kernel", check=False)["in_sync"], 15)
    assert "10.1.1.0/24 via 192.168.61.1" in routes(lab_, two.vtep)  # v2 unchanged
    config.write_text(good)
    assert pair.e1.ctl("reload")["reloaded"]
    wait_for("v1 to route via v2 again", lambda: via_two in routes(lab_, one.vtep), 30)
    wait_for("v2's Router's MAC back", lambda: remote_rmac() == (True, True), 30)
    lab_.run(one.host, "ping", "-c1", "-W2", f"{two.subnet}.10")


def test_irb_with_frr() -> None:
    with lab() as the_lab:
        v1, v2, h1, h2 = (the_lab.ns(n) for n in ("v1", "v2", "h1", "h2"))
        the_lab.link(v1, "192.168.62.1/24", v2, "192.168.62.2/24")
        one = irb_vtep(the_lab, v1, h1, "192.168.62.1", "10.1.1", 110)
        two = irb_vtep(the_lab, v2, h2, "192.168.62.2", "10.2.2", 220)
        frr = the_lab.frr(v2, "frr", FRR_IRB.format(me="192.168.62.2", other="192.168.62.1"))
        evpnd = the_lab.evpnd(v1, "e1", irb_config("192.168.62.1", "192.168.62.2"))
        wait_for("Established", lambda: evpnd.peer_state("192.168.62.2") == "Established", 60)

        def frr_prefix() -> dict[str, object] | None:
            data = frr.json("show bgp l2vpn evpn route type prefix")
            for rd, entries in data.items():
                if isinstance(entries, dict) and rd.startswith("192.168.62.1:"):
                    for prefix, info in entries.items():
                        if "10.1.1.0" in prefix and isinstance(info, dict):
                            return info
            return None

        info = wait_for("FRR to have evpnd's Type 5", frr_prefix, 30)
        path = info["paths"][0]  # type: ignore[index]
        if isinstance(path, list):
            path = path[0]
        communities = path["extendedCommunity"]["string"]
        assert "RT:65000:4001" in communities and "ET:8" in communities, communities
        assert f"Rmac:{one.router_mac}" in communities, communities
        # FRR installs it in its kernel
        wait_for(
            "FRR to install 10.1.1.0/24",
            lambda: "10.1.1.0/24" in the_lab.run(v2, "ip", "route", "show", "proto", "bgp"),
            30,
        )
        # evpnd installs FRR's Type 5
        wait_for(
            "evpnd to install 10.2.2.0/24",
            lambda: (
                "10.2.2.0/24 via 192.168.62.2 dev br4001 metric 20 onlink" in routes(the_lab, v1)
            ),
            30,
        )
        the_lab.run(h1, "ping", "-c3", "-W2", "10.2.2.10")
        the_lab.run(h2, "ping", "-c3", "-W2", "10.1.1.10")
        # both hosts are known now: each side has the other's host route
        wait_for(
            "evpnd's host route to h2",
            lambda: "10.2.2.10 via 192.168.62.2 dev br4001" in routes(the_lab, v1),
            30,
        )
        wait_for(
            "FRR's host route to h1",
            lambda: "10.1.1.10" in the_lab.run(v2, "ip", "route", "show", "proto", "bgp"),
            30,
        )
        vni = frr.json("show evpn vni 4001")
        assert vni.get("type") == "L3" and two.router_mac in str(vni)


def test_a_prefix_from_two_vteps_is_an_ecmp_route() -> None:
    """Two VTEPs announce one prefix (an anycast service, two border leafs): the third routes
    it over both, and over the one left when the other withdraws it."""
    with lab() as the_lab:
        spine = the_lab.ns("sw")
        the_lab.run(spine, "ip", "link", "add", "sw", "type", "bridge")
        the_lab.run(spine, "ip", "link", "set", "sw", "up")
        sides, daemons = [], []
        addresses = [f"192.168.63.{i}" for i in (1, 2, 3)]
        for index, address in enumerate(addresses, start=1):
            vtep, host = the_lab.ns(f"v{index}"), the_lab.ns(f"h{index}")
            up = f"u{the_lab.tag}{index}"
            the_lab.run(spine, "ip", "link", "add", up, "type", "veth", "peer", "name", "eth0",
                        "netns", vtep)  # fmt: skip
            the_lab.run(spine, "ip", "link", "set", up, "master", "sw", "up")
            the_lab.run(vtep, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            the_lab.run(vtep, "ip", "link", "set", "eth0", "up")
            sides.append(irb_vtep(the_lab, vtep, host, address, f"10.{index}.1", 100 + index))
        for index, side in enumerate(sides):
            others = [a for a in addresses if a != addresses[index]]
            anycast = ", advertise: {prefixes: [10.99.0.0/24]}" if index else ""
            config = irb_config(addresses[index], others[0], anycast).replace(
                "neighbors:\n",
                f"neighbors:\n  - {{address: {others[1]}, remote_as: 65000, connect_retry: 1}}\n",
            )
            if index:
                the_lab.run(side.vtep, "ip", "addr", "add", "10.99.0.1/32", "dev", "lo")
            daemons.append(the_lab.evpnd(side.vtep, f"e{index + 1}", config))
        v1 = sides[0].vtep
        wait_for(
            "v1 to route 10.99.0.0/24 over both",
            lambda: all(
                f"nexthop via {a} dev br4001 weight 1 onlink" in routes(the_lab, v1)
                for a in addresses[1:]
            ),
            30,
        )
        the_lab.run(sides[0].host, "ping", "-c2", "-W2", "10.99.0.1")
        # v3 stops announcing it: one path left, replaced in place
        config = daemons[2].home / "evpnd.yaml"
        config.write_text(config.read_text().replace(", advertise: {prefixes: [10.99.0.0/24]}", ""))
        assert daemons[2].ctl("reload")["reloaded"]
        wait_for(
            "v1 to route 10.99.0.0/24 via v2 only",
            lambda: (
                "10.99.0.0/24 via 192.168.63.2 dev br4001 metric 20 onlink" in routes(the_lab, v1)
            ),
            30,
        )
        the_lab.run(sides[0].host, "ping", "-c1", "-W2", "10.99.0.1")
        assert daemons[0].ctl("show", "kernel")["in_sync"]
