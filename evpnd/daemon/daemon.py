"""The daemon: one RIB, the peers around it, the listener and the control socket."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import pathlib
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, cast

import structlog

from evpnd import __version__, config_changes
from evpnd.bgp.damping import Damping
from evpnd.bgp.negotiation import LocalSettings
from evpnd.bgp.peer import PeerSettings
from evpnd.bgp.update import end_of_rib
from evpnd.config import Config, NeighborConfig
from evpnd.control.watch import EventStream, route_events
from evpnd.daemon import sockets
from evpnd.daemon.debugging import Debugging
from evpnd.daemon.lag import LoopLag
from evpnd.daemon.peer_driver import BgpProtocol, PeerDriver
from evpnd.daemon.rd_index import RdIndexStore
from evpnd.daemon.underlay_watch import UnderlayWatch
from evpnd.daemon.views import vni_of
from evpnd.events import Event, readable
from evpnd.kernel.links import VxlanPort
from evpnd.local import vni_changes
from evpnd.local.learning import LocalRoutes, Observation
from evpnd.local.origination import L3Vni, Originator, Vni
from evpnd.local.step import Step
from evpnd.ratelimit import Throttle
from evpnd.rib.adjout import AdjRibOut, Chunks, Policy, Speaker, chunked
from evpnd.rib.locrib import Rib, RouteChange
from evpnd.rib.paths import LOCAL, Path, Source
from evpnd.wire.constants import CeaseSubcode

if TYPE_CHECKING:
    from evpnd.kernel.dataplane import DataPlane

log = structlog.get_logger("evpnd")


@dataclass
class Reloads:
    """How the configuration reloads went (metrics, alert rules)."""

    last_at: float | None = None
    last_ok: bool = True
    succeeded: int = 0
    failed: int = 0

    def done(self, now: float) -> None:
        self.last_at, self.last_ok = now, True
        self.succeeded += 1

    def refused(self, now: float) -> None:
        self.last_at, self.last_ok = now, False
        self.failed += 1


class Daemon:
    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.rib = Rib()
        self.speaker = Speaker(
            config.asn,
            config.router_id,
            route_reflector=any(n.route_reflector_client for n in config.neighbors)
            or any(r.route_reflector_client for r in config.listen_ranges),
        )
        self.local_source = Source(LOCAL, config.router_id, config.asn, ibgp=True)
        self.drivers: dict[str, PeerDriver] = {}
        #: Type 3, static Type 2 and Type 5 routes from the configuration and the kernel's VNIs
        self.originator = Originator()
        self.kernel_ports: dict[int, VxlanPort] = {}
        #: the L3VNIs' vxlan ports (their bridges' MACs are the Router's MACs)
        self.kernel_l3_ports: dict[int, VxlanPort] = {}
        self.dataplane: DataPlane | None = None
        #: `evpnctl reload`: re-reads the configuration file (None: running on the default)
        self.reload_file: Callable[[], Awaitable[dict[str, object]]] | None = None
        self.reloads = Reloads()
        self.started_at = time.time()
        self._server: asyncio.AbstractServer | None = None
        self._listen_socket: socket.socket | None = None
        #: connections from addresses that are no neighbour: counted, logged sparingly
        self.strangers_refused = 0
        self.stranger_log = Throttle(60.0)
        #: the idle holds of listen-range peers, which outlive their drivers (a dynamic peer
        #: is forgotten when its session ends): the oldest forgotten past DAMPING_KEPT
        self._damping: dict[str, Damping] = {}
        self._flush_scheduled = False
        self._peers_started = False
        self.underlay = UnderlayWatch(self)
        #: peers of one outbound policy share their UPDATEs (rib/adjout.py)
        self.groups: dict[Policy, UpdateGroup] = {}
        #: what `evpnctl watch` shows
        self.events = EventStream()
        #: peers and VNIs whose detailed events are logged (`evpnctl debug`)
        self.debugging = Debugging(set(config.debug_peers), set(config.debug_vnis))
        #: local MACs and their mobility: the sans-I/O core the kernel's observations feed
        self.local = LocalRoutes(self.rib)
        self.started_mono = loop.time()
        #: how late the loop runs (metrics, `show summary`)
        self.lag = LoopLag(loop)
        self._marker = pathlib.Path(config.state_dir) / "stopped-at"
        self.restarting = self._restarting()

    def peers_up(self) -> int:
        return sum(1 for d in self.drivers.values() if d.adj_out is not None)

    def status_line(self) -> str:
        """One line for `systemctl status` (sd_notify STATUS=): what an operator checks first."""
        words = [f"{self.peers_up()}/{len(self.drivers)} peers up", f"{len(self.vnis)} VNIs"]
        words.append(f"{len(self.rib)} routes")
        if self.rib.unreachable:
            words.append(f"{len(self.rib.unreachable)} VTEPs unreachable")
        if self.dataplane is not None:
            known = self.dataplane.known_differences()
            words.append("kernel in sync" if not known else f"kernel: {known} differences")
        if not self.reloads.last_ok:
            words.append("last reload refused")
        return ", ".join(words)

    def report(self, event: Event) -> None:
        """Log an event (when it has a log line) and hand it to `evpnctl watch` clients."""
        if event.message:
            getattr(log, event.level)(event.message, **event.fields())
        self.events.publish(event)

    # --- start and stop ----------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        self.lag.start()
        self._originate(config)
        if config.evpn.program_kernel:
            # Before the sessions: peers then learn our VNIs' routes in the first UPDATEs.
            from evpnd.kernel.dataplane import DataPlane

            try:
                dataplane = DataPlane(
                    self.loop,
                    self.rib,
                    importing=self.importing_vnis,
                    importing_l3=self.importing_l3vnis,
                    l3vni_configs=lambda: self.config.evpn.l3vnis,
                    settled=self.peers_settled,
                    report=self.report,
                    on_ports=self.kernel_changed,
                    on_local=self.local_observed,
                )
                self.dataplane = dataplane
                await dataplane.start()
            except OSError as exc:
                self.dataplane = None
                log.error("kernel programming is off: netlink failed", error=str(exc))
        for neighbor in config.neighbors:
            self.drivers[neighbor.address] = self._driver(neighbor)
        await self._listen()
        for driver in self.drivers.values():
            driver.start()
        self._peers_started = True
        self.underlay.start()
        log.info(
            "started",
            version=__version__,
            asn=config.asn,
            router_id=config.router_id,
            listen=f"[{config.listen_address}]:{config.listen_port}",
            neighbors=len(config.neighbors),
        )
        for note in config.notes:
            log.warning("configuration note", note=note)

    def _originate(self, config: Config) -> None:
        """Bring the locally originated routes to what `config` and the kernel's VNIs say, and
        the learned hosts' routes to their VNIs' RDs, RTs and L3VNIs."""
        store = RdIndexStore(config.state_dir)
        step = self.originator.originate(config, store, self.kernel_ports, self.kernel_l3_ports)
        if store.error:
            log.warning("rd index store", problem=store.error)
        self._apply(step)
        self._apply(
            self.local.configure(self.originator.vnis, self.originator.l3_of_l2, self.loop.time())
        )
        self.settle()

    @property
    def vnis(self) -> list[Vni]:
        return self.originator.vnis

    @property
    def l3vnis(self) -> list[L3Vni]:
        return self.originator.l3vnis

    @property
    def l3_of_l2(self) -> dict[int, L3Vni]:
        return self.originator.l3_of_l2

    def kernel_changed(self, ports: dict[int, VxlanPort], l3_ports: dict[int, VxlanPort]) -> None:
        """The data plane found VNIs come or go: re-originate (Type 3 per VNI, Type 5 per
        L3VNI); VNIs that left take their local MACs with them."""
        self.kernel_ports = ports
        self.kernel_l3_ports = l3_ports
        self._apply(self.local.ports_changed(ports))
        self._originate(self.config)

    def local_observed(self, observations: list[Observation]) -> None:
        """What the kernel says of this VTEP's own hosts."""
        if self.debugging.any_vni:
            now = self.loop.time()
            for seen in observations:
                if self.debugging.vni(seen.vni):
                    # the MAC and the address in their text forms (events.readable)
                    fields = {k: readable(v) for k, v in seen._asdict().items()}
                    what = type(seen).__name__
                    self.debugging.emit("vni", seen.vni, now, "kernel saw", what=what, **fields)
        self._apply(self.local.observe(observations, self.loop.time()))
        self.settle()

    def unfreeze(self, vni: int, mac: bytes) -> bool:
        """`evpnctl clear mac`: False when the MAC was not frozen."""
        step = self.local.unfreeze(vni, mac, self.loop.time())
        if step is None:
            return False
        self._apply(step)
        if self.dataplane is not None:
            self.dataplane.relearn()  # what came while it was frozen
        self.settle()
        return True

    def connections_refused(self) -> dict[str, int]:
        """Connections closed before a byte was read, by reason (metrics, show summary)."""
        drivers = self.drivers.values()
        return {
            "stranger": self.strangers_refused,
            "gtsm": sum(d.gtsm_refused for d in drivers),
            "too many": sum(d.peer.connections_refused for d in drivers),
            "damped": sum(d.peer.connections_damped for d in drivers),
        }

    def peers_settled(self) -> bool:
        """Every configured peer has sent End-of-RIB, or the restart time has passed: what
        the kernel has and the RIB does not want may go now."""
        if not self._peers_started:
            return False  # (no peers yet: that is not "every peer has sent End-of-RIB")
        if self.loop.time() - self.started_mono > self.config.graceful_restart_time:
            return True
        return all(d.end_of_rib_received for d in self.drivers.values() if not d.dynamic)

    async def reload(self, config: Config) -> tuple[list[str], list[str]]:
        """Apply a new configuration, all of it, and say what it changed (one line each).
        Peers are added, removed (Cease / Peer De-configured, as a Hard Reset), reset where
        what their session negotiated changed, or changed in place; listen ranges' keys and
        dynamic peers follow their ranges; local routes are re-originated under new RDs and
        RTs; and when what the VNIs import changed, every best path's import is worked out
        again, so the kernel ends as a daemon started with this file would program it.
        A key that needs a restart (config_changes.RESTART_ONLY) refuses the whole file:
        `ReloadRefused`, nothing applied. Returns what changed, and what the kernel would not
        take (an MD5 key: said, everything else applied)."""
        old = self.config
        restart = config_changes.needs_restart(old, config)
        if restart:
            raise ReloadRefused([str(r) for r in restart])
        done: list[str] = []
        #: what the kernel refused to take (an MD5 key): said, the rest applied all the same
        failed: list[str] = []
        reset_all = config_changes.session_wide(old, config)
        if reset_all:
            done.append(f"every session reset to take {', '.join(reset_all)}")
        self.config = config
        before = {n.address: n for n in old.neighbors}
        after = {n.address: n for n in config.neighbors}
        for change in config_changes.neighbor_changes(old, config, bool(reset_all)):
            done.append(str(change))
            address = change.address
            if change.what == "updated":
                # description, max_routes, connect_retry, max_output_bytes: nothing negotiated
                changed, kept = after[address], self.drivers[address]
                kept.description = changed.description
                kept.max_routes = changed.max_routes
                kept.peer.backlog.limit = changed.max_output_bytes
                kept.peer.settings = replace(
                    kept.peer.settings, connect_retry=changed.connect_retry
                )
                log.info("reload: peer updated in place", peer=address, keys=list(change.keys))
                continue
            if change.what in ("removed", "reset"):
                gone = change.what == "removed"
                subcode = (
                    CeaseSubcode.PEER_DECONFIGURED
                    if gone
                    else CeaseSubcode.OTHER_CONFIGURATION_CHANGE
                )
                self._end(
                    address, "peer deconfigured" if gone else "peer settings changed", subcode
                )
                if self._listen_socket is not None and before[address].password:
                    with contextlib.suppress(OSError):  # the key may be gone already
                        sockets.set_md5(self._listen_socket, address, None)
                log.info("reload: peer removed" if gone else "reload: peer reset", peer=address)
        for address, neighbor in after.items():
            running = self.drivers.get(address)
            if running is not None and running.dynamic:
                # a listen range's peer is now a neighbour of its own: its settings now
                self._end(
                    address, "now a configured neighbor", CeaseSubcode.OTHER_CONFIGURATION_CHANGE
                )
            if address not in self.drivers:
                if self._listen_socket is not None and neighbor.password:
                    self._md5(address, neighbor.password, None, failed)
                driver = self._driver(neighbor)
                self.drivers[address] = driver
                driver.start()
                log.info("reload: peer started", peer=address)
        ranges = config_changes.range_changes(old, config)
        if ranges or reset_all:
            done += ranges
            self._ranges_changed(old, config, bool(reset_all), failed)
        done += config_changes.plain_changes(old, config)
        if config.resolve_via_default != old.resolve_via_default:
            self.underlay.look_soon()
        if (config.debug_peers, config.debug_vnis) != (old.debug_peers, old.debug_vnis):
            # the file's `debug:` as it is now (what `evpnctl debug` changed is replaced)
            self.debugging.peers = set(config.debug_peers)
            self.debugging.vnis = set(config.debug_vnis)
            done.append("debug scopes set from the file")
        vnis_before, l3_before = list(self.vnis), list(self.l3vnis)
        self._originate(config)
        done += vni_changes.describe(vnis_before, self.vnis)
        done += vni_changes.describe(l3_before, self.l3vnis, "L3VNI")
        imports_changed = vni_changes.import_rules(vnis_before) != vni_changes.import_rules(
            self.vnis
        ) or vni_changes.import_rules(l3_before) != vni_changes.import_rules(self.l3vnis)
        if self.dataplane is not None:
            # L3VNI settings and VNIs the kernel has (advertise_all_vni) are looked at again
            self.dataplane.rediscover()
            if imports_changed:
                kernel = await self.dataplane.imports_changed()
                done.append(
                    "kernel: imports worked out again for every path: "
                    + (_counted(kernel) if kernel is not None else "with the VNIs read anew")
                )
        if not done:
            done.append("nothing changed")
        log.info(
            "reloaded",
            neighbors=len(config.neighbors),
            vnis=len(config.evpn.vnis),
            changes=done,
        )
        for problem in failed:
            log.error("reload: not applied", problem=problem)
        return done, failed

    def _md5(
        self, address: str, password: str | None, prefix_len: int | None, failed: list[str]
    ) -> None:
        """A TCP MD5 key on the listen socket; what the kernel refuses (ENOMEM past
        optmem_max, say) is said, and the reload goes on."""
        assert self._listen_socket is not None
        try:
            sockets.set_md5(self._listen_socket, address, password, prefix_len)
        except OSError as exc:
            where = address if prefix_len is None else f"{address}/{prefix_len}"
            failed.append(f"TCP MD5 key for {where}: the kernel refused it ({exc.strerror})")

    def _end(self, address: str, message: str, subcode: int) -> None:
        """A session and its routes gone (a peer removed, or reset to take new settings)."""
        driver = self.drivers.pop(address, None)
        if driver is not None:
            driver.stop(message, subcode)
            self.rib.remove_source(address)
            self.settle()

    def _ranges_changed(self, old: Config, new: Config, reset_all: bool, failed: list[str]) -> None:
        """The listen socket's keys as the new ranges say; a dynamic peer whose range is gone
        or changed (or every one, for a session-wide key) ends and may come back under the
        new settings."""
        sock = self._listen_socket
        if sock is not None:
            for listen_range in old.listen_ranges:
                if listen_range.password and listen_range not in new.listen_ranges:
                    prefix = listen_range.prefix
                    with contextlib.suppress(OSError):
                        sockets.set_md5(sock, str(prefix.network_address), None, prefix.prefixlen)
            for listen_range in new.listen_ranges:
                if listen_range.password and listen_range not in old.listen_ranges:
                    prefix = listen_range.prefix
                    self._md5(
                        str(prefix.network_address),
                        listen_range.password,
                        prefix.prefixlen,
                        failed,
                    )
        for address, driver in list(self.drivers.items()):
            if not driver.dynamic:
                continue
            was = config_changes.range_of(old, address)
            now = config_changes.range_of(new, address)
            if now is None or now != was or reset_all:
                subcode = (
                    CeaseSubcode.PEER_DECONFIGURED
                    if now is None
                    else CeaseSubcode.OTHER_CONFIGURATION_CHANGE
                )
                self._end(address, "listen range changed", subcode)
                log.info("reload: dynamic peer ended", peer=address)

    async def stop(self, message: str = "evpnd restarting") -> None:
        """Stop for a restart: peers that can keep our routes do (graceful restart), and the
        next start sets the R bit if it comes within the restart time. The kernel is frozen
        first: the sessions ending must not remove their routes' entries (the peers keep
        ours, we keep theirs, and traffic flows on while we are away)."""
        self.underlay.stop()
        if self.dataplane is not None:
            self.dataplane.freeze()
        for driver in list(self.drivers.values()):
            driver.stop(message, graceful=True)
        if self.dataplane is not None:
            await self.dataplane.stop(flush=self.config.evpn.flush_on_exit)
        try:
            self._marker.parent.mkdir(parents=True, exist_ok=True)
            self._marker.write_text(str(time.time()))
        except OSError as exc:
            log.warning("cannot note the shutdown time", path=str(self._marker), error=exc.strerror)
        await asyncio.sleep(0.05)  # let the NOTIFICATIONs leave
        if self._server is not None:
            self._server.close()
        self.lag.stop()
        log.info("stopped")

    def _restarting(self) -> bool:
        """RFC 4724 §4.1: the R bit says we are coming back from a restart, so peers keep our
        routes and wait for our End-of-RIB. True when the last clean stop was recent."""
        try:
            stopped_at = float(self._marker.read_text())
            self._marker.unlink()
        except (OSError, ValueError):
            return False
        return time.time() - stopped_at < self.config.graceful_restart_time

    def _local_settings(self, hold_time: int | None) -> LocalSettings:
        config = self.config
        return LocalSettings(
            asn=config.asn,
            router_id=config.router_id,
            hold_time=config.hold_time if hold_time is None else hold_time,
            hostname=config.hostname,
            graceful_restart_time=config.graceful_restart_time,
            graceful_notification=config.graceful_notification,
            restarting=self.restarting,
        )

    def _driver(self, neighbor: NeighborConfig) -> PeerDriver:
        external = neighbor.remote_as != self.config.asn
        ttl, min_ttl = neighbor.multihop, None
        if neighbor.ttl_security_hops is not None:
            ttl, min_ttl = 255, 256 - neighbor.ttl_security_hops
        elif ttl is None and external:
            ttl = 1  # eBGP without multihop: directly connected only, as RFC 4271 expects
        return PeerDriver(
            self,
            PeerSettings(
                neighbor.address,
                neighbor.remote_as,
                passive=neighbor.passive,
                connect_retry=neighbor.connect_retry,
                stale_path_time=self.config.stale_path_time,
            ),
            self._local_settings(neighbor.hold_time),
            password=neighbor.password,
            port=neighbor.port,
            update_source=neighbor.update_source,
            ttl=ttl,
            min_ttl=min_ttl,
            route_reflector_client=neighbor.route_reflector_client,
            max_routes=neighbor.max_routes,
            description=neighbor.description,
            output_limit=neighbor.max_output_bytes,
        )

    # --- listening -----------------------------------------------------------------------------

    async def _listen(self) -> None:
        config = self.config
        sock = sockets.listening_socket(config.listen_address, config.listen_port)
        for neighbor in config.neighbors:
            if neighbor.password:
                sockets.set_md5(sock, neighbor.address, neighbor.password)
            if neighbor.ttl_security_hops is not None:
                log.info("gtsm", peer=neighbor.address, hops=neighbor.ttl_security_hops)
        for listen_range in config.listen_ranges:
            if listen_range.password:
                # one key for the whole prefix: a peer in the range without it, or with
                # another, never completes the handshake (a neighbour's own key is more
                # specific and wins for its address)
                prefix = listen_range.prefix
                sockets.set_md5(
                    sock, str(prefix.network_address), listen_range.password, prefix.prefixlen
                )
        self._listen_socket = sock
        self._server = await self.loop.create_server(self._accept, sock=sock)

    @property
    def listen_port(self) -> int:
        assert self._listen_socket is not None
        return int(self._listen_socket.getsockname()[1])

    def _accept(self) -> asyncio.Protocol:
        return _Gate(self)

    def driver_for(self, address: str) -> PeerDriver | None:
        driver = self.drivers.get(address)
        if driver is not None:
            return driver
        # the most specific range, as the kernel picks the range's MD5 key
        listen_range = config_changes.range_of(self.config, address)
        if listen_range is None:
            return None
        driver = PeerDriver(
            self,
            PeerSettings(
                address,
                listen_range.remote_as,
                passive=True,
                stale_path_time=self.config.stale_path_time,
            ),
            self._local_settings(None),
            route_reflector_client=listen_range.route_reflector_client,
            max_routes=listen_range.max_routes,
            dynamic=True,
            damping=self._dynamic_damping(address),
        )
        self.drivers[address] = driver
        driver.start()
        log.info("dynamic peer", peer=address, range=str(listen_range.prefix))
        return driver

    #: listen-range addresses whose idle hold is remembered
    DAMPING_KEPT = 10_000

    def _dynamic_damping(self, address: str) -> Damping:
        damping = self._damping.pop(address, None) or Damping()
        self._damping[address] = damping
        if len(self._damping) > self.DAMPING_KEPT:
            del self._damping[next(iter(self._damping))]
        return damping

    def may_be_peer(self, address: str) -> bool:
        """A neighbour, or an address a listen range would accept."""
        if address in self.drivers:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in r.prefix for r in self.config.listen_ranges)

    def forget_dynamic(self, driver: PeerDriver) -> None:
        if self.drivers.get(driver.address) is driver:
            del self.drivers[driver.address]
            driver.stop()

    def importing_vnis(self, path: Path) -> list[int]:
        """The local VNIs whose import RTs match the path's (auto: any *:VNI)."""
        return _importing(self.vnis, path)

    def importing_l3vnis(self, path: Path) -> list[int]:
        """The L3VNIs whose import RTs match the path's."""
        return _importing(self.l3vnis, path)

    # --- route distribution ------------------------------------------------------------------

    def settle(self, received_at: float | None = None) -> None:
        """Hand the RIB's changes on, in one order, until there are none: the kernel's wish
        first, then the local-routes core (a remote route may mean a local MAC moved away; its
        withdrawal is a change of its own, handed on in the next round), then the peers'
        Adj-RIB-Outs, then `evpnctl watch`. `received_at`: loop time of the UPDATE behind them
        (the UPDATE-to-kernel latency metric)."""
        while changes := self.rib.take_changes():
            if self.dataplane is not None:
                self.dataplane.on_changes(changes, received_at)
            self._apply(self.local.rib_changed(changes, self.loop.time()))
            for group in self.groups.values():
                group.adj_out.enqueue(changes)
            self.events.route_changes(changes)
            if self.debugging.any_vni:
                self._debug_changes(changes)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)

    def _debug_changes(self, changes: list[RouteChange]) -> None:
        debugging, now = self.debugging, self.loop.time()
        for change, event in zip(changes, route_events(changes), strict=True):
            path = change.new or change.old
            vni = event.vni
            if vni is None and path is not None:
                vni = vni_of(path.route, path.attributes)  # Type 3 and 5 too
            if debugging.vni(vni):
                debugging.emit("vni", vni, now, "best path", **event.fields())

    def _apply(self, step: Step) -> None:
        """The local-routes core's output: its RIB updates (taken by the next `settle`), then
        its events."""
        now = time.time()
        for update in step.updates:
            self.rib.update(self.local_source, *update, received=now)
        for event in step.events:
            self.report(event)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for group in list(self.groups.values()):
            if group.adj_out.pending:
                self._flush_group(group)

    def _flush_group(self, group: UpdateGroup) -> None:
        """The group's UPDATEs, built once, to every member."""
        updates = chunked(group.adj_out.flush())
        if updates.messages:
            for member in group.members:
                member.send_updates(updates)

    # --- update groups -----------------------------------------------------------------------

    def join_group(self, driver: PeerDriver, policy: Policy) -> AdjRibOut:
        """A session came up: it joins the peers of its policy, and gets the group's table
        (built once for everyone who joins while it is unchanged) and End-of-RIB."""
        group = self.groups.get(policy)
        if group is None:
            group = self.groups[policy] = UpdateGroup(AdjRibOut(policy, self.speaker))
            table = group.adj_out.load(self.rib)
        else:
            self._flush_group(group)  # the members are up to date: the table is what they have
            table = group.adj_out.table()
        group.members.append(driver)
        driver.send_updates(Chunks([*table.chunks, end_of_rib()], table.messages + 1))
        return group.adj_out

    def leave_group(self, driver: PeerDriver) -> None:
        for policy, group in list(self.groups.items()):
            if driver in group.members:
                group.members.remove(driver)
                if not group.members:
                    del self.groups[policy]  # its table goes with it


class ReloadRefused(Exception):
    """A reload that cannot be applied as a whole: nothing of it was."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _counted(counts: dict[str, int]) -> str:
    """A reimport's counts of entries written and removed, in words."""
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "no entry changes"


@dataclass
class UpdateGroup:
    """The sessions of one outbound policy and the Adj-RIB-Out they share."""

    adj_out: AdjRibOut
    members: list[PeerDriver] = field(default_factory=list)


def _importing(vnis: Sequence[Vni], path: Path) -> list[int]:
    if path.source.is_local:
        return []
    targets = path.attributes.route_targets
    return [vni.vni for vni in vnis if vni.imports(targets)]


class _Gate(BgpProtocol):
    """An accepted connection, before we know which peer it belongs to."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.conn_id = None
        self.transport = None
        self.outbound = False
        self._init_output()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        address = sockets.normalise(peer[0]) if peer else "?"
        driver = self.daemon.driver_for(address)
        if driver is None:
            transport.abort()
            # said once a minute per address, with the count: a scan must not fill the log
            daemon = self.daemon
            daemon.strangers_refused += 1
            held = daemon.stranger_log.allow(address, daemon.loop.time())
            if held is not None:
                log.warning(
                    "connection refused",
                    peer=address,
                    reason="neither a neighbor nor in a listen range",
                    since_last=held or None,
                )
            return
        self.driver = driver
        super().connection_made(transport)
