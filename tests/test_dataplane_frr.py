"""A mixed fabric: an evpnd VTEP and an FRR VTEP, a host behind each."""

from __future__ import annotations

import os

import pytest

from tests.netns import LAB, lab, wait_for
from tests.test_dataplane import H1_MAC, H2_MAC, add_host, two_vteps, vtep_config
from tests.test_interop_frr import frr_config

pytestmark = [
    *LAB,
    pytest.mark.skipif(
        not os.path.exists("/usr/lib/frr/bgpd"),
        reason="FRR is not installed (scripts/test installs Debian's frr)",
    ),
]


def test_evpnd_and_frr_vteps_carry_traffic_between_their_hosts() -> None:
    with lab() as the_lab:
        v1, v2, h1, h2 = two_vteps(the_lab, "192.168.51")
        frr = the_lab.frr(v2, "frr", frr_config("192.168.51.2", 65000, "192.168.51.1", 65000))
        evpnd = the_lab.evpnd(v1, "e1", vtep_config("192.168.51.1", "192.168.51.2"))
        wait_for("Established", lambda: evpnd.peer_state("192.168.51.2") == "Established", 60)
        the_lab.run(h1, "ping", "-c1", "-W1", "10.0.100.1")
        the_lab.run(h2, "ping", "-c1", "-W1", "10.0.100.2")

        def frr_macs() -> dict[str, dict[str, object]]:
            data = frr.json("show evpn mac vni 100")
            return {m: v for m, v in data.get("macs", {}).items()}

        remote = wait_for(
            "FRR to list evpnd's host as remote",
            lambda: (m := frr_macs().get(H1_MAC)) and m.get("type") == "remote" and m,
            30,
        )
        assert remote["remoteVtep"] == "192.168.51.1"
        wait_for(
            "evpnd to program FRR's host",
            lambda: (
                f"{H2_MAC} dst 192.168.51.2 self "
                "extern_learn" in the_lab.run(v1, "bridge", "fdb", "show", "dev", "vxlan100")
            ),
            30,
        )
        wait_for(
            "FRR to program evpnd's host",
            lambda: (
                f"{H1_MAC} dst 192.168.51.1"
                in the_lab.run(v2, "bridge", "fdb", "show", "dev", "vxlan100")
            ),
            30,
        )
        the_lab.run(h1, "ping", "-c3", "-W2", "10.0.100.12")
        the_lab.run(h2, "ping", "-c3", "-W2", "10.0.100.11")

        # h2 moves from the FRR VTEP to the evpnd one: evpnd announces it with the next
        # sequence number and FRR agrees on the new location. The old host gives up its
        # MAC and address but keeps its link: a link going down would flush FRR's bridge
        # entry and have FRR withdraw the MAC first (a race; then sequence 0 is right).
        # This way FRR still advertises the MAC when it shows up behind evpnd.
        the_lab.run(h2, "ip", "addr", "flush", "dev", "eth0")
        the_lab.run(h2, "ip", "link", "set", "eth0", "address", "02:00:00:00:0f:0f")
        assert any(r["source"] == "192.168.51.2" for r in evpnd.routes(type="2", mac=H2_MAC))
        moved = the_lab.ns("h2b")
        add_host(the_lab, v1, moved, "br100", "10.0.100.12/24", H2_MAC)
        the_lab.run(moved, "ping", "-c1", "-W2", "10.0.100.1")
        info = wait_for(
            "FRR to see h2 behind evpnd",
            lambda: (
                (m := frr_macs().get(H2_MAC))
                and m.get("type") == "remote"
                and m.get("remoteVtep") == "192.168.51.1"
                and m
            ),
            30,
        )
        assert info
        local = [r for r in evpnd.routes(type="2") if r["source"] == "local" and r["mac"] == H2_MAC]
        assert local and all(r["seq"] == 1 for r in local), [(r["ip"], r["seq"]) for r in local]
        the_lab.run(moved, "ping", "-c2", "-W2", "10.0.100.11")
