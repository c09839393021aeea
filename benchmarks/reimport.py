"""A reload that changes what a VNI imports, under a large table: how long the wish takes to be
worked out again, and how long the event loop waits meanwhile — in slices, as the daemon does
it (kernel/reimport.py), beside the same work in one piece (`DesiredState.rebuild`).
No root, no kernel: the RIB is filled in memory with benchmarks/converge.py's routes; two
scenarios, a VNI that stops importing the table and a second VNI that starts. Ends with one line
of JSON.

    .venv/bin/python benchmarks/reimport.py [--routes 100000 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.converge import ATTRS, routes
from benchmarks.loopwait import LoopWait
from evpnd.cli import GC_THRESHOLDS
from evpnd.kernel.dataplane import REIMPORT_SLICE
from evpnd.kernel.desired import DesiredState, VniPorts
from evpnd.kernel.reimport import Reimport
from evpnd.rib.locrib import Rib
from evpnd.rib.paths import Path as RibPath
from evpnd.rib.paths import Source

PORTS = {
    100: VniPorts(100, 10, 11, bytes((192, 168, 60, 1))),
    200: VniPorts(200, 20, 21, bytes((192, 168, 60, 1))),
}
#: what the routes are imported into before and after the "reload", per scenario
SCENARIOS = {
    # a VNI stops importing the table: the old wish full, the new one empty
    "imports_off": ([100], []),
    # a second VNI imports the same table: the old wish full, the new one twice as large
    "second_vni": ([100], [100, 200]),
}


def filled(count: int, before: list[int]) -> tuple[DesiredState, dict[str, list[int]]]:
    """A wish for `count` remote MACs, imported into the VNIs `before`, and the rule the
    "reload" changes (`rule["vnis"]`)."""
    rib = Rib()
    rib.update(Source("192.168.60.2", "192.168.60.2", 65000, ibgp=True), routes(count), ATTRS, [])
    rule = {"vnis": before}

    def importing(path: RibPath) -> list[int]:
        return rule["vnis"]

    state = DesiredState(rib, dict(PORTS), importing)
    state.on_changes(rib.take_changes())
    state.take()
    return state, rule


async def sliced(state: DesiredState) -> tuple[float, float, int]:
    """Seconds to the new wish, the longest the loop waited, and the entries it changes."""
    async with LoopWait() as waited:
        started = time.perf_counter()
        job = Reimport(state)
        while not job.step(REIMPORT_SLICE):
            await asyncio.sleep(0)
        seconds = time.perf_counter() - started
    assert job.result is not None
    return seconds, waited.longest, sum(job.result.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, nargs="+", default=[100_000])
    args = parser.parse_args()
    gc.set_threshold(*GC_THRESHOLDS)
    results = []
    for count in args.routes:
        for name, (before, after) in SCENARIOS.items():
            state, rule = filled(count, before)
            rule["vnis"] = after
            started = time.perf_counter()
            state.rebuild()
            whole = time.perf_counter() - started
            expected = len(state.take())
            del state
            gc.collect()
            state, rule = filled(count, before)
            rule["vnis"] = after
            seconds, longest, changed = asyncio.run(sliced(state))
            assert changed == expected == count, (changed, expected)
            row = {
                "scenario": name,
                "routes": count,
                "one_piece_s": round(whole, 3),
                "sliced_s": round(seconds, 3),
                "sliced_max_loop_wait_s": round(longest, 3),
                "entries_changed": changed,
            }
            print(
                f"{name:>12} {count:>9,} routes: in one piece {whole:.2f} s (the loop waits as "
                f"long); in slices {seconds:.2f} s, the loop waiting at most "
                f"{longest * 1000:.0f} ms"
            )
            results.append(row)
            del state
            gc.collect()
    print(json.dumps({"slice_paths": REIMPORT_SLICE, "runs": results}))


if __name__ == "__main__":
    main()
