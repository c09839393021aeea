"""Receive benchmark: a test client streams N Type 2 routes to a BGP speaker over loopback.

Prints the seconds from the first UPDATE byte until every route is in the speaker's RIB, and the
speaker's RSS growth per route held. Runs evpnd, and GoBGP (Debian's gobgpd) where installed,
on the same stream. Ends with one line of JSON.

    .venv/bin/python benchmarks/receive.py [--routes 100000] [--gobgp-routes 10000]

GoBGP 3.10 handles MAC mobility with a scan per route (osrg/gobgp#2750): it is measured at
--gobgp-routes (default 10,000), since 100,000 take it over ten minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.codec import ATTRIBUTES, make_routes  # noqa: E402
from evpnd.bgp.framing import MessageReader  # noqa: E402
from evpnd.bgp.messages import Keepalive  # noqa: E402
from evpnd.bgp.negotiation import LocalSettings  # noqa: E402
from evpnd.bgp.update import end_of_rib, pack_announcements  # noqa: E402
from evpnd.control.client import request  # noqa: E402
from evpnd.wire.constants import MessageType  # noqa: E402

CLIENT = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stream_for(count: int) -> bytes:
    return b"".join(pack_announcements(make_routes(count), ATTRIBUTES)) + end_of_rib()


class Client:
    """Connects as AS 65000 / 127.0.0.2, completes the OPEN exchange, then sends bytes."""

    def __init__(
        self,
        port: int,
        extended: bool = False,
        host: str = "127.0.0.1",
        source: str = CLIENT,
        graceful_restart_time: int = 0,
        graceful_notification: bool = True,
    ) -> None:
        self.sock = socket.create_connection((host, port), source_address=(source, 0), timeout=30)
        local = LocalSettings(
            65000,
            source,
            hold_time=0,
            graceful_restart_time=graceful_restart_time,
            graceful_notification=graceful_notification,
            extended_message=extended,
        )
        self.sock.sendall(local.open_message().encode() + Keepalive().encode())
        # The speaker answers our OPEN with its OPEN and a KEEPALIVE; our KEEPALIVE is next
        # in its stream, before anything we send from now on: it takes that in Established.
        reader = MessageReader()
        seen: set[int] = set()
        while not {MessageType.OPEN, MessageType.KEEPALIVE} <= seen:
            data = self.sock.recv(1 << 16)
            if not data:
                raise RuntimeError("the speaker closed the connection during the OPEN exchange")
            reader.feed(data)
            seen.update(raw[18] for raw in reader.messages() if isinstance(raw, bytes))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def wait(probe, count: int, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if probe() >= count:
            return time.perf_counter()
        time.sleep(0.005)
    raise TimeoutError(f"only {probe()} of {count} routes after {timeout} s")


def measure(pid: int, port: int, received, count: int, stream: bytes) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Stream the routes to the speaker `pid` listening on `port`; time until `received()`
    reaches `count`, and the RSS the routes added."""
    client = Client(port)
    before = rss_kb(pid)
    start = time.perf_counter()
    client.send(stream)
    end = wait(received, count, 900)
    after = rss_kb(pid)
    client.close()
    return {"converge_s": end - start, "rss_bytes_per_route": (after - before) * 1024 / count}


def run_evpnd(count: int, stream: bytes) -> dict[str, float]:
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="evpnd-bench-"))
    config = home / "evpnd.yaml"
    config.write_text(f"""asn: 65000
router_id: 127.0.0.1
listen: {{address: 127.0.0.1, port: {port}}}
listen_ranges: [{{prefix: 127.0.0.0/8, remote_as: 65000}}]
resolve_via_default: true
control_socket: {home}/sock
state_dir: {home}
""")
    process = subprocess.Popen(
        [sys.executable, "-m", "evpnd.cli", "--config", str(config), "--log-level", "warning"],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not (home / "sock").exists():
            time.sleep(0.05)

        def received() -> int:
            peers = request(str(home / "sock"), "show peers")
            return int(peers[0]["routes_received"]) if peers else 0

        return measure(process.pid, port, received, count, stream)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def run_gobgp(count: int, stream: bytes) -> dict[str, float] | None:
    if shutil.which("gobgpd") is None:
        return None
    port, api = free_port(), free_port()
    home = Path(tempfile.mkdtemp(prefix="gobgp-bench-"))
    (home / "gobgpd.toml").write_text(f"""[global.config]
  as = 65000
  router-id = "127.0.0.1"
  port = {port}
  local-address-list = ["127.0.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{CLIENT}"
    peer-as = 65000
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
""")
    process = subprocess.Popen(
        [
            "gobgpd",
            "-f",
            str(home / "gobgpd.toml"),
            "--pprof-disable",
            "--api-hosts",
            f"127.0.0.1:{api}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)

        def received() -> int:
            out = subprocess.run(
                ["gobgp", "-p", str(api), "neighbor", CLIENT, "-j"], capture_output=True, text=True
            ).stdout
            try:
                state = json.loads(out)
                for family in state.get("afi_safis", []):
                    received = family.get("state", {}).get("received", 0)
                    if received:
                        return int(received)
            except ValueError:
                pass
            return 0

        return measure(process.pid, port, received, count, stream)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def run_exabgp(count: int, stream: bytes) -> dict[str, float] | None:
    exabgp = shutil.which("exabgp") or str(Path(sys.executable).parent / "exabgp")
    if not os.path.exists(exabgp):
        return None
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="exabgp-bench-"))
    done = home / "done"
    (home / "exabgp.conf").write_text(f"""process counter {{
    run {sys.executable} {ROOT / "benchmarks" / "exabgp_counter.py"} {count} {done};
    encoder json;
}}
neighbor {CLIENT} {{
    router-id 127.0.0.1;
    local-address 127.0.0.1;
    local-as 65000;
    peer-as 65000;
    passive true;
    family {{ l2vpn evpn; }}
    api {{ processes [ counter ]; receive {{ parsed; update; }} }}
}}
""")
    env = dict(
        os.environ,
        exabgp_tcp_bind="127.0.0.1",
        exabgp_tcp_port=str(port),
        exabgp_log_enable="false",
        exabgp_daemon_daemonize="false",
        exabgp_daemon_user="root",  # or its API process, run as nobody, cannot be started here
    )
    process = subprocess.Popen(
        [exabgp, str(home / "exabgp.conf")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # wait for the listener without connecting: ExaBGP takes any connection as a session
        hex_port = f":{port:04X} "
        for _ in range(100):
            if any(
                hex_port in line and line.split()[3] == "0A"
                for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            ):
                break
            time.sleep(0.1)
        client = Client(port)
        before = rss_kb(process.pid)
        start = time.monotonic()
        client.send(stream)
        deadline = start + 900
        while not done.exists() or not done.read_text():
            if time.monotonic() > deadline:
                raise TimeoutError("ExaBGP did not report all routes")
            time.sleep(0.01)
        end = float(done.read_text())
        after = rss_kb(process.pid)
        client.close()
        return {"converge_s": end - start, "rss_bytes_per_route": (after - before) * 1024 / count}
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, default=100_000)
    parser.add_argument("--gobgp-routes", type=int, default=10_000)
    parser.add_argument("--no-gobgp", action="store_true")
    parser.add_argument("--no-exabgp", action="store_true")
    args = parser.parse_args()
    results: dict[str, float | int] = {"routes": args.routes}
    big = run_evpnd(args.routes, stream_for(args.routes))
    results["converge_s"] = round(big["converge_s"], 3)
    results["routes_per_s"] = round(args.routes / big["converge_s"])
    results["rss_bytes_per_route"] = round(big["rss_bytes_per_route"])
    print(
        f"evpnd: {args.routes} routes in {big['converge_s']:.3f} s "
        f"({results['routes_per_s']:,} routes/s), {big['rss_bytes_per_route']:.0f} bytes RSS "
        "per route"
    )
    small_count = args.gobgp_routes
    small_stream = stream_for(small_count)
    small = run_evpnd(small_count, small_stream)
    results[f"converge_{small_count}_s"] = round(small["converge_s"], 3)
    print(f"evpnd: {small_count} routes in {small['converge_s']:.3f} s")
    gobgp = None if args.no_gobgp else run_gobgp(small_count, small_stream)
    if gobgp is None:
        print("gobgpd: not measured (not installed, or --no-gobgp)")
    else:
        results[f"gobgp_converge_{small_count}_s"] = round(gobgp["converge_s"], 3)
        results["gobgp_rss_bytes_per_route"] = round(gobgp["rss_bytes_per_route"])
        results["vs_gobgp_ratio"] = round(gobgp["converge_s"] / small["converge_s"], 1)
        print(
            f"gobgpd: {small_count} routes in {gobgp['converge_s']:.3f} s, "
            f"{gobgp['rss_bytes_per_route']:.0f} bytes RSS per route "
            f"(evpnd is {results['vs_gobgp_ratio']}x faster)"
        )
    exa = None if args.no_exabgp else run_exabgp(args.routes, stream_for(args.routes))
    if exa is None:
        print("exabgp: not measured (pip install exabgp into this environment, or --no-exabgp)")
    else:
        results["exabgp_converge_s"] = round(exa["converge_s"], 3)
        results["exabgp_rss_bytes_per_route"] = round(exa["rss_bytes_per_route"])
        results["vs_exabgp_ratio"] = round(exa["converge_s"] / big["converge_s"], 1)
        print(
            f"exabgp: {args.routes} routes in {exa['converge_s']:.3f} s, "
            f"{exa['rss_bytes_per_route']:.0f} bytes RSS per route "
            f"(evpnd is {results['vs_exabgp_ratio']}x faster)"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
