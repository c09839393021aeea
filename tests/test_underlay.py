"""The underlay under evpnd, against the real kernel: next-hop tracking (a VTEP whose route
goes away takes its routes' kernel entries with it, and they come back with the route) and
each VNI's inner MTU against the way to its VTEPs (too-large devices are named, with the fix).
The sessions run between the link addresses; the VTEPs are loopback addresses routed over it.
`evpnctl doctor` says nothing of the healthy fabric and names each fault as it is made."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.netns import LAB, lab, sh, wait_for

pytestmark = LAB

MAC = "02:00:00:00:07:01"


def config(me: str, vtep: str, other: str, asn: int, other_as: int, macs: str = "") -> str:
    return f"""asn: {asn}
router_id: {vtep}
listen: {{address: {me}, port: 179}}
neighbors:
  - {{address: {other}, remote_as: {other_as}, connect_retry: 1}}
evpn:
  vtep_ip: {vtep}
  vnis: [{{vni: 100{macs}}}]
"""


def test_next_hop_tracking_and_the_path_mtu() -> None:
    with lab() as the_lab:
        a, b = the_lab.ns("a"), the_lab.ns("b")
        left, _ = the_lab.link(a, "10.92.0.1/30", b, "10.92.0.2/30")
        for ns, mine, theirs, via in (
            (a, "10.255.0.1", "10.255.1.1", "10.92.0.2"),
            (b, "10.255.1.1", "10.255.0.1", "10.92.0.1"),
        ):
            the_lab.run(ns, "ip", "addr", "add", f"{mine}/32", "dev", "lo")
            the_lab.run(ns, "ip", "route", "add", f"{theirs}/32", "via", via)
            the_lab.vxlan_bridge(ns, 100, mine)
        one = the_lab.evpnd(a, "a", config("10.92.0.1", "10.255.0.1", "10.92.0.2", 65000, 65001))
        two = the_lab.evpnd(
            b,
            "b",
            config(
                "10.92.0.2", "10.255.1.1", "10.92.0.1", 65001, 65000, f', macs: [{{mac: "{MAC}"}}]'
            ),
        )

        def entry() -> bool:
            table = the_lab.run(a, "bridge", "fdb", "show", "dev", "vxlan100")
            return f"{MAC} dst 10.255.1.1" in table

        def summary() -> Any:
            return one.ctl("show", "summary")

        def findings() -> list[dict[str, Any]]:
            command = [sys.executable, "-m", "evpnd.control.cli", "-s", one.socket, "doctor"]
            found: list[dict[str, Any]] = json.loads(sh(*command, "--json", check=False))[
                "findings"
            ]
            code = subprocess.run(command, capture_output=True, text=True).returncode
            assert code == (1 if found else 0), found  # exit 1 when it names anything
            return found

        def doctor() -> list[str]:
            """The checks `evpnctl doctor` names."""
            return sorted(f["check"] for f in findings())

        wait_for("the remote MAC's entry", entry, 30)
        # healthy (the links are 1500 bytes: the VNI's devices are made to fit first)
        for dev in ("vxlan100", "br100"):
            the_lab.run(a, "ip", "link", "set", dev, "mtu", "1450")
        wait_for("a healthy fabric", lambda: doctor() == [], 10)
        # the vxlan port learning by itself: named, with the command that stops it
        the_lab.run(a, "bridge", "link", "set", "dev", "vxlan100", "learning", "on")
        wait_for("learning named", lambda: doctor() == ["vni"], 10)
        assert findings()[0]["fix"] == "bridge link set dev vxlan100 learning off"
        the_lab.run(a, "bridge", "link", "set", "dev", "vxlan100", "learning", "off")
        wait_for("a healthy fabric again", lambda: doctor() == [], 10)
        # the other VTEP exporting another route target: both sets named
        b_config = two.home / "evpnd.yaml"
        healthy = b_config.read_text()
        moved = '{vni: 100, export_rts: ["65001:999"], import_rts: ["65001:999"]'
        b_config.write_text(healthy.replace("{vni: 100", moved))
        two.ctl("reload")
        wait_for("the RT mismatch", lambda: doctor() == ["vni"], 10)
        (mismatch,) = findings()
        assert mismatch["evidence"] == {
            "vtep": "10.255.1.1",
            "vni": 100,
            "theirs": ["65001:999"],
            "ours": ["auto (*:100)"],
        }, mismatch

        def at_b() -> list[dict[str, Any]]:
            """B's own doctor: it names A in turn (A's routes carry its auto RT)."""
            return [f for f in two.ctl("doctor", check=False)["findings"] if f["check"] == "vni"]

        wait_for("the RT mismatch at B", lambda: len(at_b()) == 1, 10)
        assert at_b()[0]["evidence"] == {
            "vtep": "10.255.0.1",
            "vni": 100,
            "theirs": ["65000:100"],
            "ours": ["65001:999"],
        }
        b_config.write_text(healthy)
        two.ctl("reload")
        wait_for("a healthy fabric again", lambda: doctor() == [], 10)
        # the VTEP's route withdrawn: its routes are no candidates, their entries go
        the_lab.run(a, "ip", "route", "del", "10.255.1.1/32")
        wait_for("the entry gone", lambda: not entry(), 10)
        (unreachable,) = summary()["vteps_unreachable"]
        assert unreachable["vtep"] == "10.255.1.1" and unreachable["paths"] >= 2
        assert unreachable["reason"] == "no route"  # (the namespace has no default route)
        wait_for("in sync", lambda: one.ctl("show", "kernel", check=False)["in_sync"], 10)
        assert doctor() == ["underlay"]
        the_lab.run(a, "ip", "route", "add", "10.255.1.1/32", "via", "10.92.0.2")
        wait_for("the entry back", entry, 10)
        assert summary()["vteps_unreachable"] == []

        # MTU: the way to the VTEP carries 1400 bytes; VXLAN over IPv4 takes 50 of them
        the_lab.run(a, "ip", "link", "set", left, "mtu", "1400")

        def vni() -> Any:
            (found,) = one.ctl("show", "vni")
            return found

        wait_for("the MTU problem", lambda: vni()["inner_mtu"] == 1350 and vni()["mtu_problem"], 10)
        problem = vni()["mtu_problem"]
        assert "vxlan100 1450" in problem and "br100 1450" in problem
        assert "ip link set vxlan100 mtu 1350" in problem
        assert doctor() == ["mtu"]
        the_lab.run(a, "ip", "link", "set", "vxlan100", "mtu", "1350")
        the_lab.run(a, "ip", "link", "set", "br100", "mtu", "1350")
        wait_for("no MTU problem", lambda: vni()["mtu_problem"] is None, 10)
        log = one.log.read_text()
        assert '"vtep unreachable"' in log and '"vni mtu problem"' in log
        # the other speaker gone (its routes stay, stale, for the restart time): its port probed
        two.stop()
        wait_for("the session named", lambda: doctor() == ["session"], 30)
        (down,) = findings()
        assert down["evidence"]["port_probe"] == "10.92.0.2 port 179: refused", down
        assert down["fix"].startswith("nothing listens on 10.92.0.2 port 179"), down
        # the local link down (its routes go with it): named once, as the cause of the VTEP's
        # unreachability, not as an unreachable VTEP of its own
        the_lab.run(a, "ip", "link", "set", left, "down")

        def underlay() -> list[dict[str, Any]]:
            return [f for f in findings() if f["check"] == "underlay"]

        wait_for(
            "the link named", lambda: len(underlay()) == 1 and "link" in underlay()[0]["what"], 10
        )
        (link,) = underlay()
        assert link["what"].startswith(f"link {left} is down"), link
        assert link["evidence"]["unreachable"] == ["10.255.1.1"], link
        assert link["fix"] == f"ip link set {left} up"
