"""Local MAC to a peer's kernel: how long from a MAC appearing in VTEP 1's bridge to its FDB
entry in VTEP 2's kernel, through both evpnds and BGP. Two namespaces, real vxlan/bridge.
Watchers in each namespace timestamp the kernel's own notifications (CLOCK_MONOTONIC is shared),
so process start-up is not measured. Needs root. Ends with one line of JSON.

    .venv/bin/python benchmarks/latency.py [--samples 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.netns import Lab, wait_for  # noqa: E402

WATCH = """
import sys, time
sys.path.insert(0, {root!r})
from evpnd.kernel import neighbours as nl
from evpnd.kernel.netlink import RTNLGRP_NEIGH, _socket
sock = _socket((RTNLGRP_NEIGH,))
print("ready", flush=True)
while True:
    neighbours, _, _ = nl.parse(sock.recv(1 << 20))
    now = time.monotonic()
    for n in neighbours:
        if n.kind == nl.RTM_NEWNEIGH and n.mac and n.mac[:3] == bytes((2, 0x42, 0)):
            print(n.mac.hex(":"), "self" if n.flags & nl.NTF_SELF else "bridge", now, flush=True)
"""


def config(me: str, other: str) -> str:
    return f"""asn: 65000
router_id: {me}
listen: {{address: "{me}", port: 179}}
neighbors:
  - {{address: {other}, remote_as: 65000, connect_retry: 1}}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    lab = Lab()
    try:
        v1, v2 = lab.ns("v1"), lab.ns("v2")
        lab.link(v1, "192.168.80.1/24", v2, "192.168.80.2/24")
        for ns, local in ((v1, "192.168.80.1"), (v2, "192.168.80.2")):
            lab.vxlan_bridge(ns, 100, local)
        lab.run(v1, "ip", "link", "add", "host0", "type", "veth", "peer", "name", "host0p")
        lab.run(v1, "ip", "link", "set", "host0", "master", "br100")
        lab.run(v1, "ip", "link", "set", "host0", "up")
        lab.run(v1, "ip", "link", "set", "host0p", "up")
        e1 = lab.evpnd(v1, "e1", config("192.168.80.1", "192.168.80.2"))
        lab.evpnd(v2, "e2", config("192.168.80.2", "192.168.80.1"))
        wait_for("Established", lambda: e1.peer_state("192.168.80.2") == "Established", 30)
        watchers = {}
        for ns in (v1, v2):
            process = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", WATCH.format(root=str(ROOT))],
                stdout=subprocess.PIPE,
                text=True,
            )
            lab.processes.append(process)  # type: ignore[arg-type]
            assert process.stdout is not None and process.stdout.readline().startswith("ready")
            watchers[ns] = process
        samples = []
        for i in range(args.samples):
            mac = f"02:42:00:00:00:{i:02x}"
            lab.run(v1, "bridge", "fdb", "add", mac, "dev", "host0", "master", "dynamic")
            seen = {}
            for ns, kind in ((v1, "bridge"), (v2, "self")):
                stdout = watchers[ns].stdout
                assert stdout is not None
                while True:
                    got_mac, got_kind, when = stdout.readline().split()
                    if got_mac == mac and got_kind == kind:
                        seen[ns] = float(when)
                        break
            samples.append(seen[v2] - seen[v1])
            time.sleep(0.2)
        median = statistics.median(samples)
        print(
            f"local MAC to the peer's kernel: median {median * 1000:.1f} ms, "
            f"max {max(samples) * 1000:.1f} ms over {len(samples)} MACs (FRR 8.4: ~71 ms)"
        )
        print(
            json.dumps(
                {
                    "local_to_peer_kernel_median_s": round(median, 4),
                    "local_to_peer_kernel_max_s": round(max(samples), 4),
                    "samples": len(samples),
                }
            )
        )
    finally:
        lab.close()


if __name__ == "__main__":
    main()
