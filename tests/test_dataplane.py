"""The data plane against the real kernel: two evpnd VTEPs, a host behind each, in network
namespaces. Hosts reach each other over VXLAN, the entries are FRR's, and the kernel comes back
to what BGP says after someone deletes an entry or evpnd restarts."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.netns import LAB, ROOT, Evpnd, Lab, Ping, lab, sh, wait_for

pytestmark = LAB

H1_MAC, H2_MAC = "02:00:00:00:01:11", "02:00:00:00:01:12"


@dataclass
class Fabric:
    lab: Lab
    v1: str
    v2: str
    h1: str
    h2: str
    e1: Evpnd
    e2: Evpnd


def vtep_config(me: str, other: str) -> str:
    return f"""asn: 65000
router_id: {me}
listen: {{address: "{me}", port: 179}}
graceful_restart: {{restart_time: 30}}
metrics: {{address: "{me}", port: 9179}}
neighbors:
  - {{address: {other}, remote_as: 65000, connect_retry: 1}}
"""


def add_host(the_lab: Lab, vtep: str, host: str, bridge: str, ip: str, mac: str) -> None:
    port = f"p{the_lab.tag}{host[-2:]}"
    the_lab.run(
        vtep, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host
    )
    the_lab.run(vtep, "ip", "link", "set", port, "master", bridge)
    the_lab.run(vtep, "ip", "link", "set", port, "up")
    the_lab.run(host, "ip", "link", "set", "eth0", "address", mac)
    the_lab.run(host, "ip", "addr", "add", ip, "dev", "eth0")
    the_lab.run(host, "ip", "link", "set", "eth0", "up")


def two_vteps(the_lab: Lab, underlay: str) -> tuple[str, str, str, str]:
    """VTEPs v1 and v2 (underlay `{underlay}.1` and `.2`) with VNI 100, its SVI, and a host
    behind each (h1: 10.0.100.11, h2: 10.0.100.12)."""
    v1, v2, h1, h2 = (the_lab.ns(n) for n in ("v1", "v2", "h1", "h2"))
    the_lab.link(v1, f"{underlay}.1/24", v2, f"{underlay}.2/24")
    for vtep, local, svi in (
        (v1, f"{underlay}.1", "10.0.100.1/24"),
        (v2, f"{underlay}.2", "10.0.100.2/24"),
    ):
        _, bridge = the_lab.vxlan_bridge(vtep, 100, local)
        the_lab.run(vtep, "ip", "addr", "add", svi, "dev", bridge)
    add_host(the_lab, v1, h1, "br100", "10.0.100.11/24", H1_MAC)
    add_host(the_lab, v2, h2, "br100", "10.0.100.12/24", H2_MAC)
    return v1, v2, h1, h2


@pytest.fixture
def fabric() -> Iterator[Fabric]:
    with lab() as the_lab:
        v1, v2, h1, h2 = two_vteps(the_lab, "192.168.50")
        e1 = the_lab.evpnd(v1, "e1", vtep_config("192.168.50.1", "192.168.50.2"))
        e2 = the_lab.evpnd(v2, "e2", vtep_config("192.168.50.2", "192.168.50.1"))
        wait_for("Established", lambda: e1.peer_state("192.168.50.2") == "Established", 30)
        # Each host talks to its VTEP's SVI once, so the VTEP learns its MAC/IP binding.
        the_lab.run(h1, "ping", "-c1", "-W1", "10.0.100.1")
        the_lab.run(h2, "ping", "-c1", "-W1", "10.0.100.2")
        yield Fabric(the_lab, v1, v2, h1, h2, e1, e2)


def fdb(fab: Fabric, ns: str) -> str:
    return fab.lab.run(ns, "bridge", "fdb", "show", "dev", "vxlan100")


def neigh(fab: Fabric, ns: str) -> str:
    return fab.lab.run(ns, "ip", "neigh", "show", "dev", "br100")


def converged(fab: Fabric) -> bool:
    table = fdb(fab, fab.v1)
    return (
        f"{H2_MAC} dst 192.168.50.2 self extern_learn" in table
        and "10.0.100.12 lladdr " + H2_MAC in neigh(fab, fab.v1)
    )


def test_hosts_reach_each_other_with_frr_shaped_entries(fabric: Fabric) -> None:
    wait_for("the remote host's entries", lambda: converged(fabric), 30)
    table = fdb(fabric, fabric.v1)
    # exactly the reference's entries (docs/frr-reference.md)
    # (iproute2 prints the flags in another order than the reference: both are the same entry)
    assert f"{H2_MAC} extern_learn master br100" in table
    assert f"{H2_MAC} dst 192.168.50.2 self extern_learn" in table
    assert "00:00:00:00:00:00 dst 192.168.50.2 self permanent" in table
    neighbours = neigh(fabric, fabric.v1)
    assert f"10.0.100.12 lladdr {H2_MAC} extern_learn NOARP" in neighbours
    # the VTEP's own MACs, the host's local entry and multicast MACs are not remote entries
    assert f"{H1_MAC} dst" not in table
    assert "33:33:" not in table
    fabric.lab.run(fabric.h1, "ping", "-c2", "-W2", "10.0.100.12")
    routes = fabric.e2.routes(type="2")
    local = [r for r in routes if r["source"] == "local"]
    assert {r["mac"] for r in local} == {H2_MAC}
    assert {r["ip"] for r in local} == {None, "10.0.100.12"}
    (vni,) = fabric.e1.ctl("show", "vni")
    assert (vni["vni"], vni["vxlan"], vni["bridge"], vni["vtep"]) == (
        100,
        "vxlan100",
        "br100",
        "192.168.50.1",
    )
    assert vni["remote_vteps"] == ["192.168.50.2"] and vni["problems"] == []
    assert vni["svi_addresses"] == ["10.0.100.1/24"] and vni["local_macs"] == 1
    macs = {(m["mac"], m["type"], m["vtep"]) for m in fabric.e1.ctl("show", "mac")}
    assert macs == {(H1_MAC, "local", "192.168.50.1"), (H2_MAC, "remote", "192.168.50.2")}
    table = sh(sys.executable, "-m", "evpnd.control.cli", "-s", fabric.e1.socket, "show", "mac")
    assert H2_MAC in table and "remote" in table

    # Prometheus: scraped and parsed with prometheus-client's own parser

    def scrape() -> str:
        return fabric.lab.run(
            fabric.v1,
            sys.executable,
            "-c",
            "import urllib.request; print("
            "urllib.request.urlopen('http://192.168.50.1:9179/metrics').read()"
            ".decode())",
        )

    def with_underlay() -> str:
        # the underlay is looked at once a second: its figures come with the next look
        text = scrape()
        return text if 'evpnd_vni_inner_mtu_bytes{vni="100"}' in text else ""

    text = wait_for("the underlay's figures", with_underlay, 10)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("evpnd_peer_up", (("peer", "192.168.50.2"),))] == 1
    assert samples[("evpnd_vni_problems", (("vni", "100"),))] == 0
    assert samples[("evpnd_vni_remote_vteps", (("vni", "100"),))] == 1
    # the lab's 1500-byte link carries inner frames of 1450; the vxlan device is 1500
    assert samples[("evpnd_vni_inner_mtu_bytes", (("vni", "100"),))] == 1450
    assert samples[("evpnd_vni_mtu_problem", (("vni", "100"),))] == 1
    assert samples[("evpnd_vteps_unreachable", ())] == 0
    assert samples[("evpnd_vni_remote_macs", (("vni", "100"),))] == 1
    assert samples[("evpnd_netlink_operations_total", ())] >= 3
    peer = (("peer", "192.168.50.2"),)
    assert samples[("evpnd_vni_remote_neighbours", (("vni", "100"),))] == 1
    assert samples[("evpnd_vni_local_neighbours", (("vni", "100"),))] == 1
    assert samples[("evpnd_peer_messages_received_total", peer)] >= 3  # OPEN, KEEPALIVE, UPDATE
    assert samples[("evpnd_peer_updates_sent_total", peer)] >= 2  # routes and End-of-RIB
    assert samples[("evpnd_peer_routes_announced_total", peer)] >= 3
    assert samples[("evpnd_peer_routes_accepted", (*peer, ("type", "2")))] == 2
    assert samples[("evpnd_peer_routes_accepted", (*peer, ("type", "3")))] == 1
    assert samples[("evpnd_peer_routes_advertised_by_type", (*peer, ("type", "3")))] == 1
    # the peer's routes reached the kernel: at least one batch timed, in order of buckets
    assert samples[("evpnd_update_to_kernel_seconds_count", ())] >= 1
    assert (
        samples[("evpnd_update_to_kernel_seconds_bucket", (("le", "+Inf"),))]
        == (samples[("evpnd_update_to_kernel_seconds_count", ())])
    )
    # every series the shipped Grafana dashboard queries exists
    dashboard = (ROOT / "contrib" / "grafana" / "evpnd-dashboard.json").read_text()
    queried = set(re.findall(r"evpnd_[a-z0-9_]+", dashboard)) - {"evpnd_overview"}
    families = list(text_string_to_metric_families(text))
    # (a family with no series here, like the L3VNI ones on an L2-only VTEP, still counts)
    exposed = {name for name, _ in samples} | {f.name for f in families}
    assert queried and queried <= exposed, queried - exposed


def test_check_names_the_vxlan_devices_advertise_all_vni_finds(fabric: Fabric) -> None:
    """`evpnd --check` with advertise_all_vni: not "0 VNIs", but the devices it will use."""
    out = fabric.lab.run(
        fabric.v1,
        sys.executable,
        "-m",
        "evpnd.cli",
        "--check",
        "--config",
        str(fabric.e1.home / "evpnd.yaml"),
    )
    assert "every vxlan device in a bridge (advertise_all_vni): vxlan100 (VNI 100)" in out


def test_an_entry_deleted_by_hand_comes_back(fabric: Fabric) -> None:
    wait_for("the remote host's entries", lambda: converged(fabric), 30)
    fabric.lab.run(fabric.v1, "bridge", "fdb", "del", H2_MAC, "dev", "vxlan100", "master", "self")
    fabric.lab.run(fabric.v1, "ip", "neigh", "del", "10.0.100.12", "dev", "br100")
    wait_for("the repair", lambda: converged(fabric), 15)
    # the repair's log line names the entries it wrote again, in their text forms
    lines = [json.loads(line) for line in fabric.e1.log.read_text().splitlines() if line[:1] == "{"]
    repairs = [line for line in lines if line.get("event") == "kernel repaired"]
    named = " ".join(line["repaired"] for line in repairs)
    assert f"fdb vxlan100 {H2_MAC} -> 192.168.50.2" in named, repairs
    assert f"neigh br100 10.0.100.12 -> {H2_MAC}" in named, repairs


def test_restarting_evpnd_does_not_interrupt_traffic(fabric: Fabric) -> None:
    wait_for("the remote host's entries", lambda: converged(fabric), 30)
    ping = Ping(fabric.lab, fabric.h1, "10.0.100.12", count=100, interval=0.05)
    fabric.e1.stop(signal.SIGTERM)
    fabric.e1.start()
    out = ping.output()
    assert " 0% packet loss" in out, out
    assert converged(fabric)


def test_vnis_come_and_go_at_run_time(fabric: Fabric) -> None:
    wait_for("the remote host's entries", lambda: converged(fabric), 30)
    for ns, local in ((fabric.v1, "192.168.50.1"), (fabric.v2, "192.168.50.2")):
        fabric.lab.vxlan_bridge(ns, 200, local)

    def flood(ns: str) -> str:
        return fabric.lab.run(ns, "bridge", "fdb", "show", "dev", "vxlan200")

    wait_for(
        "VNI 200's flood entry",
        lambda: "00:00:00:00:00:00 dst 192.168.50.1 self permanent" in flood(fabric.v2),
        15,
    )
    assert [r["vni"] for r in fabric.e2.routes(type="3") if r["source"] == "local"] == [100, 200]
    fabric.lab.run(fabric.v1, "ip", "link", "del", "vxlan200")
    wait_for("the flood entry to go", lambda: "dst 192.168.50.1" not in flood(fabric.v2), 15)
    assert "vni gone" in fabric.e1.log.read_text()
    assert converged(fabric)  # VNI 100 untouched
    fabric.lab.run(fabric.h1, "ping", "-c1", "-W2", "10.0.100.12")

    # A VNI set up without neigh_suppress and with learning: programmed, and reported.
    run = fabric.lab.run
    run(
        fabric.v1,
        "ip",
        "link",
        "add",
        "vxlan300",
        "type",
        "vxlan",
        "id",
        "300",
        "dstport",
        "4789",
        "local",
        "192.168.50.1",
    )
    run(fabric.v1, "ip", "link", "add", "br300", "type", "bridge")
    run(fabric.v1, "ip", "link", "set", "vxlan300", "master", "br300")
    run(fabric.v1, "ip", "link", "set", "vxlan300", "up")
    run(fabric.v1, "ip", "link", "set", "br300", "up")
    vni = wait_for(
        "VNI 300",
        lambda: next((v for v in fabric.e1.ctl("show", "vni") if v["vni"] == 300), None),
        15,
    )
    assert len(vni["problems"]) == 2 and "neigh_suppress" in vni["problems"][0]
    assert "learning is on" in fabric.e1.log.read_text()


def test_arp_for_a_remote_host_never_crosses_the_tunnel(fabric: Fabric) -> None:
    """neigh_suppress answers ARP from the neighbour entry evpnd installed: with a capture on
    the underlay, a host's ARP for the remote host's IP is not seen there, and ping works."""
    wait_for("the remote host's entries", lambda: converged(fabric), 30)
    dev = fabric.lab.run(fabric.v1, "ip", "-o", "addr", "show", "to", "192.168.50.1").split()[1]
    # One line per frame on the underlay, printed (and flushed, -l) as it is captured, each
    # decoded through VXLAN: its protocol and, for ARP, the address asked for.
    capture = subprocess.Popen(
        ["ip", "netns", "exec", fabric.v1, "tshark", "-l", "-i", dev, "-f", "udp port 4789",
         "-T", "fields", "-e", "_ws.col.Protocol", "-e", "arp.dst.proto_ipv4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    fabric.lab.processes.append(capture)  # type: ignore[arg-type]
    assert capture.stdout is not None and capture.stderr is not None
    # tshark says so once the interface is open and the capture running (an empty line: it
    # ended without starting)
    line = "-"
    while line and "Capturing on" not in line:
        line = capture.stderr.readline()
    assert line, "tshark did not start capturing"
    frames: list[str] = []

    def read() -> None:
        for frame in capture.stdout:  # type: ignore[union-attr]
            frames.append(frame)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    fabric.lab.run(fabric.h1, "ip", "neigh", "flush", "all")
    fabric.lab.run(fabric.h1, "ping", "-c2", "-W2", "10.0.100.12")
    # Both echo requests and both replies crossed the tunnel and were captured: an ARP request
    # for the remote host, which would have come before them, would have been captured too.
    wait_for("the pings on the underlay", lambda: sum("ICMP" in f for f in frames) >= 4, 15)
    capture.terminate()
    reader.join(10)
    arp = [f for f in frames if f.startswith("ARP")]
    assert not [f for f in arp if "10.0.100.12" in f], arp  # answered locally, never tunnelled


def test_a_host_that_moves_is_followed(fabric: Fabric) -> None:
    """RFC 7432 §15: h1 moves from VTEP 1 to VTEP 2 (a live migration: it stops at the old
    home, whose bridge still has its entry, and speaks at the new one); VTEP 2 announces its
    MAC with sequence 1, VTEP 1 withdraws its own and points its FDB at VTEP 2."""
    wait_for("the remote host's entries", lambda: converged(fabric), 30)
    fabric.lab.run(fabric.h1, "ip", "link", "set", "eth0", "down")
    moved_host = fabric.lab.ns("h1b")
    add_host(fabric.lab, fabric.v2, moved_host, "br100", "10.0.100.11/24", H1_MAC)
    fabric.lab.run(moved_host, "ping", "-c1", "-W2", "10.0.100.2")  # speaks at its new home

    def moved() -> bool:
        routes = fabric.e2.routes(type="2")
        local = [r for r in routes if r["source"] == "local" and r["mac"] == H1_MAC]
        return bool(local) and all(r["seq"] == 1 for r in local)

    wait_for("VTEP 2 to announce h1 with sequence 1", moved, 15)
    wait_for(
        "VTEP 1 to point at VTEP 2",
        lambda: f"{H1_MAC} dst 192.168.50.2 self extern_learn" in fdb(fabric, fabric.v1),
        15,
    )
    assert not [
        r for r in fabric.e1.routes(type="2") if r["source"] == "local" and r["mac"] == H1_MAC
    ]
    fabric.lab.run(fabric.h2, "ping", "-c2", "-W2", "10.0.100.11")
    fabric.lab.run(moved_host, "ping", "-c2", "-W2", "10.0.100.12")


def test_a_late_withdrawal_leaves_a_migrated_vms_static_entries_alone(fabric: Fabric) -> None:
    """VM live migration: the VM stops at VTEP 1, the orchestrator adds static FDB and
    neighbour entries for it at VTEP 2, and only then does VTEP 1's withdrawal arrive (its
    evpnd is held with SIGSTOP meanwhile). The static entries stay and VTEP 2 keeps advertising
    the VM (FRR deletes them: FRRouting/frr#21472)."""
    wait_for("the remote host's entries", lambda: converged(fabric), 30)
    lab_ = fabric.lab
    assert fabric.e1.process is not None
    fabric.e1.process.send_signal(signal.SIGSTOP)
    try:
        lab_.run(fabric.h1, "ip", "link", "set", "eth0", "down")
        lab_.run(fabric.v2, "ip", "link", "add", "vm0", "type", "veth", "peer", "name", "vm0p")
        lab_.run(fabric.v2, "ip", "link", "set", "vm0", "master", "br100")
        lab_.run(fabric.v2, "ip", "link", "set", "vm0", "up")
        lab_.run(fabric.v2, "ip", "link", "set", "vm0p", "up")
        lab_.run(fabric.v2, "bridge", "fdb", "replace", H1_MAC, "dev", "vm0", "master", "static")
        lab_.run(
            fabric.v2,
            "ip",
            "neigh",
            "replace",
            "10.0.100.11",
            "lladdr",
            H1_MAC,
            "dev",
            "br100",
            "nud",
            "permanent",
        )
        wait_for(
            "VTEP 2 to announce the VM as static",
            lambda: any(
                r["source"] == "local" and r["mac"] == H1_MAC and r["sticky"]
                for r in fabric.e2.routes(type="2")
            ),
            10,
        )
    finally:
        fabric.e1.process.send_signal(signal.SIGCONT)

    def v2_entries() -> tuple[bool, bool]:
        table = lab_.run(fabric.v2, "bridge", "fdb", "show", "dev", "vm0")
        neighbours = lab_.run(fabric.v2, "ip", "neigh", "show", "dev", "br100")
        return (
            f"{H1_MAC} " in table and "static" in table,
            f"10.0.100.11 lladdr {H1_MAC} PERMANENT" in neighbours,
        )

    wait_for(
        "VTEP 1's late withdrawal",
        lambda: (
            not any(
                r["source"] == "local" and r["mac"] == H1_MAC for r in fabric.e1.routes(type="2")
            )
        ),
        15,
    )
    # VTEP 2 has taken the withdrawal in (VTEP 1's path is gone from its RIB) and its kernel
    # equals what it wants: whatever the withdrawal was going to do to the kernel is done.
    wait_for(
        "VTEP 2 to drop VTEP 1's path",
        lambda: (
            not any(
                r["source"] == "192.168.50.1" and r["mac"] == H1_MAC
                for r in fabric.e2.routes(type="2")
            )
        ),
        15,
    )
    wait_for(
        "VTEP 2's kernel in sync", lambda: not fabric.e2.ctl("show", "kernel")["differences"], 15
    )
    assert v2_entries() == (True, True)
    assert any(
        r["source"] == "local" and r["mac"] == H1_MAC and r["sticky"]
        for r in fabric.e2.routes(type="2")
    )
    wait_for(
        "VTEP 1 to point at the new home",
        lambda: f"{H1_MAC} dst 192.168.50.2 self extern_learn" in fdb(fabric, fabric.v1),
        15,
    )
