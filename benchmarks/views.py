"""Whole-table views under a large RIB: how long evpnctl waits for its answer, and how long the
daemon's event loop waits meanwhile (docs/operations.md promises no more than 200 ms).

A daemon that is not started (no root, no kernel, no sessions) gets N remote Type 2 routes in
its RIB (benchmarks/converge.py's) and serves its control socket on a temporary path; the
real evpnctl, in a process of its own, asks each command in turn while a task on the daemon's
loop measures the longest gap between two of its turns. Ends with one line of JSON.

    .venv/bin/python benchmarks/views.py [--routes 20000 1000000] [--commands "show routes" ...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.converge import ATTRS, VTEP, routes
from benchmarks.loopwait import LoopWait
from evpnd.cli import GC_THRESHOLDS
from evpnd.config import parse
from evpnd.control.server import ControlServer
from evpnd.daemon import commands
from evpnd.daemon.daemon import Daemon
from evpnd.evpn.routes import EvpnRoute
from evpnd.rib.paths import Source

COMMANDS = [
    "show routes",
    "show routes --json",
    "show mac --json",
    "show bgp l2vpn evpn route --json",
]

CONFIG = """
asn: 65000
router_id: 192.168.60.1
state_dir: {folder}
control_socket: {folder}/evpnd.sock
evpn:
  program_kernel: false
  vtep_ip: 192.168.60.1
  vnis: [{{vni: 100}}]
"""


def filled(count: int, folder: str, loop: asyncio.AbstractEventLoop) -> Daemon:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    return daemon_with(folder, loop, routes(count))


def daemon_with(folder: str, loop: asyncio.AbstractEventLoop, table: list[EvpnRoute]) -> Daemon:
    """A daemon, not started (no socket, no kernel), whose RIB holds `table` as one remote
    VTEP's routes in VNI 100 (tests/test_control_load.py uses it too)."""
    config = parse(CONFIG.format(folder=folder))
    daemon = Daemon(config, loop)
    daemon._originate(config)  # VNI 100 and its Type 3: what imports the routes
    daemon.rib.update(Source(VTEP, VTEP, 65000, ibgp=True), table, ATTRS, [])
    daemon.rib.take_changes()
    return daemon


async def ask(socket_path: str, words: list[str]) -> tuple[float, float, int]:
    """evpnctl's seconds for one command, the loop's longest wait meanwhile, its output's
    bytes."""
    async with LoopWait() as waited:
        started = time.perf_counter()
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from evpnd.control.cli import main; raise SystemExit(main())",
            "-s",
            socket_path,
            *words,
            stdout=asyncio.subprocess.PIPE,
        )
        size = 0
        assert client.stdout is not None
        while chunk := await client.stdout.read(1 << 20):
            size += len(chunk)
        status = await client.wait()
        seconds = time.perf_counter() - started
    assert status == 0, f"evpnctl {' '.join(words)}: exit {status}"
    return seconds, waited.longest, size


async def run(count: int, wanted: list[str]) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        daemon = filled(count, folder, asyncio.get_running_loop())
        path = f"{folder}/evpnd.sock"
        server = ControlServer(path, lambda request: commands.handle(daemon, request), _none)
        await server.start()
        rows = []
        try:
            for command in wanted:
                seconds, longest, size = await ask(path, command.split())
                rows.append(
                    {
                        "routes": count,
                        "command": command,
                        "answer_s": round(seconds, 3),
                        "max_loop_wait_s": round(longest, 3),
                        "output_bytes": size,
                    }
                )
                print(
                    f"{count:>9,} routes, evpnctl {command}: {seconds:.2f} s, "
                    f"the loop waiting at most {longest * 1000:.0f} ms ({size:,} bytes out)"
                )
        finally:
            await server.stop()
        return rows


async def _none() -> object:
    return
    yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, nargs="+", default=[20_000])
    parser.add_argument("--commands", nargs="+", default=COMMANDS)
    args = parser.parse_args()
    gc.set_threshold(*GC_THRESHOLDS)
    runs = []
    for count in args.routes:
        runs += asyncio.run(run(count, args.commands))
        gc.collect()
    worst = max(r["max_loop_wait_s"] for r in runs)  # type: ignore[type-var]
    print(json.dumps({"max_loop_wait_s": worst, "runs": runs}))


if __name__ == "__main__":
    main()
