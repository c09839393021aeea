"""Watches the underlay's way to every VTEP the RIB has routes towards, once a second, in a
thread (kernel/underlay.py): next-hop tracking — a VTEP that becomes unreachable takes its
routes out of the decision, and gives them back when it returns — and each VNI's inner MTU
against its devices' MTU.

Polled rather than told: route notifications are filtered in the kernel to evpnd's own (a full
routing table churning beside us must not wake us), and a lookup per VTEP costs microseconds.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from evpnd.events import MtuProblem, VtepReachable, VtepUnreachable
from evpnd.evpn.identifiers import ip_to_text as vtep_text
from evpnd.kernel.underlay import Way, inner_mtu, links_down, look_up, mtu_problem

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon

log = structlog.get_logger("evpnd.underlay")

#: seconds between two looks at the underlay
INTERVAL = 1.0


class UnderlayWatch:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        #: the way to each tracked VTEP, as last seen
        self.ways: dict[bytes, Way] = {}
        #: the device each VTEP was last reached by (kept while it is unreachable: the link
        #: that went down is the likely cause), and the devices of the ways that carry nothing
        self.last_device: dict[bytes, str] = {}
        self.links_down: dict[str, str] = {}
        #: per VNI: the largest inner frame its VTEPs' ways carry, and what is wrong if any
        self.inner: dict[int, int] = {}
        #: per VNI: the VTEPs whose ways that inner MTU was computed over (a VTEP that came
        #: since is counted at the next look)
        self.inner_over: dict[int, list[str]] = {}
        self.mtu_problems: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._soon: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = self.daemon.loop.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def look_soon(self) -> None:
        """Look again now, not at the next interval (a reload changed how VTEPs resolve)."""
        if self._task is not None:
            task = self.daemon.loop.create_task(self._look_once())
            self._soon.add(task)  # (the loop keeps only weak references to tasks)
            task.add_done_callback(self._soon.discard)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            await self._look_once()

    async def _look_once(self) -> None:
        try:
            await self.look()
        except OSError as exc:
            log.error("cannot look up the underlay", error=str(exc))

    async def look(self) -> None:
        daemon = self.daemon
        rib = daemon.rib
        vteps = list(rib.nexthops)
        ways, last, down = await daemon.loop.run_in_executor(
            None, self._look_up, vteps, daemon.config.resolve_via_default, dict(self.last_device)
        )
        self.ways, self.last_device, self.links_down = ways, last, down
        unreachable = frozenset(v for v, way in ways.items() if not way.reachable)
        if unreachable != rib.unreachable:
            for vtep in sorted(unreachable - rib.unreachable):
                daemon.report(
                    VtepUnreachable(vtep_text(vtep), ways[vtep].reason, rib.nexthops.get(vtep, 0))
                )
            for vtep in sorted(rib.unreachable - unreachable):
                if vtep in ways:
                    way = ways[vtep]
                    daemon.report(VtepReachable(vtep_text(vtep), way.device, way.mtu))
            rib.set_unreachable(unreachable)
            daemon.settle()
        self._check_mtu(ways)

    @staticmethod
    def _look_up(
        vteps: list[bytes], via_default: bool, last_device: dict[bytes, str]
    ) -> tuple[dict[bytes, Way], dict[bytes, str], dict[str, str]]:
        """In a thread: the ways, the device each VTEP was last reached by, and which of
        those devices carry nothing."""
        ways = look_up(vteps, via_default)
        last = {v: d for v, d in last_device.items() if v in ways}
        last.update((v, w.device) for v, w in ways.items() if w.reachable and w.device)
        return ways, last, links_down(last.values())

    def _check_mtu(self, ways: dict[bytes, Way]) -> None:
        daemon = self.daemon
        dataplane = daemon.dataplane
        if dataplane is None:
            return
        flood = dataplane.state.desired.flood
        for vni, port in daemon.kernel_ports.items():
            vteps = [vtep for ifindex, vtep in flood if ifindex == port.ifindex]
            inner = inner_mtu(vteps, ways)
            if inner is None:
                self.inner.pop(vni, None)
                self.inner_over.pop(vni, None)
                self.mtu_problems.pop(vni, None)
                continue
            self.inner[vni] = inner
            self.inner_over[vni] = sorted(vtep_text(v) for v in vteps if v in ways)
            problem = mtu_problem(port.name, port.mtu, port.bridge_name, port.bridge_mtu, inner)
            if problem == self.mtu_problems.get(vni):
                continue
            if problem is None:
                self.mtu_problems.pop(vni, None)
                log.info("vni mtu fine", vni=vni, inner_mtu=inner)
            else:
                self.mtu_problems[vni] = problem
                daemon.report(MtuProblem(vni, inner, problem))
