"""Restart benchmark: with N remote MACs installed, evpnd restarts (SIGTERM + start, then
kill -9 + start) while a host behind it pings a host behind its peer every 50 ms. Reports the
pings lost, the seconds from each start until the kernel is in sync with the RIB (and the
peers have sent End-of-RIB), and stale or missing entries afterwards — for each kind of peer:

- `evpnd`: another evpnd (graceful restart with the N bit, RFC 8538), its MACs learned from
  its bridge;
- `rfc4724`: a raw BGP peer whose graceful restart has no N bit (as BIRD 2.x), announcing the
  MACs itself and keeping the other side's entries in its kernel (as a helper does);
- `frr`: FRR 8.4 (N bit), its MACs learned from its bridge (where FRR is installed).

Ends with one line of JSON. Needs root.

    .venv/bin/python benchmarks/restart.py [--routes 100000] [--peers evpnd rfc4724 frr]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.netns import Evpnd, Lab, lab, wait_for  # noqa: E402
from tests.test_dataplane import add_host  # noqa: E402
from tests.test_interop_frr import frr_config  # noqa: E402

A, B = "192.168.80.1", "192.168.80.2"
H1_MAC, H2_MAC = "02:00:00:00:81:11", "02:00:00:00:81:12"

#: The rfc4724 peer: announces the flood route, H2's MAC and COUNT MACs from B; when the
#: session ends it connects again (every 0.2 s, its connect-retry) and sends them again with
#: End-of-RIB, COUNT times at most. Prints what ended each session.
RAW_PEER = f"""
import socket, sys, time
sys.path.insert(0, ".")
from benchmarks.receive import Client
from evpnd.bgp.attributes import AsPath, PathAttributes, PmsiTunnel
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Notification, decode_message
from evpnd.bgp.update import end_of_rib, pack_announcements
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import InclusiveMulticastRoute, MacIpRoute

count, sessions = int(sys.argv[1]), int(sys.argv[2])
vtep = socket.inet_aton("{B}")
communities = (Encapsulation(8), RouteTarget(0, 65000, 100))
attrs = PathAttributes(origin=0, as_path=AsPath(), local_pref=100, nexthop=vtep,
                       ext_communities=communities)
imet = PathAttributes(origin=0, as_path=AsPath(), local_pref=100, nexthop=vtep,
                      ext_communities=communities, pmsi_tunnel=PmsiTunnel(0, 6, 100, vtep))
rd = RouteDistinguisher.from_text("{B}:1")
macs = [bytes.fromhex("{H2_MAC.replace(":", "")}")]
macs += [(0x020100000000 + i).to_bytes(6, "big") for i in range(count)]
table = (b"".join(pack_announcements([InclusiveMulticastRoute(rd, 0, vtep)], imet))
         + b"".join(pack_announcements(
               [MacIpRoute(rd, 0, m, b"", ZERO_ESI, 100) for m in macs], attrs))
         + end_of_rib())
for _ in range(sessions):
    while True:
        try:
            client = Client(179, host="{A}", source="{B}", graceful_restart_time=120,
                            graceful_notification=False)
            break
        except (OSError, RuntimeError):  # not listening yet, or gone again mid-OPEN
            time.sleep(0.2)
    client.send(table)
    print("up", flush=True)
    reader, ended = MessageReader(), "closed"
    while data := client.sock.recv(1 << 16):
        reader.feed(data)
        for raw in reader.messages():
            if isinstance(raw, bytes) and isinstance(decode_message(raw), Notification):
                ended = "notification"
    print(ended, flush=True)
"""


class Pinger:
    """`ping -i 0.05` from a namespace; lost replies are the gaps in the sequence numbers of
    the replies seen (exact, whenever it is stopped)."""

    def __init__(self, the_lab: Lab, ns: str, target: str) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "ping", "-i", "0.05", "-W", "1", target],
            stdout=subprocess.PIPE,
            text=True,
        )
        the_lab.processes.append(self.process)  # type: ignore[arg-type]
        self.seqs: list[int] = []
        self.first = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.first.wait(10):
            raise RuntimeError(f"no reply from {target}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            found = re.search(r"icmp_seq=(\d+)", line)
            if found and "bytes from" in line:
                self.seqs.append(int(found.group(1)))
                self.first.set()

    def replies(self) -> int:
        return len(self.seqs)

    def stop(self) -> dict[str, int]:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(10)
        self._reader.join(10)
        seen = sorted(set(self.seqs))
        return {"replies": len(seen), "lost": seen[-1] - seen[0] + 1 - len(seen)}


def fdb_count(the_lab: Lab, ns: str) -> int:
    table = the_lab.run(ns, "bridge", "fdb", "show", "dev", "vxlan100")
    return sum(1 for line in table.splitlines() if "extern_learn" in line and " dst " in line)


def add_macs(the_lab: Lab, ns: str, bridge: str, count: int) -> None:
    """COUNT static MACs on a port of the peer's bridge: its speaker learns them."""
    port = f"m{the_lab.tag}"  # a veth pair: this kernel has no dummy devices
    the_lab.run(ns, "ip", "link", "add", port, "type", "veth", "peer", "name", f"{port}p")
    the_lab.run(ns, "ip", "link", "set", port, "master", bridge)
    the_lab.run(ns, "ip", "link", "set", port, "up")
    the_lab.run(ns, "ip", "link", "set", f"{port}p", "up")
    batch = the_lab.dir / "macs.batch"
    batch.write_text(
        "".join(
            f"fdb add {(0x020100000000 + i).to_bytes(6, 'big').hex(':')} dev {port} master static\n"
            for i in range(count)
        )
    )
    the_lab.run(ns, "bridge", "-batch", str(batch))


def config(me: str, other: str) -> str:
    return f"""asn: 65000
router_id: {me}
listen: {{address: "{me}", port: 179}}
graceful_restart: {{restart_time: 120}}
neighbors:
  - {{address: {other}, remote_as: 65000, connect_retry: 1}}
"""


def in_sync(daemon: Evpnd) -> bool:
    report = daemon.ctl("show", "kernel", check=False)
    return bool(report["in_sync"] and report["settled"])


def run(kind: str, count: int) -> dict[str, Any]:
    """One kind of peer: build, fill, restart twice under ping, report."""
    with lab() as the_lab:
        v1, v2, h1, h2 = (the_lab.ns(n) for n in ("v1", "v2", "h1", "h2"))
        the_lab.link(v1, f"{A}/24", v2, f"{B}/24")
        _, br1 = the_lab.vxlan_bridge(v1, 100, A)
        _, br2 = the_lab.vxlan_bridge(v2, 100, B)
        add_host(the_lab, v1, h1, br1, "10.80.0.11/24", H1_MAC)
        add_host(the_lab, v2, h2, br2, "10.80.0.12/24", H2_MAC)
        raw: subprocess.Popen[str] | None = None
        if kind == "rfc4724":
            # what a helper's daemon keeps in its kernel: the way to H1, and the flood entry
            for line in (f"{H1_MAC} dev vxlan100 dst {A} self extern_learn master",
                         f"00:00:00:00:00:00 dev vxlan100 dst {A} self permanent"):  # fmt: skip
                the_lab.run(v2, "bridge", "fdb", "append" if line[0] == "0" else "add",
                            *line.split())  # fmt: skip
            # the host behind v2 is reached through the raw peer's route, not learnt here
        else:
            add_macs(the_lab, v2, br2, count)
        a = the_lab.evpnd(v1, "a", config(A, B))
        if kind == "evpnd":
            the_lab.evpnd(v2, "b", config(B, A))
        elif kind == "frr":
            the_lab.frr(v2, "frr", frr_config(B, 65000, A, 65000))
        else:
            raw = subprocess.Popen(
                ["ip", "netns", "exec", v2, sys.executable, "-c", RAW_PEER, str(count), "3"],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            the_lab.processes.append(raw)  # type: ignore[arg-type]
        wait_for("every MAC at evpnd", lambda: fdb_count(the_lab, v1) >= count, 300, 0.5)
        pinger = Pinger(the_lab, h1, "10.80.0.12")  # the hosts' MACs are learnt on the way
        wait_for("in sync", lambda: in_sync(a), 60)
        result: dict[str, Any] = {"peer": kind, "routes": count}
        for how, sig in (("sigterm", signal.SIGTERM), ("kill9", signal.SIGKILL)):
            before = pinger.replies()
            a.stop(sig)
            started = time.monotonic()
            a.start()
            wait_for("in sync again", lambda: in_sync(a), 300, 0.1)
            result[f"{how}_in_sync_s"] = round(time.monotonic() - started, 2)
            # and traffic still flows after it: 20 more replies
            wait_for("pings after", lambda b=before: pinger.replies() >= b + 20, 30)
        result |= pinger.stop()
        report = a.ctl("show", "kernel", check=False)
        result["stale_or_missing"] = len(report["differences"])
        result["fdb_entries"] = fdb_count(the_lab, v1)
        if raw is not None:
            assert raw.stdout is not None
            raw.terminate()
            raw.wait(10)
            ends = [line.strip() for line in raw.stdout.read().splitlines()]
            result["rfc4724_sessions_ended_by"] = [e for e in ends if e != "up"]
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, default=100_000)
    parser.add_argument("--peers", nargs="+", default=["evpnd", "rfc4724", "frr"])
    args = parser.parse_args()
    results = {}
    for kind in args.peers:
        if kind == "frr" and not Path("/usr/lib/frr/bgpd").exists():
            print("FRR is not installed: skipped", file=sys.stderr)
            continue
        result = run(kind, args.routes)
        results[kind] = result
        print(
            f"{kind:8} {args.routes} MACs: lost {result['lost']} of {result['replies']} pings;"
            f" in sync after SIGTERM+start {result['sigterm_in_sync_s']} s, after kill -9+start"
            f" {result['kill9_in_sync_s']} s; {result['stale_or_missing']} stale or missing",
            file=sys.stderr,
        )
        if "rfc4724_sessions_ended_by" in result:
            print(
                f"rfc4724 sessions ended by: {result['rfc4724_sessions_ended_by']}", file=sys.stderr
            )
    flat = {
        f"{kind}_{key}": value
        for kind, result in results.items()
        for key, value in result.items()
        if isinstance(value, int | float)
    }
    print(json.dumps(flat))


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
