"""Local MACs and MAC/IP bindings as Type 2 routes, with MAC mobility (RFC 7432 §15) and
duplicate detection (§15.1). No I/O, no clock: observations of the kernel, RIB changes and `now`
in; RIB updates and events out (a `Step`), for the daemon to apply and report.

The rules:
- A MAC on a local bridge port is announced; a static one (NOARP, an orchestrator's) is sticky.
- A MAC/IP binding on a VNI's SVI is announced with the IP, and, when the VNI is tied to an
  L3VNI, with its label, RTs and Router's MAC (RFC 9135 §5.1) — unless only the binding is here
  while the MAC itself is advertised by another VTEP: that host lives there, and announcing it
  would start a sequence-number war.
- A MAC learned here that another VTEP advertises is announced with a sequence number one above
  the highest it has (§15: the MAC moved here).
- A remote route for a MAC learned here with a higher sequence number, or sticky, means the MAC
  moved away: the local routes go (unless ours is sticky). A remote *withdrawal* never removes a
  local route: only the kernel saying the MAC is gone does.
- `moves` moves within `window` seconds freeze a MAC (§15.1): it is no longer announced until
  `unfreeze` (`evpnctl clear mac`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from evpnd.bgp.attributes import PathAttributes
from evpnd.events import MacCleared, MacFrozen, MacMovedAway, MacMovedHere
from evpnd.evpn.identifiers import ZERO_ESI, mac_to_text
from evpnd.evpn.routes import EvpnRoute, MacIpRoute
from evpnd.local.attributes import local_attributes
from evpnd.local.duplicates import DuplicateDetector
from evpnd.local.origination import L3Vni, Vni
from evpnd.local.step import NO_ATTRIBUTES, RibUpdate, Step
from evpnd.rib.bestpath import following, mobility, newer
from evpnd.rib.locrib import Rib, RouteChange


class LocalMac(NamedTuple):
    """A MAC on one of a VNI's local bridge ports (`sticky`: a static entry)."""

    vni: int
    mac: bytes
    sticky: bool = False
    #: the bridge port it is on (`show mac`), 0 when unknown
    ifindex: int = 0


class LocalMacGone(NamedTuple):
    vni: int
    mac: bytes


class LocalHost(NamedTuple):
    """A MAC/IP binding (ARP/ND) on a VNI's SVI."""

    vni: int
    mac: bytes
    ip: bytes


class LocalHostGone(NamedTuple):
    vni: int
    ip: bytes


Observation = LocalMac | LocalMacGone | LocalHost | LocalHostGone

#: (VNI, MAC, IP or b"")
LocalKey = tuple[int, bytes, bytes]


class LocalRoutes:
    def __init__(self, rib: Rib, duplicates: DuplicateDetector | None = None) -> None:
        self.rib = rib
        self.duplicates = duplicates if duplicates is not None else DuplicateDetector()
        self.vnis: dict[int, Vni] = {}
        self.l3_of_l2: dict[int, L3Vni] = {}
        #: what the kernel has here -> sticky
        self.local: dict[LocalKey, bool] = {}
        #: (VNI, MAC) -> its local keys (the MAC alone, and each of its IPs)
        self._keys: dict[tuple[int, bytes], set[LocalKey]] = {}
        #: (VNI, IP) -> its local keys (one, unless the IP is moving between MACs): the keys
        #: an IP's news concern, found without a walk over every local host
        self._ips: dict[tuple[int, bytes], set[LocalKey]] = {}
        #: the route in the RIB for each local key (a withdrawal needs no VNI to rebuild it)
        self._announced: dict[LocalKey, MacIpRoute] = {}
        #: our sequence number per (VNI, MAC)
        self._sequence: dict[tuple[int, bytes], int] = {}
        #: moves in either direction, for the metrics
        self.moves = 0
        #: (VNI, MAC) -> the bridge port the kernel last saw it on (`show mac`)
        self.ports: dict[tuple[int, bytes], int] = {}

    # --- reading -------------------------------------------------------------------------------

    def mac_counts(self) -> dict[int, int]:
        """Local MACs per VNI (for `show vni` and the metrics)."""
        counts: dict[int, int] = {}
        for vni, _ in self._keys:
            counts[vni] = counts.get(vni, 0) + 1
        return counts

    # --- inputs --------------------------------------------------------------------------------

    def configure(self, vnis: Sequence[Vni], l3_of_l2: dict[int, L3Vni], now: float) -> Step:
        """The VNIs (their RDs, RTs, VTEP) or their L3VNIs changed: announce again what that
        changes; a VNI no longer configured stops being announced (its MACs stay known)."""
        before, before_l3 = self.vnis, self.l3_of_l2
        self.vnis = {v.vni: v for v in vnis}
        self.l3_of_l2 = dict(l3_of_l2)
        changed = [
            key
            for key in self.local
            if before.get(key[0]) != self.vnis.get(key[0])
            or before_l3.get(key[0]) != self.l3_of_l2.get(key[0])
        ]
        step = Step()
        self._announce(changed, now, step)
        return step

    def ports_changed(self, kernel_vnis: Iterable[int]) -> Step:
        """The kernel's VNIs: those that went take their local MACs with them."""
        present = set(kernel_vnis)
        step = Step()
        self._forget([k for k in self.local if k[0] not in present], step)
        self.ports = {k: v for k, v in self.ports.items() if k[0] in present}
        return step

    def observe(self, observations: Iterable[Observation], now: float) -> Step:
        step = Step()
        fresh: list[LocalKey] = []
        gone: list[LocalKey] = []
        for seen in observations:
            if isinstance(seen, LocalMac):
                key = (seen.vni, seen.mac, b"")
                if seen.ifindex:
                    self.ports[seen.vni, seen.mac] = seen.ifindex
                if self._learn(key, seen.sticky):
                    fresh.append(key)
            elif isinstance(seen, LocalHost):
                key = (seen.vni, seen.mac, seen.ip)
                if (seen.vni, seen.mac, b"") not in self.local and any(
                    not p.source.is_local for p in self.rib.mac_paths(seen.vni, seen.mac)
                ):
                    continue  # the host lives behind another VTEP (see the module's rules)
                if self._learn(key, False):
                    fresh.append(key)
                    # The SVI holds one MAC per IP: a binding of the IP to another MAC is
                    # gone — at once, so that a later observation in this batch may bring it
                    # back (the IP moving back) and be announced again.
                    moved = [k for k in self._ips.get(key[::2], ()) if k[1] != seen.mac]
                    self._forget(moved, step)
            elif isinstance(seen, LocalMacGone):
                key = (seen.vni, seen.mac, b"")
                self.ports.pop((seen.vni, seen.mac), None)
                if key in self.local:
                    gone.append(key)
            else:
                gone += self._ips.get((seen.vni, seen.ip), ())
        self._forget(gone, step)
        self._announce([k for k in fresh if k in self.local], now, step)
        return step

    def rib_changed(self, changes: list[RouteChange], now: float) -> Step:
        """A remote route with a higher sequence number (or sticky) for a MAC learned here:
        it moved away, and the local routes go."""
        step = Step()
        if not self._keys:
            return step  # no local MAC: nothing can move away (the common case at scale)
        for _, _, new in changes:
            if new is None or new.source.is_local or not isinstance(new.route, MacIpRoute):
                continue
            route = new.route
            vni, mac = route.label1, route.mac
            mine = self._keys.get((vni, mac))
            if not mine:
                continue
            sticky, sequence = mobility(new.attributes)
            ours = self._sequence.get((vni, mac), 0)
            if (newer(sequence, ours) or sticky) and not any(self.local[k] for k in mine):
                self.moves += 1
                self._note_move(vni, mac, now, step)
                step.events.append(
                    MacMovedAway(vni, mac_to_text(mac), new.attributes.nexthop_text, sequence)
                )
                self._sequence[(vni, mac)] = sequence
                self._forget(list(mine), step)
        return step

    def unfreeze(self, vni: int, mac: bytes, now: float) -> Step | None:
        """`evpnctl clear mac`: forget a freeze (None when the MAC was not frozen). What is
        known here of the MAC is announced again; the caller has the kernel read again for
        what arrived while it was frozen."""
        if not self.duplicates.is_frozen(vni, mac):
            return None
        self.duplicates.clear(vni, mac)
        step = Step(events=[MacCleared(vni, mac_to_text(mac))])
        self._announce(sorted(self._keys.get((vni, mac), ())), now, step)
        return step

    # --- internals -----------------------------------------------------------------------------

    def _learn(self, key: LocalKey, sticky: bool) -> bool:
        """Record a key; True when that changes what is announced."""
        if self.local.get(key) == sticky or self.duplicates.is_frozen(key[0], key[1]):
            return False
        self.local[key] = sticky
        self._keys.setdefault(key[:2], set()).add(key)
        if key[2]:
            self._ips.setdefault(key[::2], set()).add(key)
        return True

    def _announce(self, keys: list[LocalKey], now: float, step: Step) -> None:
        groups: dict[PathAttributes, list[EvpnRoute]] = {}
        withdrawn: list[EvpnRoute] = []
        for key in keys:
            vni_number, mac, ip = key
            vni = self.vnis.get(vni_number)
            if vni is None:
                old = self._announced.pop(key, None)
                if old is not None:
                    withdrawn.append(old)
                continue
            sequence = self._sequence_for(vni_number, mac, now, step)
            if self.duplicates.is_frozen(vni_number, mac):
                continue  # this very move froze it: it stays where the fabric has it
            l3 = self.l3_of_l2.get(vni_number) if ip else None
            attrs = local_attributes(
                vni.vtep_ip, vni.export_rts, sequence=sequence, sticky=self.local[key], l3=l3
            )
            route = MacIpRoute(vni.rd, 0, mac, ip, ZERO_ESI, vni_number, l3.vni if l3 else None)
            old = self._announced.get(key)
            if old is not None and old.key != route.key:
                withdrawn.append(old)  # another RD: a new route, and the old one goes
            self._announced[key] = route
            groups.setdefault(attrs, []).append(route)
        if withdrawn:
            step.updates.append(RibUpdate([], NO_ATTRIBUTES, withdrawn))
        step.updates += [RibUpdate(routes, attrs, []) for attrs, routes in groups.items()]

    def _forget(self, keys: list[LocalKey], step: Step) -> None:
        withdrawn: list[EvpnRoute] = []
        for key in keys:
            if self.local.pop(key, None) is None:
                continue
            for index, at in ((self._keys, key[:2]), (self._ips, key[::2])):
                mine = index.get(at)
                if mine is not None:
                    mine.discard(key)
                    if not mine:
                        del index[at]
            old = self._announced.pop(key, None)
            if old is not None:
                withdrawn.append(old)
        if withdrawn:
            step.updates.append(RibUpdate([], NO_ATTRIBUTES, withdrawn))

    def _sequence_for(self, vni: int, mac: bytes, now: float, step: Step) -> int:
        """RFC 7432 §15: a MAC learned here that another VTEP advertises is announced with a
        sequence number above theirs."""
        remote = [
            mobility(p.attributes)[1] for p in self.rib.mac_paths(vni, mac) if not p.source.is_local
        ]
        current = self._sequence.get((vni, mac))
        if remote:
            wanted = following(remote)  # (wrapping at 2^32: bestpath.py)
            if current is None or newer(wanted, current):
                self.moves += 1
                step.events.append(MacMovedHere(vni, mac_to_text(mac), wanted))
                self._note_move(vni, mac, now, step)
                self._sequence[(vni, mac)] = wanted
                return wanted
        return current or 0

    def _note_move(self, vni: int, mac: bytes, now: float, step: Step) -> None:
        if self.duplicates.moved(vni, mac, now):
            step.events.append(
                MacFrozen(vni, mac_to_text(mac), self.duplicates.moves, self.duplicates.window)
            )
