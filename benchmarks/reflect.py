"""Route reflector benchmark: evpnd as the reflector of C iBGP clients, one of which announces
R Type 2 routes; the others must all get them.

The reflector runs in its own namespace (`evpn.program_kernel: false`: a reflector that is no
VTEP); the clients share one veth in another namespace, each from its own address, served by
two worker processes (selectors, no asyncio) that count the NLRI in the UPDATEs they read
(Type 2 MAC-only routes are 35 bytes each, so an UPDATE's count is its MP_REACH length
divided by that). Measured: from the announcer's first byte until the last client holds all
R routes, and again for the withdrawal; the longest silence any client saw while it was
still waiting (a client that hears nothing for a hold time drops the session); the
reflector's resident memory with the table in and its CPU time. FRR's bgpd (peer group with
`route-reflector-client` over `bgp listen range`) does the same job in the same run where it
is installed. Ends with one line of JSON. Needs root.

    .venv/bin/python benchmarks/reflect.py [--clients 10 100] [--routes 10000 100000] [--no-frr]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.converge import ATTRS, cpu_seconds, routes, rss_mb  # noqa: E402
from evpnd.bgp.messages import Keepalive  # noqa: E402
from evpnd.bgp.negotiation import LocalSettings  # noqa: E402
from evpnd.bgp.update import pack_announcements, pack_withdrawals  # noqa: E402
from tests.netns import Lab, wait_for  # noqa: E402

REFLECTOR = "10.77.0.1"
ANNOUNCER = "10.77.2.1"
NLRI = 35  # a MAC-only Type 2 route: type, length and 33 bytes
WORKERS = 2


def client_address(n: int) -> str:
    return f"10.77.{10 + n // 250}.{1 + n % 250}"


# --- the clients (in the clients' namespace) ------------------------------------------------


class Session:
    """One client's connection: the OPEN exchange done blocking, then read without blocking,
    counting the routes announced and withdrawn in what arrives."""

    def __init__(self, source: str, hold_time: int = 0, receive_buffer: int = 0) -> None:
        self.sock = socket.socket()
        if receive_buffer:  # (before connecting: it sets the window)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(60)
        self.sock.bind((source, 0))
        self.sock.connect((REFLECTOR, 179))
        # with graceful restart: FRR sends End-of-RIB only to peers that have it
        local = LocalSettings(65000, source, hold_time=hold_time, graceful_restart_time=120)
        self.sock.sendall(local.open_message().encode() + Keepalive().encode())
        self.buffer = bytearray()
        self.announced = self.withdrawn = 0
        self.end_of_rib = False
        self.keepalives = 0
        self.last_read = 0.0
        self.longest_silence = 0.0
        self.done_at: float | None = None

    def read(self, now: float) -> bool:
        """What is there to read; False when the connection closed."""
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return True
        if not data:
            return False
        if self.last_read:
            self.longest_silence = max(self.longest_silence, now - self.last_read)
        self.last_read = now
        self.buffer += data
        self._messages()
        return True

    def _messages(self) -> None:
        buffer = self.buffer
        pos = 0
        while len(buffer) - pos >= 19:
            length = int.from_bytes(buffer[pos + 16 : pos + 18], "big")
            if len(buffer) - pos < length:
                break
            if buffer[pos + 18] == 2:
                self._update(bytes(buffer[pos + 19 : pos + length]))
            elif buffer[pos + 18] == 4:
                self.keepalives += 1
            pos += length
        del buffer[:pos]

    def _update(self, body: bytes) -> None:
        withdrawn_len = int.from_bytes(body[0:2], "big")
        at = 2 + withdrawn_len
        end = at + 2 + int.from_bytes(body[at : at + 2], "big")
        at += 2
        while at < end:
            flags, kind = body[at], body[at + 1]
            if flags & 0x10:
                size, at = int.from_bytes(body[at + 2 : at + 4], "big"), at + 4
            else:
                size, at = body[at + 2], at + 3
            value = body[at : at + size]
            at += size
            if kind == 14:  # MP_REACH_NLRI: AFI, SAFI, next hop, a reserved byte, NLRI
                nlri = value[5 + value[3] :]
                self.announced += len(nlri) // NLRI
            elif kind == 15:  # MP_UNREACH_NLRI: AFI, SAFI, NLRI (none: End-of-RIB)
                if size == 3:
                    self.end_of_rib = True
                self.withdrawn += (size - 3) // NLRI


def worker(first: int, count: int) -> None:
    """Clients first..first+count-1: connect, wait for End-of-RIB, say "ready"; then count,
    and report each phase (all routes in; all withdrawn) as one JSON line; stay connected
    until told "end"."""
    sessions = [Session(client_address(n)) for n in range(first, first + count)]
    selector = selectors.DefaultSelector()
    for s in sessions:
        s.sock.setblocking(False)
        selector.register(s.sock, selectors.EVENT_READ, s)
    want = int(sys.stdin.readline())

    def run_until(done: Any) -> None:
        while not all(done(s) for s in sessions):
            for key, _ in selector.select(1.0):
                session: Session = key.data
                if not session.read(time.perf_counter()):
                    raise SystemExit(f"session {session.sock.getsockname()} closed")

    run_until(lambda s: s.end_of_rib)
    print("ready", flush=True)
    for phase, reached in (
        ("in", lambda s: s.announced >= want),
        ("out", lambda s: s.withdrawn >= want),
    ):
        for s in sessions:
            s.done_at, s.longest_silence, s.last_read = None, 0.0, 0.0

        def done(s: Session, reached: Any = reached) -> bool:
            if s.done_at is None and reached(s):
                s.done_at = time.perf_counter()
            return s.done_at is not None

        run_until(done)
        print(
            json.dumps(
                {
                    "phase": phase,
                    "last": max(s.done_at or 0.0 for s in sessions),
                    "silence": max(s.longest_silence for s in sessions),
                    # exactly: more would be a miscount (or a route sent twice)
                    "counts": sorted(
                        {s.announced if phase == "in" else s.withdrawn for s in sessions}
                    ),
                }
            ),
            flush=True,
        )
    sys.stdin.readline()  # the sessions stay up until the reflector has been looked at


def announcer(count: int) -> None:
    """The client with the routes: announce on "go", withdraw on "withdraw" (prints the
    moment of the first byte each time); what the reflector sends back is drained unread."""
    session = Session(ANNOUNCER)
    all_routes = routes(count)
    announce = b"".join(pack_announcements(all_routes, ATTRS))  # type: ignore[arg-type]
    withdraw = b"".join(pack_withdrawals(all_routes))  # type: ignore[arg-type]
    import threading

    def drain() -> None:
        session.sock.settimeout(None)
        while session.sock.recv(1 << 20):
            pass

    threading.Thread(target=drain, daemon=True).start()
    print("ready", flush=True)
    for data in (announce, withdraw):
        sys.stdin.readline()
        start = time.perf_counter()
        session.sock.sendall(data)
        print(json.dumps({"start": start}), flush=True)
    sys.stdin.readline()


# --- the run (outside) -------------------------------------------------------------------------


def spawn(ns: str, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, __file__, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    import select

    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("a client worker said nothing")
    text = process.stdout.readline()
    if not text:
        raise RuntimeError(f"a client worker ended (exit code {process.wait()})")
    return text.strip()


def tell(process: subprocess.Popen[str], text: str) -> None:
    assert process.stdin is not None
    process.stdin.write(text + "\n")
    process.stdin.flush()


def setup(lab: Lab, name: str, clients: int) -> tuple[str, str]:
    rr, cl = lab.ns(f"{name}r"), lab.ns(f"{name}c")
    lab.run(rr, "ip", "link", "add", "r0", "type", "veth", "peer", "name", "c0", "netns", cl)
    lab.run(rr, "ip", "addr", "add", f"{REFLECTOR}/16", "dev", "r0")
    lab.run(rr, "ip", "link", "set", "r0", "up")
    # the announced routes' VTEP must be reachable: FRR reflects no route whose next hop it
    # cannot resolve
    lab.run(rr, "ip", "route", "add", "192.168.60.0/24", "dev", "r0")
    batch = lab.dir / f"{name}-addresses"
    addresses = [ANNOUNCER] + [client_address(n) for n in range(clients)]
    batch.write_text("".join(f"address add {a}/16 dev c0\n" for a in addresses))
    lab.run(cl, "ip", "-batch", str(batch))
    lab.run(cl, "ip", "link", "set", "c0", "up")
    return rr, cl


def measure(cl: str, clients: int, count: int, pids: list[int], sessions_up: Any) -> dict[str, Any]:
    """The clients against a reflector that is up in the other namespace."""
    spread = [clients // WORKERS + (w < clients % WORKERS) for w in range(WORKERS)]
    workers = []
    first = 0
    for size in spread:
        if size:
            workers.append(spawn(cl, "--worker", str(first), str(size)))
            first += size
    source = spawn(cl, "--announcer", str(count))
    try:
        for w in workers:
            tell(w, str(count))
        for process in (*workers, source):
            if line(process, 120) != "ready":
                raise RuntimeError("a client worker did not get ready")
        idle = rss_mb(pids)
        result: dict[str, Any] = {}
        for phase, word in (("in", "go"), ("out", "withdraw")):
            cpu = sum(cpu_seconds(pid) for pid in pids)
            tell(source, word)
            start = json.loads(line(source, 60))["start"]
            reports = [json.loads(line(w, 60 + count / 500)) for w in workers]
            result[f"{phase}_s"] = max(r["last"] for r in reports) - start
            result[f"{phase}_silence_s"] = max(r["silence"] for r in reports)
            counts = sorted({c for r in reports for c in r["counts"]})
            if counts != [count]:
                raise RuntimeError(f"clients counted {counts} routes {phase}, not {count}")
            result[f"{phase}_cpu_s"] = sum(cpu_seconds(pid) for pid in pids) - cpu
            if phase == "in":
                result["rss_mb"] = rss_mb(pids)
                result["rss_added_mb"] = result["rss_mb"] - idle
        result["sessions_up"] = sessions_up()
        for process in (*workers, source):
            tell(process, "end")
        return result
    finally:
        for process in (*workers, source):
            process.kill()
            process.wait()


def evpnd(lab: Lab, clients: int, count: int) -> dict[str, Any]:
    name = f"e{clients}x{count}"
    rr, cl = setup(lab, name, clients)
    daemon = lab.evpnd(
        rr,
        name,
        f"""asn: 65000
router_id: {REFLECTOR}
listen: {{address: {REFLECTOR}, port: 179}}
listen_ranges: [{{prefix: 10.77.0.0/16, remote_as: 65000, route_reflector_client: true}}]
evpn: {{program_kernel: false}}
""",
    )
    try:
        assert daemon.process is not None
        return measure(
            cl, clients, count, [daemon.process.pid],
            lambda: sum(p["state"] == "Established" for p in daemon.ctl("show", "peers")),
        )  # fmt: skip
    finally:
        daemon.stop()


def frr(lab: Lab, clients: int, count: int) -> dict[str, Any] | None:
    if not os.path.exists("/usr/lib/frr/bgpd"):
        return None
    name = f"f{clients}x{count}"
    rr, cl = setup(lab, name, clients)
    speaker = lab.frr(
        rr,
        name,
        f"""frr defaults traditional
router bgp 65000
 bgp router-id {REFLECTOR}
 no bgp default ipv4-unicast
 bgp listen limit {clients + 10}
 neighbor CLIENTS peer-group
 neighbor CLIENTS remote-as 65000
 bgp listen range 10.77.0.0/16 peer-group CLIENTS
 address-family l2vpn evpn
  neighbor CLIENTS activate
  neighbor CLIENTS route-reflector-client
 exit-address-family
""",
    )
    # bgpd accepts (and drops) connections before its configuration is in
    wait_for(
        "FRR's listen range", lambda: "listen range" in speaker.vtysh("show running-config"), 30
    )
    pids = [int((speaker.home / f"{d}.pid").read_text()) for d in ("bgpd", "zebra")]

    def sessions_up() -> int:
        peers = speaker.json("show bgp l2vpn evpn summary").get("peers", {})
        return sum(p.get("state") == "Established" for p in peers.values())

    return measure(cl, clients, count, pids, sessions_up)


def named(key: str, tag: str) -> str:
    """`in_s`, "100x100000" -> `in_100x100000_s`: the unit stays last."""
    for unit in ("_s", "_mb"):
        if key.endswith(unit):
            return f"{key[: -len(unit)]}_{tag}{unit}"
    return f"{key}_{tag}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--routes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-frr", action="store_true")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--announcer", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if args.announcer:
        announcer(args.announcer)
        return
    results: dict[str, Any] = {}
    lab = Lab()
    try:
        for count in args.routes:
            for clients in args.clients:
                tag = f"{clients}x{count}"
                mine = evpnd(lab, clients, count)
                for key, value in mine.items():
                    results[named(key, tag)] = round(value, 3)
                text = (
                    f"{clients:>4} clients x {count:>7} routes: evpnd {mine['in_s']:.2f} s in, "
                    f"{mine['out_s']:.2f} s out, {mine['rss_mb']:.0f} MB, longest silence "
                    f"{mine['in_silence_s'] * 1000:.0f} ms, {mine['sessions_up']} up"
                )
                theirs = None if args.no_frr else frr(lab, clients, count)
                if theirs is not None:
                    for key, value in theirs.items():
                        results["frr_" + named(key, tag)] = round(value, 3)
                    text += (
                        f"; FRR {theirs['in_s']:.2f} s in, {theirs['out_s']:.2f} s out, "
                        f"{theirs['rss_mb']:.0f} MB, longest silence "
                        f"{theirs['in_silence_s'] * 1000:.0f} ms"
                    )
                print(text, flush=True)
    finally:
        lab.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
