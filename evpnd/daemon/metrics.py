"""Prometheus metrics (prometheus-client), served on `metrics: {address, port}`.

Values are read from the daemon when scraped, not counted on the hot path: the collector runs
in prometheus-client's HTTP thread and asks the event loop for a snapshot, so nothing is read
while the loop changes it."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import start_http_server
from prometheus_client.core import (
    REGISTRY,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from evpnd import __version__
from evpnd.bgp.events import State
from evpnd.daemon.views import l3vni_view, sliced
from evpnd.evpn.routes import MacIpRoute
from evpnd.kernel.dataplane import LATENCY_BUCKETS
from evpnd.rib.paths import LOCAL

if TYPE_CHECKING:
    from evpnd.control.server import ControlServer
    from evpnd.daemon.daemon import Daemon


class DaemonCollector(Collector):
    def __init__(self, daemon: Daemon, control: ControlServer | None = None) -> None:
        self.daemon = daemon
        self.control = control

    def describe(self) -> list[Any]:
        # Without this, registering calls collect() to learn the names — on the event loop's
        # own thread, which would then wait for itself.
        return []

    def collect(self) -> Iterator[Any]:
        future = asyncio.run_coroutine_threadsafe(self._snapshot(), self.daemon.loop)
        yield from future.result(timeout=10)

    async def _snapshot(self) -> list[Any]:
        daemon = self.daemon
        up = GaugeMetricFamily(
            "evpnd_peer_up", "1 when the session is Established", labels=["peer"]
        )
        state = GaugeMetricFamily(
            "evpnd_peer_state",
            "The session's RFC 4271 state (1 for the current one)",
            labels=["peer", "state"],
        )
        uptime = GaugeMetricFamily(
            "evpnd_peer_uptime_seconds", "Seconds since Established", labels=["peer"]
        )
        received = GaugeMetricFamily(
            "evpnd_peer_routes_received", "Routes in the peer's Adj-RIB-In", labels=["peer"]
        )
        advertised = GaugeMetricFamily(
            "evpnd_peer_routes_advertised", "Routes the peer has from us", labels=["peer"]
        )
        updates = CounterMetricFamily(
            "evpnd_peer_updates_received", "UPDATE messages received", labels=["peer"]
        )
        updates_out = CounterMetricFamily(
            "evpnd_peer_updates_sent", "UPDATE messages sent", labels=["peer"]
        )
        messages_in = CounterMetricFamily(
            "evpnd_peer_messages_received", "BGP messages received", labels=["peer"]
        )
        messages_out = CounterMetricFamily(
            "evpnd_peer_messages_sent", "BGP messages sent", labels=["peer"]
        )
        announced = CounterMetricFamily(
            "evpnd_peer_routes_announced", "Routes announced to us in UPDATEs", labels=["peer"]
        )
        withdrawn = CounterMetricFamily(
            "evpnd_peer_routes_withdrawn", "Routes withdrawn in UPDATEs", labels=["peer"]
        )
        refused = CounterMetricFamily(
            "evpnd_peer_routes_refused",
            "Routes not imported: a zero, multicast or broadcast MAC, no usable next hop, …",
            labels=["peer", "reason"],
        )
        accepted = GaugeMetricFamily(
            "evpnd_peer_routes_accepted",
            "Routes in the peer's Adj-RIB-In by route type",
            labels=["peer", "type"],
        )
        advertised_by_type = GaugeMetricFamily(
            "evpnd_peer_routes_advertised_by_type",
            "Routes the peer has from us by route type",
            labels=["peer", "type"],
        )
        info = GaugeMetricFamily(
            "evpnd_peer_info",
            "1 per peer; its description and AS as labels (join on peer for dashboards)",
            labels=["peer", "description", "remote_as"],
        )
        flaps = CounterMetricFamily(
            "evpnd_peer_flaps", "Established sessions with the peer that ended", labels=["peer"]
        )
        last_update = GaugeMetricFamily(
            "evpnd_peer_last_update_timestamp_seconds",
            "When the peer's last UPDATE arrived (Unix time)",
            labels=["peer"],
        )
        stale = GaugeMetricFamily(
            "evpnd_peer_stale_routes",
            "Routes kept as stale while the peer restarts (graceful restart)",
            labels=["peer"],
        )
        max_routes = GaugeMetricFamily(
            "evpnd_peer_max_routes", "The peer's max_routes, where configured", labels=["peer"]
        )
        idle_hold = GaugeMetricFamily(
            "evpnd_peer_idle_hold_seconds",
            "Seconds the peer is still held idle after sessions that kept failing (damping)",
            labels=["peer"],
        )
        output_queued = GaugeMetricFamily(
            "evpnd_peer_output_queued_bytes",
            "Bytes waiting to be written to the peer (dropped past max_output_bytes)",
            labels=["peer"],
        )
        loop_now = daemon.loop.time()
        sent_by_type: dict[int, list[tuple[int, int]]] = {}
        for address, driver in sorted(daemon.drivers.items()):
            current = driver.state
            up.add_metric([address], 1 if current is State.ESTABLISHED else 0)
            peer_as = driver.peer.settings.peer_as
            info.add_metric([address, driver.description, str(peer_as or "")], 1)
            flaps.add_metric([address], driver.flaps)
            if driver.last_update_wall is not None:
                last_update.add_metric([address], driver.last_update_wall)
            stale.add_metric([address], driver.stale_routes())
            if driver.max_routes:
                max_routes.add_metric([address], driver.max_routes)
            idle_hold.add_metric([address], driver.peer.damping.remaining(loop_now))
            output_queued.add_metric([address], driver.peer.backlog.queued)
            for candidate in State:
                state.add_metric([address, candidate.value], 1 if candidate is current else 0)
            since = driver.peer.established_at
            uptime.add_metric([address], loop_now - since if since is not None else 0)
            received.add_metric([address], daemon.rib.received_from(address))
            advertised.add_metric([address], len(driver.adj_out) if driver.adj_out else 0)
            updates.add_metric([address], driver.updates_received)
            got, sent, updates_sent = driver.message_counts()
            messages_in.add_metric([address], got)
            messages_out.add_metric([address], sent)
            updates_out.add_metric([address], updates_sent)
            announced.add_metric([address], driver.routes_announced)
            withdrawn.add_metric([address], driver.routes_withdrawn)
            for reason, count in sorted(driver.routes_refused.items()):
                refused.add_metric([address, reason], count)
            for kind, count in _by_type(daemon.rib.adj_in.get(address, {})):
                accepted.add_metric([address, str(kind)], count)
            if driver.adj_out is not None:
                # counted once per update group, however many peers share its table
                group_id = id(driver.adj_out)
                if group_id not in sent_by_type:
                    sent_by_type[group_id] = _by_type(driver.adj_out.sent)
                for kind, count in sent_by_type[group_id]:
                    advertised_by_type.add_metric([address, str(kind)], count)
        routes = GaugeMetricFamily(
            "evpnd_rib_routes", "Best paths in the Loc-RIB by route type", labels=["type"]
        )
        by_type: dict[int, int] = {}
        remote_macs: dict[int, int] = {}
        neighbours: dict[tuple[int, bool], int] = {}  # (VNI, local) -> MAC/IP bindings
        # A walk of every best path (1.2 s at a million): over a snapshot, in slices, giving
        # the loop back between them so that sessions and evpnctl are served.
        async for paths in sliced(daemon):
            for path in paths:
                route = path.route
                by_type[route.route_type] = by_type.get(route.route_type, 0) + 1
                if isinstance(route, MacIpRoute):
                    here = path.source.name == LOCAL
                    if route.ip:
                        key = (route.label1, here)
                        neighbours[key] = neighbours.get(key, 0) + 1
                    elif not here:
                        remote_macs[route.label1] = remote_macs.get(route.label1, 0) + 1
        for kind, count in sorted(by_type.items()):
            routes.add_metric([str(kind)], count)
        lag = GaugeMetricFamily(
            "evpnd_loop_lag_seconds",
            "The event loop's largest delay of a 50 ms tick since the last scrape",
        )
        lag.add_metric([], daemon.lag.take_recent())
        lag_worst = GaugeMetricFamily(
            "evpnd_loop_lag_max_seconds", "The event loop's largest delay since start"
        )
        lag_worst.add_metric([], daemon.lag.worst)
        connections_refused = CounterMetricFamily(
            "evpnd_connections_refused",
            "Connections refused: from no neighbour, too far away (GTSM), over two with a peer",
            labels=["reason"],
        )
        for reason, count in daemon.connections_refused().items():
            connections_refused.add_metric([reason], count)
        out_control = self._control()
        unreachable = GaugeMetricFamily(
            "evpnd_vteps_unreachable",
            "VTEPs the underlay cannot reach: routes towards them are not used (underlay.md)",
        )
        unreachable.add_metric([], len(daemon.rib.unreachable))
        build = GaugeMetricFamily(
            "evpnd_build_info",
            "1; evpnd's and Python's version as labels",
            labels=["version", "python"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        reloads = daemon.reloads
        reload_ok = GaugeMetricFamily(
            "evpnd_config_last_reload_successful", "1 when the last reload was applied, 0 refused"
        )
        reload_ok.add_metric([], 1 if reloads.last_ok else 0)
        reload_at = GaugeMetricFamily(
            "evpnd_config_last_reload_timestamp_seconds",
            "When the configuration was last loaded or reloaded (Unix time)",
        )
        reload_at.add_metric(
            [], reloads.last_at if reloads.last_at is not None else daemon.started_at
        )
        reload_count = CounterMetricFamily(
            "evpnd_config_reloads", "Reloads asked for, by result", labels=["result"]
        )
        reload_count.add_metric(["applied"], reloads.succeeded)
        reload_count.add_metric(["refused"], reloads.failed)
        out = [
            build,
            reload_ok,
            reload_at,
            reload_count,
            info,
            flaps,
            last_update,
            stale,
            max_routes,
            idle_hold,
            output_queued,
        ]
        out += [lag, lag_worst, connections_refused, unreachable, *out_control]
        out += [up, state, uptime, received, advertised, updates, updates_out, messages_in]
        out += [messages_out, announced, withdrawn, refused, accepted, advertised_by_type, routes]
        dataplane = daemon.dataplane
        if dataplane is not None:
            problems = GaugeMetricFamily(
                "evpnd_vni_problems",
                "Set-up problems of a VNI's vxlan port (neigh_suppress off, learning on, …)",
                labels=["vni"],
            )
            local = GaugeMetricFamily("evpnd_vni_local_macs", "MACs learned here", labels=["vni"])
            remote = GaugeMetricFamily(
                "evpnd_vni_remote_macs", "MACs behind other VTEPs", labels=["vni"]
            )
            vteps = GaugeMetricFamily(
                "evpnd_vni_remote_vteps", "Remote VTEPs in the flood list", labels=["vni"]
            )
            local_neigh = GaugeMetricFamily(
                "evpnd_vni_local_neighbours", "MAC/IP bindings learned here", labels=["vni"]
            )
            remote_neigh = GaugeMetricFamily(
                "evpnd_vni_remote_neighbours",
                "MAC/IP bindings behind other VTEPs (ARP/ND suppression)",
                labels=["vni"],
            )
            inner = GaugeMetricFamily(
                "evpnd_vni_inner_mtu_bytes",
                "The largest inner frame the ways to the VNI's remote VTEPs carry",
                labels=["vni"],
            )
            mtu_problem = GaugeMetricFamily(
                "evpnd_vni_mtu_problem",
                "1 when the VNI's vxlan device or bridge is larger than its inner MTU",
                labels=["vni"],
            )
            watch = daemon.underlay
            local_counts = daemon.local.mac_counts()
            for vni, port in sorted(dataplane.ports.items()):
                problems.add_metric([str(vni)], len(port.problems))
                mtu_problem.add_metric([str(vni)], int(vni in watch.mtu_problems))
                if vni in watch.inner:
                    inner.add_metric([str(vni)], watch.inner[vni])
                local_neigh.add_metric([str(vni)], neighbours.get((vni, True), 0))
                remote_neigh.add_metric([str(vni)], neighbours.get((vni, False), 0))
                local.add_metric([str(vni)], local_counts.get(vni, 0))
                remote.add_metric([str(vni)], remote_macs.get(vni, 0))
                vteps.add_metric(
                    [str(vni)],
                    sum(
                        1 for ifindex, _ in dataplane.state.desired.flood if ifindex == port.ifindex
                    ),
                )
            counters = dataplane.counters
            ops = CounterMetricFamily("evpnd_netlink_operations", "Netlink messages sent")
            ops.add_metric([], counters.netlink_ops)
            errors = CounterMetricFamily("evpnd_netlink_errors", "Netlink messages refused")
            errors.add_metric([], counters.netlink_errors)
            repairs = CounterMetricFamily("evpnd_reconcile_repairs", "Kernel entries repaired")
            repairs.add_metric([], counters.repairs)
            differences = GaugeMetricFamily(
                "evpnd_kernel_differences",
                "Kernel entries known to differ from what evpnd wants (strays, refused writes)",
            )
            differences.add_metric([], dataplane.known_differences())
            last_pass = GaugeMetricFamily(
                "evpnd_kernel_last_reconcile_timestamp_seconds",
                "When the last periodic reconciliation pass ran (Unix time)",
            )
            if dataplane.last_pass_wall is not None:
                last_pass.add_metric([], dataplane.last_pass_wall)
            out += [differences, last_pass]
            moves = CounterMetricFamily("evpnd_mac_moves", "MAC mobility events")
            moves.add_metric([], daemon.local.moves)
            frozen = GaugeMetricFamily(
                "evpnd_duplicate_macs_frozen", "MACs frozen by duplicate address detection"
            )
            frozen.add_metric([], len(daemon.local.duplicates.frozen))
            latency = HistogramMetricFamily(
                "evpnd_update_to_kernel_seconds",
                "From an UPDATE's arrival to its entries' netlink write (oldest in a batch)",
            )
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*LATENCY_BUCKETS, float("inf")), counters.latency_counts, strict=True
            ):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            latency.add_metric([], buckets, counters.latency_sum)
            l3_routes = GaugeMetricFamily(
                "evpnd_l3vni_routes_installed",
                "Routes installed for the L3VNI (Type 5 prefixes and remote hosts)",
                labels=["l3vni", "vrf"],
            )
            l3_advertised = GaugeMetricFamily(
                "evpnd_l3vni_prefixes_advertised",
                "Type 5 prefixes announced for the L3VNI",
                labels=["l3vni", "vrf"],
            )
            for view in l3vni_view(daemon):
                labels = [str(view["vni"]), view["vrf"]]
                l3_routes.add_metric(labels, view["routes_installed"])
                l3_advertised.add_metric(labels, len(view["advertised"]))
            out += [problems, local, remote, vteps, local_neigh, remote_neigh, inner, mtu_problem]
            out += [l3_routes, l3_advertised]
            out += [ops, errors, repairs, moves, frozen, latency]
        return out

    def _control(self) -> list[Any]:
        """The control socket: clients open, refused (all slots taken, or only root's left)
        and closed (idle, not reading their answer)."""
        control = self.control
        if control is None:
            return []
        clients = GaugeMetricFamily("evpnd_control_clients", "Control socket clients connected")
        clients.add_metric([], control.clients)
        refused = CounterMetricFamily(
            "evpnd_control_clients_refused",
            "Control clients refused: every slot taken (full), or only root's left",
            labels=["reason"],
        )
        for reason, count in control.refused.items():
            refused.add_metric([reason], count)
        closed = CounterMetricFamily(
            "evpnd_control_clients_closed",
            "Control clients closed: no request (idle) or answer not read for 30 s",
            labels=["reason"],
        )
        for reason, count in control.closed.items():
            closed.add_metric([reason], count)
        return [clients, refused, closed]


def _by_type(table: Mapping[Any, Any]) -> list[tuple[int, int]]:
    """Route count per type of a key -> path or key -> (route, attributes) table; the route
    type is the first field of every route key."""
    counts: dict[int, int] = {}
    for key in table:
        counts[key[0]] = counts.get(key[0], 0) + 1
    return sorted(counts.items())


def serve(daemon: Daemon, address: str, port: int, control: ControlServer | None = None) -> None:
    REGISTRY.register(DaemonCollector(daemon, control))
    start_http_server(port, addr=address)
