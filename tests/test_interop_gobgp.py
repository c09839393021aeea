"""evpnd and GoBGP (Debian's gobgpd) in network namespaces: routes injected with the gobgp CLI
reach evpnd, and evpnd's reach GoBGP's RIB."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.netns import LAB, lab, wait_for

pytestmark = [
    *LAB,
    pytest.mark.skipif(
        shutil.which("gobgpd") is None,
        reason="gobgpd is not installed (scripts/test installs Debian's gobgpd)",
    ),
]

GOBGP_CONFIG = """[global.config]
  as = 65000
  router-id = "10.30.0.2"
  port = 179
  local-address-list = ["10.30.0.2"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.30.0.1"
    peer-as = 65000
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
"""

EVPND_CONFIG = """asn: 65000
router_id: 10.30.0.1
listen: {address: "10.30.0.1", port: 179}
neighbors:
  - {address: 10.30.0.2, remote_as: 65000, connect_retry: 1}
evpn:
  vnis:
    - vni: 100
      vtep_ip: 10.30.0.1
      macs: [{mac: "02:00:00:00:00:01", ip: 10.0.100.11}]
"""


def test_routes_both_ways_with_gobgp() -> None:
    with lab() as the_lab:
        e, g = the_lab.ns("e"), the_lab.ns("g")
        the_lab.link(e, "10.30.0.1/24", g, "10.30.0.2/24")
        conf = the_lab.dir / "gobgpd.toml"
        conf.write_text(GOBGP_CONFIG)
        gobgpd = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                g,
                "gobgpd",
                "-f",
                str(conf),
                "-p",
                "--pprof-disable",
                "--api-hosts",
                "127.0.0.1:50051",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        the_lab.processes.append(gobgpd)
        evpnd = the_lab.evpnd(e, "evpnd", EVPND_CONFIG)

        def gobgp(*args: str) -> str:
            return the_lab.run(g, "gobgp", "-u", "127.0.0.1", "-p", "50051", *args)

        wait_for("Established", lambda: evpnd.peer_state("10.30.0.2") == "Established", 60)
        # the same route for the add and for the delete: a GoBGP route is keyed by all of it
        macadv = [
            "macadv",
            "02:00:00:00:00:42",
            "10.0.100.42",
            "etag",
            "0",
            "label",
            "100",
            "rd",
            "10.30.0.2:7",
        ]
        gobgp(
            "global",
            "rib",
            "add",
            "-a",
            "evpn",
            *macadv,
            "rt",
            "65000:100",
            "encap",
            "vxlan",
            "nexthop",
            "10.30.0.2",
        )
        gobgp(
            "global",
            "rib",
            "add",
            "-a",
            "evpn",
            "multicast",
            "10.30.0.2",
            "etag",
            "0",
            "rd",
            "10.30.0.2:7",
            "rt",
            "65000:100",
            "encap",
            "vxlan",
            "nexthop",
            "10.30.0.2",
        )
        routes = wait_for(
            "GoBGP's routes in evpnd",
            lambda: (
                (r := [x for x in evpnd.routes() if x["source"] == "10.30.0.2"])
                and len(r) == 2
                and r
            ),
            30,
        )
        by_type = {r["type"]: r for r in routes}
        assert by_type[2]["mac"] == "02:00:00:00:00:42" and by_type[2]["ip"] == "10.0.100.42"
        assert by_type[2]["vni"] == 100 and by_type[2]["rd"] == "10.30.0.2:7"
        assert by_type[3]["ip"] == "10.30.0.2" and by_type[3]["rts"] == ["65000:100"]

        def gobgp_rib() -> str:
            return gobgp("global", "rib", "-a", "evpn")

        rib = wait_for(
            "evpnd's routes in GoBGP",
            lambda: (out := gobgp_rib()).count("10.30.0.1:1") == 2 and out,
            30,
        )
        assert "[type:macadv][rd:10.30.0.1:1][etag:0][mac:02:00:00:00:00:01][ip:10.0.100.11]" in (
            rib
        )
        assert "[type:multicast][rd:10.30.0.1:1][etag:0][ip:10.30.0.1]" in rib
        data = json.loads(gobgp("global", "rib", "-a", "evpn", "-j"))
        assert len(data) == 4  # two of GoBGP's, two of evpnd's

        gobgp("global", "rib", "del", "-a", "evpn", *macadv)
        wait_for(
            "the withdrawal",
            lambda: (
                not [x for x in evpnd.routes() if x["source"] == "10.30.0.2" and x["type"] == 2]
            ),
            30,
        )
