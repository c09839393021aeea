"""Where evpnd's time goes between UPDATE bytes and netlink messages, stage by stage, with no I/O:
the codec decoding N Type 2 routes, the RIB taking them, the desired state following the RIB,
the reconciler turning the changes into operations, and their netlink encoding — for the
announcement and for the withdrawal. The same routes and UPDATEs as benchmarks/converge.py,
which times the whole path against FRR and the kernel; this one says which stage to work on.
Runs the daemon's GC thresholds; the best of `--repeat` runs per stage. No root needed; ends
with one line of JSON.

    .venv/bin/python benchmarks/stages.py [--routes 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.converge import ATTRS, routes
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import decode_message
from evpnd.bgp.update import Update, pack_announcements, pack_withdrawals
from evpnd.cli import GC_THRESHOLDS
from evpnd.kernel import operations as ops
from evpnd.kernel.desired import DesiredState, VniPorts
from evpnd.kernel.reconciler import Reconciler
from evpnd.rib.locrib import Rib
from evpnd.rib.paths import Source

#: the daemon writes a batch once this many FDB changes wait (kernel/dataplane.py)
EAGER_WRITE = 5000
STAGES = ("decode", "rib", "desired", "operations", "encode")
T = TypeVar("T")


def decode(data: bytes) -> list[Update]:
    reader = MessageReader(max_message_len=65535)
    reader.feed(data)
    out = []
    for raw in reader.messages():
        message = decode_message(raw)
        assert isinstance(message, Update), message
        out.append(message)
    return out


def run(count: int) -> dict[str, float]:
    """One announcement and one withdrawal of `count` routes; seconds per phase and stage."""
    table = routes(count)
    announce = b"".join(pack_announcements(table, ATTRS))
    withdraw = b"".join(pack_withdrawals(table))
    source = Source("192.168.60.2", "192.168.60.2", 65000, ibgp=True)
    rib = Rib()
    ports = {100: VniPorts(100, 10, 11, socket.inet_aton("192.168.60.1"))}
    state = DesiredState(rib, ports, lambda path: [100])
    reconciler = Reconciler(state)
    spent: dict[str, float] = {}

    def timed(name: str, work: Callable[[], T]) -> T:
        start = time.perf_counter()
        out = work()
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
        return out

    def write(phase: str) -> None:
        operations, _ = timed(f"{phase}_operations", reconciler.take)
        timed(f"{phase}_encode", lambda: ops.encode_all(operations, 1))

    for phase, data in (("in", announce), ("out", withdraw)):
        for update in timed(f"{phase}_decode", lambda data=data: decode(data)):
            timed(
                f"{phase}_rib",
                lambda u=update: rib.update(source, u.announced, u.attributes, u.withdrawn),
            )
            changes = rib.take_changes()
            timed(f"{phase}_desired", lambda c=changes: state.on_changes(c))
            if state.pending_fdb >= EAGER_WRITE:
                write(phase)
        write(phase)
    assert not state.desired.fdb and not reconciler.programmed.fdb  # all gone again
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    gc.set_threshold(*GC_THRESHOLDS)  # as evpnd runs
    result: dict[str, Any] = {}
    for count in args.routes:
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, seconds in run(count).items():
                best[name] = min(best.get(name, seconds), seconds)
            gc.collect()
        for phase in ("in", "out"):
            parts = [f"{stage} {best[f'{phase}_{stage}']:.3f}" for stage in STAGES]
            total = sum(best[f"{phase}_{stage}"] for stage in STAGES)
            print(f"{count} routes {phase}: {', '.join(parts)} s; {total:.3f} s in all")
            for stage in STAGES:
                result[f"{phase}_{stage}_{count}_s"] = round(best[f"{phase}_{stage}"], 4)
            result[f"{phase}_total_{count}_s"] = round(total, 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
