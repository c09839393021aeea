"""Two sites joined only by WireGuard, the deployment users copy: site A (AS 65000) has VTEPs
A1 and A2 on a LAN, site B (AS 65001) has B1; A1 and B1 run the tunnel (wireguard-go, the
userspace implementation: this kernel has no wireguard module) over an "internet" link. eBGP
multihop between the sites' loopbacks over the tunnel (`update_source: lo`), iBGP inside site
A; the next hops stay the originating VTEPs' loopbacks, and auto RTs import across the ASes.

VNI 100 spans both sites. evpnd finds the MTU the tunnel leaves for inner frames (1420 - 50)
and `doctor` names the devices that are larger, with the fix; once applied, a 4 MB transfer
between a host of each site completes. The tunnel going down makes B1 unreachable for A1's
next-hop tracking: B's entries leave A1's kernel, and come back with the tunnel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from evpnd.multisite import join_sites
from tests.netns import LAB, Evpnd, Lab, lab, wait_for
from tests.test_dataplane import add_host

pytestmark = LAB

HA_MAC, HB_MAC = "02:00:00:0a:00:10", "02:00:00:0b:00:20"

if not (shutil.which("wireguard-go") and shutil.which("wg")):
    pytest.skip("wireguard-go and wireguard-tools are not installed", allow_module_level=True)
if not os.path.exists("/dev/net/tun"):
    pytest.skip("no /dev/net/tun: wireguard-go cannot make its device", allow_module_level=True)


def config(asn: int, me: str, neighbors: str) -> str:
    return f"""asn: {asn}
router_id: {me}
neighbors:
{textwrap.indent(neighbors.strip(), "  ")}
evpn: {{vtep_ip: {me}}}
"""


TRANSFER = textwrap.dedent(
    """
    import socket, sys
    size = 4 * 1024 * 1024
    if sys.argv[1] == "serve":
        server = socket.create_server(("10.0.100.20", 5001))
        print("listening", flush=True)
        conn, _ = server.accept()
        got = 0
        while chunk := conn.recv(1 << 16):
            got += len(chunk)
        print(got, flush=True)
    else:
        client = socket.create_connection(("10.0.100.20", 5001), timeout=20)
        client.sendall(b"x" * size)
        client.close()
    """
)


def transfer(the_lab: Lab, ha: str, hb: str) -> int:
    """Bytes a host of site B received of 4 MB a host of site A sent."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", hb, sys.executable, "-c", TRANSFER, "serve"],
        stdout=subprocess.PIPE,
        text=True,
    )
    the_lab.processes.append(server)  # type: ignore[arg-type]
    assert server.stdout is not None and server.stdout.readline() == "listening\n"
    the_lab.run(ha, sys.executable, "-c", TRANSFER, "send")
    return int(server.stdout.readline())


FRR_B1 = """frr defaults traditional
router bgp 65001
 bgp router-id 10.255.1.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 10.255.0.1 remote-as 65000
 neighbor 10.255.0.1 update-source lo
 neighbor 10.255.0.1 ebgp-multihop 2
 address-family l2vpn evpn
  neighbor 10.255.0.1 activate
  advertise-all-vni
 exit-address-family
"""


@pytest.mark.parametrize("site_b", ["evpnd", "frr"])
def test_two_sites_over_wireguard(site_b: str) -> None:
    """Site B's VTEP is evpnd, or FRR 8.4 configured as tutorials write it (the mixed case)."""
    if site_b == "frr" and not os.path.exists("/usr/lib/frr/bgpd"):
        pytest.skip("FRR is not installed")
    with lab() as the_lab:
        a1, a2, b1, ha, hb = (the_lab.ns(n) for n in ("a1", "a2", "b1", "ha", "hb"))
        for ns, loopback in ((a1, "10.255.0.1"), (a2, "10.255.0.2"), (b1, "10.255.1.1")):
            the_lab.run(ns, "ip", "addr", "add", f"{loopback}/32", "dev", "lo")
        # the LAN, the internet link, the tunnel and the routes: as `evpnd demo --multisite`
        wg_a, _ = join_sites(
            the_lab.run,
            the_lab.processes,
            the_lab.dir,
            the_lab.tag,
            a1,
            a2,
            b1,  # type: ignore[arg-type]
        )
        the_lab.run(a1, "ping", "-c1", "-W2", "-I", "10.255.0.1", "10.255.1.1")  # the tunnel
        bridges = {}
        for ns, loopback in ((a1, "10.255.0.1"), (a2, "10.255.0.2"), (b1, "10.255.1.1")):
            bridges[ns] = the_lab.vxlan_bridge(ns, 100, loopback)[1]
        add_host(the_lab, a1, ha, bridges[a1], "10.0.100.10/24", HA_MAC)
        add_host(the_lab, b1, hb, bridges[b1], "10.0.100.20/24", HB_MAC)
        one = the_lab.evpnd(a1, "a1", config(65000, "10.255.0.1", """
- {address: 10.255.1.1, remote_as: 65001, multihop: 2, update_source: lo, connect_retry: 1}
- {address: 10.255.0.2, remote_as: 65000, update_source: lo, connect_retry: 1}
"""))  # fmt: skip
        two = the_lab.evpnd(a2, "a2", config(65000, "10.255.0.2", """
- {address: 10.255.0.1, remote_as: 65000, update_source: lo, connect_retry: 1}
"""))  # fmt: skip
        far: Evpnd | None = None
        if site_b == "frr":
            the_lab.frr(b1, "b1", FRR_B1)
        else:
            far = the_lab.evpnd(b1, "b1", config(65001, "10.255.1.1", """
- {address: 10.255.0.1, remote_as: 65000, multihop: 2, update_source: lo, connect_retry: 1}
"""))  # fmt: skip
        evpnds = [one] if far is None else [one, far]

        def fdb(ns: str) -> str:
            return the_lab.run(ns, "bridge", "fdb", "show", "dev", "vxlan100")

        # B's host at both VTEPs of site A, next hop B1's loopback (eBGP does not rewrite it)
        for ns in (a1, a2):
            wait_for(f"{HB_MAC} at {ns}", lambda n=ns: f"{HB_MAC} dst 10.255.1.1" in fdb(n), 60)
        wait_for(f"{HA_MAC} at B1", lambda: f"{HA_MAC} dst 10.255.0.1" in fdb(b1), 30)
        the_lab.run(ha, "ping", "-c2", "-W2", "10.0.100.20")

        # the tunnel's 1420 bytes leave 1370 for inner frames; the devices are 1500
        def vni(daemon: Evpnd) -> Any:
            (found,) = daemon.ctl("show", "vni")
            return found

        for daemon in evpnds:
            wait_for("the inner MTU", lambda d=daemon: vni(d)["inner_mtu"] == 1370, 10)
            assert "mtu 1370" in vni(daemon)["mtu_problem"]
        findings = one.ctl("doctor", check=False)["findings"]
        assert [f["check"] for f in findings] == ["mtu"], findings
        assert findings[0]["fix"] == ("ip link set vxlan100 mtu 1370; ip link set br100 mtu 1370")
        # the fix, and the hosts' MTU to match (a bridge cannot fragment)
        for ns, host in ((a1, ha), (b1, hb)):
            for dev in ("vxlan100", bridges[ns]):
                the_lab.run(ns, "ip", "link", "set", dev, "mtu", "1370")
            the_lab.run(host, "ip", "link", "set", "eth0", "mtu", "1370")
        for daemon in evpnds:
            wait_for(
                "doctor content",
                lambda d=daemon: d.ctl("doctor", check=False)["findings"] == [],
                10,
            )
        assert transfer(the_lab, ha, hb) == 4 * 1024 * 1024

        # the tunnel down: B1 is unreachable for A1, B's entries leave its kernel
        the_lab.run(a1, "ip", "link", "set", wg_a, "down")
        wait_for("B's entries gone at A1", lambda: "10.255.1.1" not in fdb(a1), 10)
        checks = [f["check"] for f in one.ctl("doctor", check=False)["findings"]]
        assert "underlay" in checks, checks
        the_lab.run(a1, "ip", "link", "set", wg_a, "up")
        the_lab.run(a1, "ip", "route", "replace", "10.255.1.0/24", "dev", wg_a)
        wait_for("B's entries back at A1", lambda: f"{HB_MAC} dst 10.255.1.1" in fdb(a1), 30)
        assert two.peer_state("10.255.0.1") == "Established"
