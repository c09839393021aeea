"""Convergence benchmark: N remote MACs from BGP into the kernel FDB of a real vxlan/bridge.

A client announces N Type 2 routes (VNI 100, RT 65000:100, VTEP 192.168.60.2) to the speaker,
which runs in its own network namespace with vxlan100/br100. Prints the seconds from the first
UPDATE byte until all N MACs are in the kernel (counted from netlink events), and the seconds
to remove them after the withdrawal. In the same run: `bridge -batch` installing the same
entries (the kernel's floor), and FRR doing the same job where it is installed.
Ends with one line of JSON. Needs root.

    .venv/bin/python benchmarks/converge.py [--routes 10000 100000] [--no-frr]
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.receive import Client  # noqa: E402
from evpnd.bgp.attributes import AsPath, PathAttributes  # noqa: E402
from evpnd.bgp.update import end_of_rib, pack_announcements, pack_withdrawals  # noqa: E402
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget  # noqa: E402
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher  # noqa: E402
from evpnd.evpn.routes import MacIpRoute  # noqa: E402
from evpnd.kernel import neighbours as nl  # noqa: E402
from evpnd.kernel.netlink import RTNLGRP_NEIGH, _socket, dump  # noqa: E402
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


def count_events(sock: socket.socket, ifindex: int, kind: int, want: int, timeout: float) -> float:
    """The time (perf_counter) when the `want`th vxlan FDB entry event of `kind` was read
    (the vxlan driver's own notifications, NTF_SELF with the VTEP: one per MAC)."""
    seen: set[bytes] = set()
    deadline = time.perf_counter() + timeout
    sock.settimeout(0.5)
    while len(seen) < want:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(seen)} of {want} entries after {timeout} s")
        try:
            data = sock.recv(1 << 22)
        except TimeoutError:
            continue
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            # events were lost: count what the kernel has instead, from now on
            return poll_dump(ifindex, kind, want, deadline)
        neighbours, _, _ = nl.parse(data)
        for n in neighbours:
            if (
                n.kind == kind
                and n.ifindex == ifindex
                and n.flags & nl.NTF_SELF
                and n.mac
                and n.mac != nl.ZERO_MAC
            ):
                seen.add(n.mac)
    return time.perf_counter()


def poll_dump(ifindex: int, kind: int, want: int, deadline: float) -> float:
    while time.perf_counter() < deadline:
        entries = {
            n.mac
            for n in dump(nl.AF_BRIDGE)
            if n.ifindex == ifindex and n.dst and n.mac and n.mac != nl.ZERO_MAC
        }
        if (kind == nl.RTM_NEWNEIGH and len(entries) >= want) or (
            kind == nl.RTM_DELNEIGH and not entries
        ):
            return time.perf_counter()
        time.sleep(0.02)
    raise TimeoutError("the kernel did not get there in time")


def inside(count: int, port: int, ifindex: int) -> dict[str, float]:
    """Runs in the namespace: stream routes to the speaker at `port`, time the kernel."""
    events = _socket((RTNLGRP_NEIGH,))
    events.setsockopt(socket.SOL_SOCKET, 33, 1 << 29)  # SO_RCVBUFFORCE: 200,000 events
    announce = b"".join(pack_announcements(routes(count), ATTRS)) + end_of_rib()
    withdraw = b"".join(pack_withdrawals(routes(count)))
    # Not 127/8: FRR will not peer over loopback addresses ("nexthop_set failed").
    client = Client(port, host=SPEAKER, source=PEER)
    start = time.perf_counter()
    client.send(announce)
    added = count_events(events, ifindex, nl.RTM_NEWNEIGH, count, 120) - start
    start = time.perf_counter()
    client.send(withdraw)
    removed = count_events(events, ifindex, nl.RTM_DELNEIGH, count, 120) - start
    client.close()
    return {"converge_s": added, "withdraw_s": removed}


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


def run_inside(lab: Lab, ns: str, count: int, port: int, ifindex: int) -> dict[str, float]:
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
        result = run_inside(lab, ns, count, 179, ifindex)
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
    parser.add_argument("--inside", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(*args.inside)))
        return
    results: dict[str, float | int] = {}
    lab = Lab()
    try:
        for count in args.routes:
            mine, floor = evpnd(lab, count)
            results[f"converge_{count}_s"] = round(mine["converge_s"], 3)
            results[f"withdraw_{count}_s"] = round(mine["withdraw_s"], 3)
            results[f"bridge_batch_{count}_s"] = round(floor, 3)
            line = (
                f"{count:>7} MACs: evpnd {mine['converge_s']:.3f} s in, "
                f"{mine['withdraw_s']:.3f} s out; bridge -batch {floor:.3f} s"
            )
            theirs = None if args.no_frr else frr(lab, count)
            if theirs is not None:
                results[f"frr_converge_{count}_s"] = round(theirs["converge_s"], 3)
                results[f"frr_withdraw_{count}_s"] = round(theirs["withdraw_s"], 3)
                results[f"vs_frr_ratio_{count}"] = round(
                    theirs["converge_s"] / mine["converge_s"], 2
                )
                line += f"; FRR {theirs['converge_s']:.3f} s in, {theirs['withdraw_s']:.3f} s out"
            print(line)
    finally:
        lab.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
