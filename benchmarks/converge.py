"""Convergence benchmark: N remote MACs from BGP into the kernel FDB of a real vxlan/bridge.

A client announces N Type 2 routes (VNI 100, RT 65000:100, VTEP 192.168.60.2) to the speaker,
which runs in its own network namespace with vxlan100/br100. Prints the seconds from the first
UPDATE byte until all N MACs are in the kernel (probing a few entries every millisecond, then
counting them all), and the seconds to remove them after the withdrawal, with the speaker's
CPU time for each. In the same run: `bridge -batch` installing the same
entries (the kernel's floor), and FRR doing the same job where it is installed.
Ends with one line of JSON. Needs root.

    .venv/bin/python benchmarks/converge.py [--routes 10000 100000] [--no-frr]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.receive import Client  # noqa: E402
from evpnd.bgp.attributes import AsPath, PathAttributes  # noqa: E402
from evpnd.bgp.update import end_of_rib, pack_announcements, pack_withdrawals  # noqa: E402
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget  # noqa: E402
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher  # noqa: E402
from evpnd.evpn.routes import MacIpRoute  # noqa: E402
from evpnd.kernel import neighbours as nl  # noqa: E402
from evpnd.kernel.netlink import _socket, dump  # noqa: E402
from tests.netns import Lab, sh, wait_for  # noqa: E402

VTEP = "192.168.60.2"
SPEAKER, PEER = "192.168.61.1", "192.168.61.2"
ATTRS = PathAttributes(
    origin=0,
    as_path=AsPath(),
    local_pref=100,
    ext_communities=(Encapsulation(8), RouteTarget(0, 65000, 100)),
    nexthop=socket.inet_aton(VTEP),
)


def routes(count: int) -> list[MacIpRoute]:
    rd = RouteDistinguisher.from_text(f"{VTEP}:1")
    return [
        MacIpRoute(rd, 0, (0x020000000000 + i).to_bytes(6, "big"), b"", ZERO_ESI, 100)
        for i in range(count)
    ]


def macs(count: int) -> list[str]:
    return [(0x020000000000 + i).to_bytes(6, "big").hex(":") for i in range(count)]


def _get_request(ifindex: int, mac: bytes, seq: int) -> bytes:
    """RTM_GETNEIGH for one vxlan FDB entry (`bridge fdb get MAC dev vxlan100 self`)."""
    body = struct.pack("=BxxxiHBB", nl.AF_BRIDGE, ifindex, 0, nl.NTF_SELF, 0)
    attr = struct.pack("=HH", 10, nl.NDA_LLADDR) + mac + b"\0\0"
    return (
        struct.pack("=IHHII", 16 + len(body) + len(attr), nl.RTM_GETNEIGH, 1, seq, 0) + body + attr
    )


def _present(sock: socket.socket, ifindex: int, mac: bytes) -> bool:
    sock.sendall(_get_request(ifindex, mac, 1))
    neighbours, acks, _ = nl.parse(sock.recv(1 << 16))
    return bool(neighbours) and not any(a.error for a in acks)


def _count(ifindex: int) -> int:
    return sum(
        1
        for n in dump(nl.AF_BRIDGE)
        if n.ifindex == ifindex and n.dst and n.mac and n.mac != nl.ZERO_MAC
    )


def wait_entries(
    ifindex: int, probes: list[bytes], want: int, timeout: float, problems: list[str]
) -> float:
    """The time (perf_counter) at which the kernel holds `want` vxlan FDB entries: asks every
    millisecond for a few probe entries (one small netlink request each), then confirms with
    a full count. Counting the notifications instead made the measuring process, reading
    200,000 of them one per recv, slower than the daemon it measured."""
    deadline = time.perf_counter() + timeout
    with contextlib.closing(_socket()) as sock:
        while time.perf_counter() < deadline:
            if all(_present(sock, ifindex, mac) == (want > 0) for mac in probes):
                seen = time.perf_counter()
                if _count(ifindex) == want:
                    return seen
            time.sleep(0.001)
    # Not an exception: a speaker that never gets there (FRR 8.4 has left tens of thousands of
    # entries behind after a withdrawal here) is a result to report, with the time given up.
    problems.append(f"{_count(ifindex)} entries, not {want}, after {timeout:.0f} s")
    return time.perf_counter()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: the work it did, whatever else the
    machine was doing meanwhile (wall-clock figures on a shared 2-core VM vary by a second)."""
    if pid <= 0:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inside(count: int, port: int, ifindex: int, pid: int = 0) -> dict[str, Any]:
    """Runs in the namespace: stream routes to the speaker at `port`, time the kernel."""
    all_routes = routes(count)
    announce = b"".join(pack_announcements(all_routes, ATTRS)) + end_of_rib()
    withdraw = b"".join(pack_withdrawals(all_routes))
    # Not 127/8: FRR will not peer over loopback addresses ("nexthop_set failed").
    client = Client(port, host=SPEAKER, source=PEER)
    problems: list[str] = []
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    client.send(announce)
    probes = [m.mac for m in (all_routes[0], all_routes[count // 2], all_routes[-1])]
    added = wait_entries(ifindex, probes, count, 120, problems) - start
    cpu_added = cpu_seconds(pid) - cpu
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    client.send(withdraw)
    removed = wait_entries(ifindex, probes, 0, 120, problems) - start
    cpu_removed = cpu_seconds(pid) - cpu
    client.close()
    return {
        "converge_s": added,
        "withdraw_s": removed,
        "converge_cpu_s": cpu_added,
        "withdraw_cpu_s": cpu_removed,
        "problems": problems,
    }


def bridge_batch(lab: Lab, ns: str, count: int) -> float:
    path = lab.dir / "batch.txt"
    path.write_text(
        "".join(
            f"fdb add {m} dev vxlan100 dst {VTEP} master self extern_learn\n" for m in macs(count)
        )
    )
    start = time.perf_counter()
    lab.run(ns, "bridge", "-batch", str(path))
    seconds = time.perf_counter() - start
    path.write_text("".join(f"fdb del {m} dev vxlan100 master self\n" for m in macs(count)))
    lab.run(ns, "bridge", "-batch", str(path))
    return seconds


def setup(lab: Lab, name: str) -> tuple[str, int]:
    ns = lab.ns(name)
    for address in (f"{SPEAKER}/32", f"{PEER}/32"):
        lab.run(ns, "ip", "addr", "add", address, "dev", "lo")
    # An underlay in which the remote VTEP is reachable: FRR installs nothing for a VTEP it
    # cannot resolve. (A veth pair whose far end stays unused.)
    lab.run(ns, "ip", "link", "add", "u0", "type", "veth", "peer", "name", "u1")
    lab.run(ns, "ip", "addr", "add", "192.168.60.1/24", "dev", "u0")
    lab.run(ns, "ip", "link", "set", "u0", "up")
    lab.run(ns, "ip", "link", "set", "u1", "up")
    lab.vxlan_bridge(ns, 100, "192.168.60.1")
    ifindex = int(lab.run(ns, "cat", "/sys/class/net/vxlan100/ifindex").strip())
    return ns, ifindex


def run_inside(
    lab: Lab, ns: str, count: int, port: int, ifindex: int, pid: int = 0
) -> dict[str, Any]:
    out = sh(
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        __file__,
        "--inside",
        str(count),
        str(port),
        str(ifindex),
        str(pid),
        timeout=900,
    )
    return json.loads(out.strip().splitlines()[-1])


def evpnd(lab: Lab, count: int) -> tuple[dict[str, float], float]:
    ns, ifindex = setup(lab, f"e{count}")
    daemon = lab.evpnd(
        ns,
        f"evpnd{count}",
        """asn: 65000
router_id: 192.168.60.1
listen: {address: 192.168.61.1, port: 179}
listen_ranges: [{prefix: 192.168.61.0/24, remote_as: 65000}]
""",
    )
    try:
        assert daemon.process is not None
        result = run_inside(lab, ns, count, 179, ifindex, daemon.process.pid)
    except RuntimeError:
        print((lab.dir / f"evpnd{count}" / "evpnd.log").read_text()[-3000:], file=sys.stderr)
        raise
    daemon.stop()  # it would reconcile bridge -batch's extern_learn entries away
    floor = bridge_batch(lab, ns, count)
    return result, floor


def frr(lab: Lab, count: int) -> dict[str, float] | None:
    if not os.path.exists("/usr/lib/frr/bgpd"):
        return None
    ns, ifindex = setup(lab, f"f{count}")
    speaker = lab.frr(
        ns,
        f"frr{count}",
        """frr defaults traditional
router bgp 65000
 bgp router-id 192.168.60.1
 no bgp default ipv4-unicast
 neighbor 192.168.61.2 remote-as 65000
 neighbor 192.168.61.2 passive
 address-family l2vpn evpn
  neighbor 192.168.61.2 activate
  advertise-all-vni
 exit-address-family
""",
    )
    # bgpd refuses connections while the neighbour is Idle: wait until it listens for it.
    wait_for(
        "FRR to accept the peer",
        lambda: (
            speaker.json("show bgp neighbors 192.168.61.2")["192.168.61.2"]["bgpState"] == "Active"
        ),
        60,
    )
    return run_inside(lab, ns, count, 179, ifindex)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-frr", action="store_true")
    parser.add_argument("--inside", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(*args.inside)))
        return
    results: dict[str, float | int | str] = {}
    lab = Lab()
    try:
        for count in args.routes:
            mine, floor = evpnd(lab, count)
            results[f"converge_{count}_s"] = round(mine["converge_s"], 3)
            results[f"withdraw_{count}_s"] = round(mine["withdraw_s"], 3)
            results[f"bridge_batch_{count}_s"] = round(floor, 3)
            results[f"converge_{count}_cpu_s"] = round(mine["converge_cpu_s"], 3)
            results[f"withdraw_{count}_cpu_s"] = round(mine["withdraw_cpu_s"], 3)
            line = (
                f"{count:>7} MACs: evpnd {mine['converge_s']:.3f} s in, "
                f"{mine['withdraw_s']:.3f} s out (CPU {mine['converge_cpu_s']:.2f} s in, "
                f"{mine['withdraw_cpu_s']:.2f} s out); bridge -batch {floor:.3f} s"
            )
            if mine["problems"]:
                line += f" (evpnd: {'; '.join(mine['problems'])})"
                results[f"problems_{count}"] = "; ".join(mine["problems"])
            theirs = None if args.no_frr else frr(lab, count)
            if theirs is not None:
                results[f"frr_converge_{count}_s"] = round(theirs["converge_s"], 3)
                results[f"frr_withdraw_{count}_s"] = round(theirs["withdraw_s"], 3)
                if not any("not 0" not in p for p in theirs["problems"]):
                    # (no ratio for a speaker that never got all the entries in)
                    results[f"vs_frr_ratio_{count}"] = round(
                        theirs["converge_s"] / mine["converge_s"], 2
                    )
                line += f"; FRR {theirs['converge_s']:.3f} s in, {theirs['withdraw_s']:.3f} s out"
                if theirs["problems"]:
                    line += f" (FRR: {'; '.join(theirs['problems'])})"
                    results[f"frr_problems_{count}"] = "; ".join(theirs["problems"])
            print(line)
    finally:
        lab.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
