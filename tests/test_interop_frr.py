"""evpnd and FRR 8.4 (Debian's frr) in network namespaces: sessions, routes both ways,
withdrawals, `clear bgp`, a killed evpnd, and eBGP between two sites across a routed underlay."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.netns import LAB, Frr, Lab, lab, wait_for

pytestmark = [
    *LAB,
    pytest.mark.skipif(
        not os.path.exists("/usr/lib/frr/bgpd"),
        reason="FRR is not installed (scripts/test installs Debian's frr)",
    ),
]

FRR_MAC = "02:00:00:00:00:99"


def frr_config(
    router_id: str, asn: int, neighbor: str, remote_as: int, multihop: bool = False
) -> str:
    hop = f" neighbor {neighbor} ebgp-multihop 5\n" if multihop else ""
    return f"""frr defaults traditional
hostname frr-{router_id}
!
router bgp {asn}
 bgp router-id {router_id}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor {neighbor} remote-as {remote_as}
 neighbor {neighbor} timers connect 1
{hop} !
 address-family l2vpn evpn
  neighbor {neighbor} activate
  advertise-all-vni
 exit-address-family
!
"""


def evpnd_config(router_id: str, asn: int, neighbor: str, remote_as: int, extra: str = "") -> str:
    return f"""asn: {asn}
router_id: {router_id}
hostname: evpnd-{router_id}
listen: {{address: "{router_id}", port: 179}}
neighbors:
  - {{address: {neighbor}, remote_as: {remote_as}, connect_retry: 2{extra}}}
evpn:
  vnis:
    - vni: 100
      vtep_ip: {router_id}
      macs:
        - {{mac: "02:00:00:00:00:01"}}
        - {{mac: "02:00:00:00:00:01", ip: 10.0.100.11}}
"""


def add_frr_host(the_lab: Lab, ns: str, local: str) -> None:
    """A VNI at the FRR VTEP with one local MAC and its IP on the SVI."""
    _, bridge = the_lab.vxlan_bridge(ns, 100, local)
    # (no dummy module on these kernels: a veth pair whose other end stays unused)
    the_lab.run(ns, "ip", "link", "add", "host0", "type", "veth", "peer", "name", "host0p")
    the_lab.run(ns, "ip", "link", "set", "host0", "master", bridge)
    the_lab.run(ns, "ip", "link", "set", "host0", "up")
    the_lab.run(ns, "ip", "link", "set", "host0p", "up")
    the_lab.run(ns, "ip", "addr", "add", "10.0.100.2/24", "dev", bridge)
    the_lab.run(ns, "bridge", "fdb", "add", FRR_MAC, "dev", "host0", "master", "static")
    the_lab.run(
        ns,
        "ip",
        "neigh",
        "replace",
        "10.0.100.99",
        "lladdr",
        FRR_MAC,
        "dev",
        bridge,
        "nud",
        "reachable",
    )


def frr_has(frr: Frr, rd: str, prefix: str) -> dict[str, object] | None:
    return frr.evpn_routes().get(f"{rd} {prefix}")


@pytest.fixture
def ibgp() -> Iterator[tuple[Lab, object, Frr]]:
    with lab() as the_lab:
        e = the_lab.ns("e")
        f = the_lab.ns("f")
        the_lab.link(e, "10.99.0.1/24", f, "10.99.0.2/24")
        add_frr_host(the_lab, f, "10.99.0.2")
        frr = the_lab.frr(f, "frr", frr_config("10.99.0.2", 65000, "10.99.0.1", 65000))
        evpnd = the_lab.evpnd(e, "evpnd", evpnd_config("10.99.0.1", 65000, "10.99.0.2", 65000))
        yield the_lab, evpnd, frr


def test_ibgp_with_frr(ibgp) -> None:
    the_lab, evpnd, frr = ibgp
    wait_for("Established", lambda: evpnd.peer_state("10.99.0.2") == "Established", 60)
    rd = "10.99.0.1:1"
    expected = [
        "[2]:[0]:[48]:[02:00:00:00:00:01]",
        "[2]:[0]:[48]:[02:00:00:00:00:01]:[32]:[10.0.100.11]",
        "[3]:[0]:[32]:[10.99.0.1]",
    ]
    for prefix in expected:
        info = wait_for(f"FRR to list {prefix}", lambda p=prefix: frr_has(frr, rd, p), 30)
        path = info["paths"][0]  # type: ignore[index]
        communities = path["extendedCommunity"]["string"]
        assert "RT:65000:100" in communities and "ET:8" in communities, communities
        assert path["nexthops"][0]["ip"] == "10.99.0.1"
    static = frr_has(frr, rd, expected[0])["paths"][0]  # type: ignore[index]
    assert "MM:0, sticky MAC" in static["extendedCommunity"]["string"]

    def frr_routes_in_evpnd() -> list[dict[str, object]]:
        return [r for r in evpnd.routes() if r["source"] == "10.99.0.2"]

    routes = wait_for(
        "FRR's routes in evpnd",
        lambda: len(frr_routes_in_evpnd()) >= 3 and frr_routes_in_evpnd(),
        30,
    )
    texts = {r["text"] for r in routes}
    assert "[3]:[0]:[32]:[10.99.0.2]" in texts
    assert f"[2]:[0]:[48]:[{FRR_MAC}]" in texts
    assert f"[2]:[0]:[48]:[{FRR_MAC}]:[32]:[10.0.100.99]" in texts
    for route in routes:
        assert route["rts"] == ["65000:100"] and route["vni"] == 100
        assert route["nexthop"] == "10.99.0.2" and route["rd"].startswith("10.99.0.2:")

    # FRR asks for our routes again (ROUTE-REFRESH): it gets them, and keeps them.
    frr.vtysh("clear bgp l2vpn evpn 10.99.0.1 soft in")
    wait_for("the refresh", lambda: "route refresh" in evpnd.log.read_text(), 20)
    assert all(frr_has(frr, rd, prefix) for prefix in expected)

    # A withdrawal from FRR reaches evpnd.
    the_lab.run(frr.ns, "ip", "neigh", "del", "10.0.100.99", "dev", "br100")
    the_lab.run(frr.ns, "bridge", "fdb", "del", FRR_MAC, "dev", "host0", "master")
    wait_for(
        "the withdrawal", lambda: not any(FRR_MAC in r["text"] for r in frr_routes_in_evpnd()), 30
    )

    # A withdrawal from evpnd reaches FRR: drop one static MAC from the configuration, reload.
    config = evpnd.home / "evpnd.yaml"
    config.write_text(config.read_text().replace('        - {mac: "02:00:00:00:00:01"}\n', ""))
    evpnd.reload()
    wait_for("FRR to drop the MAC-only route", lambda: not frr_has(frr, rd, expected[0]), 30)
    assert frr_has(frr, rd, expected[1]) and frr_has(frr, rd, expected[2])
    # A broken configuration is refused and the running one stays.
    good = config.read_text()
    config.write_text(good.replace("asn: 65000", "asn: 650o0"))
    evpnd.reload()
    wait_for("the refusal", lambda: "reload refused" in evpnd.log.read_text(), 10)
    assert evpnd.peer_state("10.99.0.2") == "Established"
    assert frr_has(frr, rd, expected[1])
    config.write_text(good)

    # `clear bgp *` on FRR: the session comes back by itself, routes with it.
    frr.vtysh("clear bgp *")
    wait_for(
        "the session to come back",
        lambda: evpnd.peer_state("10.99.0.2") == "Established" and frr_has(frr, rd, expected[2]),
        60,
    )


def test_killed_evpnd_comes_back(ibgp) -> None:
    """kill -9 and start again: the session and the routes come back with no manual step.

    FRR 8.4 does not keep the routes meanwhile: its graceful-restart code covers the unicast
    and VPN families only (FOREACH_AFI_SAFI_NSF stops before SAFI_EVPN), so it drops EVPN
    routes when the session goes. Route retention across a restart is tested evpnd to evpnd."""
    _, evpnd, frr = ibgp
    rd = "10.99.0.1:1"
    imet = "[3]:[0]:[32]:[10.99.0.1]"
    wait_for("FRR to learn evpnd's routes", lambda: frr_has(frr, rd, imet), 60)
    evpnd.stop(signal.SIGKILL)
    evpnd.start()
    wait_for("Established again", lambda: evpnd.peer_state("10.99.0.2") == "Established", 60)
    wait_for("FRR to have the routes again", lambda: frr_has(frr, rd, imet), 30)
    wait_for(
        "evpnd to have FRR's again",
        lambda: (
            evpnd.routes(type="3", rd="10.99.0.2:2")
            or [r for r in evpnd.routes(type="3") if r["source"] == "10.99.0.2"]
        ),
        30,
    )
    # The RD index survived the restart (kept in state_dir), so the RD did not change.
    assert frr_has(frr, rd, imet)


def test_two_sites_over_ebgp_multihop_with_auto_rts() -> None:
    """The seed's multi-site design: evpnd in AS 65000, FRR in AS 65001, a router between
    them, no RT configuration on either side."""
    with lab() as the_lab:
        e = the_lab.ns("e")
        r = the_lab.ns("r")
        f = the_lab.ns("f")
        the_lab.link(e, "10.1.0.1/24", r, "10.1.0.254/24")
        the_lab.link(r, "10.2.0.254/24", f, "10.2.0.2/24")
        the_lab.run(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        the_lab.run(e, "ip", "route", "add", "10.2.0.0/24", "via", "10.1.0.254")
        the_lab.run(f, "ip", "route", "add", "10.1.0.0/24", "via", "10.2.0.254")
        add_frr_host(the_lab, f, "10.2.0.2")
        frr = the_lab.frr(f, "frr", frr_config("10.2.0.2", 65001, "10.1.0.1", 65000, multihop=True))
        evpnd = the_lab.evpnd(
            e, "evpnd", evpnd_config("10.1.0.1", 65000, "10.2.0.2", 65001, extra=", multihop: 5")
        )
        wait_for("eBGP Established", lambda: evpnd.peer_state("10.2.0.2") == "Established", 60)
        info = wait_for(
            "FRR to import evpnd's IMET",
            lambda: frr_has(frr, "10.1.0.1:1", "[3]:[0]:[32]:[10.1.0.1]"),
            30,
        )
        path = info["paths"][0]  # type: ignore[index]
        assert path["nexthops"][0]["ip"] == "10.1.0.1"  # the VTEP, unchanged over eBGP
        assert "RT:65000:100" in path["extendedCommunity"]["string"]
        # FRR imported it into its VNI 100 although the RT's AS is not its own.
        vni = frr.json("show evpn vni 100")
        assert vni["numRemoteVteps"] == ["10.1.0.1"], vni  # (FRR lists the VTEPs there)
        remote = wait_for(
            "evpnd to have FRR's routes",
            lambda: [x for x in evpnd.routes() if x["source"] == "10.2.0.2"],
            30,
        )
        imet = [x for x in remote if x["type"] == 3]
        assert imet and imet[0]["rts"] == ["65001:100"]
        assert imet[0]["imported_by"] == [100]  # auto import matches *:100 across the ASes
        assert imet[0]["as_path"] == "65001"


def test_frr_without_evpn_is_refused() -> None:
    with lab() as the_lab:
        e = the_lab.ns("e")
        f = the_lab.ns("f")
        the_lab.link(e, "10.98.0.1/24", f, "10.98.0.2/24")
        config = frr_config("10.98.0.2", 65000, "10.98.0.1", 65000).replace(
            "  neighbor 10.98.0.1 activate\n", ""
        )
        config = config.replace(" no bgp default ipv4-unicast\n", "")
        frr = the_lab.frr(f, "frr", config)
        evpnd = the_lab.evpnd(e, "evpnd", evpnd_config("10.98.0.1", 65000, "10.98.0.2", 65000))
        wait_for(
            "the refusal",
            lambda: (
                "L2VPN EVPN" in (next(p for p in evpnd.ctl("show", "peers"))["last_error"] or "")
            ),
            30,
        )
        # and the operator reads why in the log
        assert "peer does not offer L2VPN EVPN (AFI 25 / SAFI 70)" in evpnd.log.read_text()
        assert frr.vtysh("show bgp summary")  # FRR kept running beside it


def test_reload_touches_only_what_changed_with_frr_watching() -> None:
    """evpnd peers with FRR and with another evpnd. A reload that resets the other session,
    changes the VNI's export RT and adds a neighbour: FRR sees the new RT on evpnd's routes,
    its own session never drops, and its uptime keeps counting on both sides."""
    with lab() as the_lab:
        a, f, c = the_lab.ns("a"), the_lab.ns("f"), the_lab.ns("c")
        the_lab.link(a, "10.43.0.1/24", f, "10.43.0.2/24")
        the_lab.link(a, "10.44.0.1/24", c, "10.44.0.3/24")
        frr = the_lab.frr(f, "frr", frr_config("10.43.0.2", 65000, "10.43.0.1", 65000))
        other = "  - {address: 10.44.0.3, remote_as: 65000, connect_retry: 1}\n"
        config = evpnd_config("10.43.0.1", 65000, "10.43.0.2", 65000).replace(
            'address: "10.43.0.1"', 'address: "::"'
        )
        config = config.replace("neighbors:\n", "neighbors:\n" + other)
        evpnd = the_lab.evpnd(a, "evpnd", config)
        the_lab.evpnd(
            c,
            "c",
            evpnd_config("10.44.0.3", 65000, "10.44.0.1", 65000).replace("vni: 100", "vni: 300"),
        )
        wait_for("FRR up", lambda: evpnd.peer_state("10.43.0.2") == "Established", 60)
        wait_for("c up", lambda: evpnd.peer_state("10.44.0.3") == "Established", 30)
        rd, mac_route = "10.43.0.1:1", "[2]:[0]:[48]:[02:00:00:00:00:01]"
        wait_for("FRR to have the MAC", lambda: frr_has(frr, rd, mac_route), 30)

        def frr_session() -> dict[str, object]:
            data = frr.json("show bgp neighbor 10.43.0.1")
            return data["10.43.0.1"]  # type: ignore[no-any-return]

        def our_side() -> dict[str, object]:
            (peer,) = [p for p in evpnd.ctl("show", "peers") if p["address"] == "10.43.0.2"]
            return peer  # type: ignore[no-any-return]

        before = frr_session()
        assert before["connectionsEstablished"] == 1 and before["connectionsDropped"] == 0
        ours_before = our_side()
        home = evpnd.home / "evpnd.yaml"
        home.write_text(
            home.read_text()
            .replace(other, other.replace("connect_retry: 1", "connect_retry: 1, hold_time: 30"))
            .replace("    - vni: 100\n", "    - vni: 100\n      export_rts: [65000:1100]\n")
            .replace("connect_retry: 2}", "connect_retry: 2, description: spine}")
            .replace(
                "neighbors:\n",
                "neighbors:\n  - {address: 10.45.0.9, remote_as: 65000, passive: true}\n",
            )
        )
        result = evpnd.ctl("reload")
        assert result == {
            "reloaded": True,
            "problems": [],
            "changes": [  # every change said, nothing else
                "peer 10.44.0.3: reset (hold_time)",
                "peer 10.43.0.2: updated (description)",
                "peer 10.45.0.9: added",
                "VNI 100: export RTs 65000:100 -> 65000:1100",
            ],
        }

        def new_rt() -> bool:
            info = frr_has(frr, rd, mac_route)
            return bool(info) and "RT:65000:1100" in info["paths"][0]["extendedCommunity"]["string"]  # type: ignore[index]

        wait_for("FRR to see the new RT", new_rt, 30)
        wait_for("c back", lambda: evpnd.peer_state("10.44.0.3") == "Established", 30)
        assert "10.45.0.9" in {p["address"] for p in evpnd.ctl("show", "peers")}
        assert "peer settings changed" in evpnd.log.read_text() or "reload: peer reset" in (
            evpnd.log.read_text()
        )
        assert "reload: peer updated in place" in evpnd.log.read_text()
        ours_after = our_side()
        assert ours_after["description"] == "spine"
        # The same session on both sides: no new connection, none dropped, and its message
        # counters went on from where they were (a reset would have started them again).
        # (Not FRR's bgpTimerUpEstablishedEpoch: it is the wall clock less the uptime and moves
        # by a second on its own.)
        after = frr_session()
        assert after["connectionsEstablished"] == 1 and after["connectionsDropped"] == 0
        stats, stats_before = after["messageStats"], before["messageStats"]
        assert stats["updatesRecv"] > stats_before["updatesRecv"]  # the new RT
        assert stats["totalRecv"] > stats_before["totalRecv"]
        assert ours_after["sessions_established"] == ours_before["sessions_established"] == 1
        assert ours_after["messages_sent"] > ours_before["messages_sent"]
        assert ours_after["messages_received"] >= ours_before["messages_received"]
