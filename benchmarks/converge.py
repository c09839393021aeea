"""Convergence benchmark: N remote MACs from BGP into the kernel FDB of a real vxlan/bridge.

A client announces N Type 2 routes (VNI 100, RT 65000:100, VTEP 192.168.60.2; with `--ips`
each with an IPv4 address too, which adds an ARP suppression entry on br100) to the speaker,
which runs in its own network namespace with vxlan100/br100. Prints the seconds from the first
UPDATE byte until all N MACs are in the kernel (probing a few entries every millisecond, then
reading every entry back one by one — a dump of a large FDB costs minutes, see
docs/kernel.md), and the seconds to remove them after the withdrawal, with the speaker's CPU
time for each and its memory with the table in. With the table in, evpnctl is asked
`show summary` every 50 ms for 12 s (more than one periodic pass of the kernel audit): the
slowest answer says whether the event loop stays free at that size. In the same run:
`bridge -batch` installing and removing the same entries (the kernel's floor), and FRR doing
the same job where it is installed. Ends with one line of JSON. Needs root.

    .venv/bin/python benchmarks/converge.py [--routes 10000 100000 1000000] [--ips] [--no-frr]
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
from evpnd.control.client import request  # noqa: E402
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget  # noqa: E402
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher  # noqa: E402
from evpnd.evpn.routes import MacIpRoute  # noqa: E402
from evpnd.kernel import neighbours as nl  # noqa: E402
from evpnd.kernel.netlink import PROBE_BATCH, _socket  # noqa: E402
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


def routes(count: int, ips: bool = False) -> list[MacIpRoute]:
    rd = RouteDistinguisher.from_text(f"{VTEP}:1")
    return [
        MacIpRoute(
            rd,
            0,
            (0x020000000000 + i).to_bytes(6, "big"),
            (0x0A000001 + i).to_bytes(4, "big") if ips else b"",
            ZERO_ESI,
            100,
        )
        for i in range(count)
    ]


def macs(count: int) -> list[str]:
    return [(0x020000000000 + i).to_bytes(6, "big").hex(":") for i in range(count)]


def _present(sock: socket.socket, probe: bytes) -> bool:
    sock.sendall(probe)
    return any(found is not None for _, found in nl.answers(sock.recv(1 << 16)))


def _count(requests: list[bytes]) -> int:
    """How many of the entries asked for the kernel has: the requests in batches, the answers
    counted by their message type (found: RTM_NEWNEIGH; not found: an error)."""
    found = 0
    with contextlib.closing(_socket()) as sock:
        for start in range(0, len(requests), PROBE_BATCH):
            chunk = requests[start : start + PROBE_BATCH]
            sock.sendall(b"".join(chunk))
            missing = len(chunk)
            while missing:
                data = sock.recv(1 << 20)
                pos = 0
                while pos + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, pos)
                    found += kind == nl.RTM_NEWNEIGH
                    missing -= 1
                    pos += (length + 3) & ~3
    return found


def wait_entries(
    requests: list[bytes], probes: list[bytes], want: int, timeout: float, problems: list[str]
) -> float:
    """The time (perf_counter) at which the kernel holds `want` of the entries `requests` ask
    for: asks every millisecond for a few `probes`, then confirms by asking for every entry.
    Counting the notifications instead made the measuring process, reading 200,000 of them
    one per recv, slower than the daemon it measured; a dump costs minutes at a million."""
    deadline = time.perf_counter() + timeout
    with contextlib.closing(_socket()) as sock:
        while time.perf_counter() < deadline:
            if all(_present(sock, probe) == (want > 0) for probe in probes):
                seen = time.perf_counter()
                if _count(requests) == want:
                    return seen
            time.sleep(0.001)
    # Not an exception: a speaker that never gets there (FRR 8.4 has left tens of thousands of
    # entries behind after a withdrawal here) is a result to report, with the time given up.
    problems.append(f"{_count(requests)} entries, not {want}, after {timeout:.0f} s")
    return time.perf_counter()


def answers_within(path: str, seconds: float) -> tuple[float, float]:
    """evpnctl's `show summary` every 50 ms for `seconds`: the slowest and the median answer."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        request(path, "show summary")
        times.append(time.perf_counter() - start)
        time.sleep(0.05)
    times.sort()
    return times[-1], times[len(times) // 2]


def rss_mb(pids: list[int], problems: list[str] | None = None) -> float:
    """The processes' resident memory together; one that has exited is a problem to report."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            if problems is not None:
                problems.append(f"process {pid} exited")
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: the work it did, whatever else the
    machine was doing meanwhile (wall-clock figures on a shared 2-core VM vary by a second)."""
    if pid <= 0:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inside(
    count: int, port: int, ifindex: int, pids: list[int], ips: bool, control: str, bridge: int
) -> dict[str, Any]:
    """Runs in the namespace: stream routes to the speaker at `port`, time the kernel.
    `pids`: the speaker's processes (CPU and memory); `control`: evpnd's control socket."""
    pid = pids[0] if pids else 0
    all_routes = routes(count, ips)
    announce = b"".join(pack_announcements(all_routes, ATTRS)) + end_of_rib()
    withdraw = b"".join(pack_withdrawals(all_routes))
    # Not 127/8: FRR will not peer over loopback addresses ("nexthop_set failed").
    client = Client(port, host=SPEAKER, source=PEER)
    client.sock.settimeout(None)  # a million routes take longer than its 30 s to be read
    problems: list[str] = []
    cpu = cpu_seconds(pid)
    idle = rss_mb(pids) if pids else 0.0
    start = time.perf_counter()
    client.send(announce)
    requests = [
        nl.fdb_get_request(i + 1, ifindex, r.mac, master=False) for i, r in enumerate(all_routes)
    ]
    if ips:
        requests += [
            nl.neigh_get_request(count + i + 1, bridge, r.ip) for i, r in enumerate(all_routes)
        ]
    probes = [requests[i] for i in (0, count // 2, len(requests) - 1)]
    timeout = 120 + count / 5000
    added = wait_entries(requests, probes, len(requests), timeout, problems) - start
    cpu_added = cpu_seconds(pid) - cpu
    memory = rss_mb(pids, problems) if pids else 0.0
    slowest = median = 0.0
    audit: dict[str, Any] = {}
    if control:
        slowest, median = answers_within(control, 12.0)
        audit = request(control, "show kernel")["audit"]
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    client.send(withdraw)
    removed = wait_entries(requests, probes, 0, timeout, problems) - start
    cpu_removed = cpu_seconds(pid) - cpu
    client.close()
    return {
        "rss_mb": memory,
        "rss_added_mb": memory - idle,
        "ctl_slowest_s": slowest,
        "ctl_median_s": median,
        "audit_slice": audit.get("last_slice", 0),
        "audit_slice_s": audit.get("last_slice_s", 0.0),
        "converge_s": added,
        "withdraw_s": removed,
        "converge_cpu_s": cpu_added,
        "withdraw_cpu_s": cpu_removed,
        "problems": problems,
    }


def bridge_batch(lab: Lab, ns: str, count: int) -> tuple[float, float]:
    """Seconds for `bridge -batch` to add the entries, and to remove them."""
    path = lab.dir / "batch.txt"
    path.write_text(
        "".join(
            f"fdb add {m} dev vxlan100 dst {VTEP} master self extern_learn\n" for m in macs(count)
        )
    )
    start = time.perf_counter()
    lab.run(ns, "bridge", "-batch", str(path))
    added = time.perf_counter() - start
    path.write_text("".join(f"fdb del {m} dev vxlan100 master self\n" for m in macs(count)))
    start = time.perf_counter()
    lab.run(ns, "bridge", "-batch", str(path))
    return added, time.perf_counter() - start


def setup(lab: Lab, name: str, ips: bool) -> tuple[str, int, int]:
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
    if ips:  # an SVI with ARP/ND suppression, for the routes' IPs
        lab.run(ns, "ip", "link", "set", "vxlan100", "type", "bridge_slave", "neigh_suppress", "on")
        lab.run(ns, "ip", "addr", "add", "10.255.255.254/8", "dev", "br100")
    ifindex = int(lab.run(ns, "cat", "/sys/class/net/vxlan100/ifindex").strip())
    bridge = int(lab.run(ns, "cat", "/sys/class/net/br100/ifindex").strip())
    return ns, ifindex, bridge


def run_inside(lab: Lab, ns: str, **arguments: Any) -> dict[str, Any]:
    out = sh(
        "ip", "netns", "exec", ns, sys.executable, __file__, "--inside", json.dumps(arguments),
        timeout=3600,
    )  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def evpnd(lab: Lab, count: int, ips: bool) -> tuple[dict[str, Any], tuple[float, float]]:
    ns, ifindex, bridge = setup(lab, f"e{count}", ips)
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
        result = run_inside(
            lab, ns, count=count, port=179, ifindex=ifindex, pids=[daemon.process.pid],
            ips=ips, control=daemon.socket, bridge=bridge,
        )  # fmt: skip
    except RuntimeError:
        print((lab.dir / f"evpnd{count}" / "evpnd.log").read_text()[-3000:], file=sys.stderr)
        raise
    daemon.stop()  # it would reconcile bridge -batch's extern_learn entries away
    floor = bridge_batch(lab, ns, count)
    return result, floor


def frr(lab: Lab, count: int, ips: bool) -> dict[str, Any] | None:
    if not os.path.exists("/usr/lib/frr/bgpd"):
        return None
    ns, ifindex, bridge = setup(lab, f"f{count}", ips)
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
    pids = [int((speaker.home / f"{d}.pid").read_text()) for d in ("bgpd", "zebra")]
    return run_inside(
        lab, ns, count=count, port=179, ifindex=ifindex, pids=pids, ips=ips, control="",
        bridge=bridge,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--ips", action="store_true", help="each MAC with an IPv4 address")
    parser.add_argument("--no-frr", action="store_true")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(**json.loads(args.inside))))
        return
    results: dict[str, float | int | str] = {}
    lab = Lab()
    try:
        for count in args.routes:
            mine, floor = evpnd(lab, count, args.ips)
            results[f"converge_{count}_s"] = round(mine["converge_s"], 3)
            results[f"withdraw_{count}_s"] = round(mine["withdraw_s"], 3)
            results[f"bridge_batch_{count}_s"] = round(floor[0], 3)
            results[f"bridge_batch_withdraw_{count}_s"] = round(floor[1], 3)
            results[f"converge_{count}_cpu_s"] = round(mine["converge_cpu_s"], 3)
            results[f"withdraw_{count}_cpu_s"] = round(mine["withdraw_cpu_s"], 3)
            results[f"rss_{count}_mb"] = round(mine["rss_mb"], 1)
            # what the table added, per route (the idle daemon's ~45 MB left out)
            results[f"rss_per_route_{count}_bytes"] = round(mine["rss_added_mb"] * 2**20 / count)
            results[f"ctl_slowest_{count}_s"] = round(mine["ctl_slowest_s"], 3)
            results[f"ctl_median_{count}_s"] = round(mine["ctl_median_s"], 4)
            # one periodic pass's slice of the kernel audit: entries read back, and how long
            results[f"audit_slice_{count}_entries"] = mine["audit_slice"]
            results[f"audit_slice_{count}_s"] = mine["audit_slice_s"]
            line = (
                f"{count:>7} MACs: evpnd {mine['converge_s']:.3f} s in, "
                f"{mine['withdraw_s']:.3f} s out (CPU {mine['converge_cpu_s']:.2f} s in, "
                f"{mine['withdraw_cpu_s']:.2f} s out), {mine['rss_mb']:.0f} MB, evpnctl "
                f"{mine['ctl_slowest_s'] * 1000:.0f} ms at worst; "
                f"bridge -batch {floor[0]:.3f} s in, {floor[1]:.3f} s out"
            )
            if mine["problems"]:
                line += f" (evpnd: {'; '.join(mine['problems'])})"
                results[f"problems_{count}"] = "; ".join(mine["problems"])
            theirs = None if args.no_frr else frr(lab, count, args.ips)
            if theirs is not None:
                results[f"frr_converge_{count}_s"] = round(theirs["converge_s"], 3)
                results[f"frr_withdraw_{count}_s"] = round(theirs["withdraw_s"], 3)
                results[f"frr_rss_{count}_mb"] = round(theirs["rss_mb"], 1)
                results[f"frr_rss_per_route_{count}_bytes"] = round(
                    theirs["rss_added_mb"] * 2**20 / count
                )
                if not any("not 0" not in p for p in theirs["problems"]):
                    # (no ratio for a speaker that never got all the entries in)
                    results[f"vs_frr_ratio_{count}"] = round(
                        theirs["converge_s"] / mine["converge_s"], 2
                    )
                line += (
                    f"; FRR {theirs['converge_s']:.3f} s in, {theirs['withdraw_s']:.3f} s out, "
                    f"{theirs['rss_mb']:.0f} MB"
                )
                if theirs["problems"]:
                    line += f" (FRR: {'; '.join(theirs['problems'])})"
                    results[f"frr_problems_{count}"] = "; ".join(theirs["problems"])
            print(line)
    finally:
        lab.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
