"""What the kernel should hold for the remote routes, kept up to date route change by route
change, and the difference to what it holds. No I/O here.

- Type 2 (best path, imported, and the mobility winner for its MAC): `MAC dst VTEP` on the vxlan
  port, as one master+self+extern_learn entry.
- Type 2 with an IP: `IP lladdr MAC extern_learn NOARP` on the VNI's SVI (the bridge).
- Type 3: `00:00:00:00:00:00 dst VTEP self permanent` on the vxlan port, one per remote VTEP.
- Symmetric IRB (RFC 9135/9136): a Type 2 with an IP and a second label, or a Type 5, imported
  by an L3VNI: `PREFIX via VTEP dev <L3VNI bridge> onlink` in the VRF's table, and for the
  remote Router's MAC `VTEP lladdr RMAC extern_learn NOARP` on that bridge and the two-entry
  FDB form on its vxlan port (as FRR programs them; shared by every route of that VTEP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from evpnd.evpn.routes import InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpnd.kernel.iproutes import Nexthop, Nexthops, RouteKey
from evpnd.rib.bestpath import mobility, unwrapped
from evpnd.rib.locrib import Rib, RouteChange, mobility_order, mobility_sorted
from evpnd.rib.paths import LOCAL, Path

#: an IPv6 route's gateway for an IPv4 VTEP: the v4-mapped address (what FRR installs)
V4_MAPPED = bytes(10) + b"\xff\xff"


@dataclass(frozen=True, slots=True)
class VniPorts:
    """Where a VNI lives in the kernel."""

    vni: int
    vxlan_ifindex: int
    bridge_ifindex: int
    local_ip: bytes


@dataclass(frozen=True, slots=True)
class L3Ports:
    """Where an L3VNI lives in the kernel, and the table its routes go to."""

    vni: int
    vxlan_ifindex: int
    bridge_ifindex: int
    table: int


class L3Kind(Enum):
    """The three kinds of kernel entry a routed (IRB) route contributes to."""

    ROUTE = "route"  # PREFIX via VTEP dev <L3VNI bridge> onlink
    FDB = "fdb"  # the remote Router's MAC on the L3VNI's vxlan port
    NEIGH = "neigh"  # VTEP lladdr RMAC on the L3VNI's bridge


#: (kind, entry key, value) that one routed path wants
L3Entry = tuple[L3Kind, "tuple[int, bytes] | RouteKey", object]

FdbKey = tuple[int, bytes]  # (vxlan ifindex, MAC) -> VTEP
FloodKey = tuple[int, bytes]  # (vxlan ifindex, VTEP)
NeighKey = tuple[int, bytes]  # (SVI ifindex, IP) -> MAC


@dataclass
class Entries:
    """A set of evpnd's kernel entries, keyed as the kernel keys them: what the RIB wants, what
    we have programmed, or what a dump found (the reconciler compares them)."""

    fdb: dict[FdbKey, bytes] = field(default_factory=dict)
    flood: dict[FloodKey, int] = field(default_factory=dict)  # -> how many routes want it
    neigh: dict[NeighKey, bytes] = field(default_factory=dict)
    routes: dict[RouteKey, Nexthops] = field(default_factory=dict)
    #: Found in the kernel only: the FDB keys whose bridge (`master`) half is there. A remote
    #: MAC is two entries, the vxlan device's (`fdb`, with its VTEP) and the bridge's; both
    #: are ours. None: both halves go together (what is wanted or programmed).
    bridge: set[FdbKey] | None = None


@dataclass
class Changes:
    """Entries to (re)write and to remove, as the result of some route changes. The removals
    are dicts of None, ordered sets: they are carried out in the order they came, which is
    the order the entries were made in. Walking 100,000 of them in a set's hash order instead
    scattered every lookup over memory (2.5 times the time, measured)."""

    fdb_set: dict[FdbKey, bytes] = field(default_factory=dict)
    fdb_del: dict[FdbKey, None] = field(default_factory=dict)
    flood_add: set[FloodKey] = field(default_factory=set)
    flood_del: set[FloodKey] = field(default_factory=set)
    neigh_set: dict[NeighKey, bytes] = field(default_factory=dict)
    neigh_del: dict[NeighKey, None] = field(default_factory=dict)
    route_set: dict[RouteKey, Nexthops] = field(default_factory=dict)
    route_del: dict[RouteKey, None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(
            (
                self.fdb_set,
                self.fdb_del,
                self.flood_add,
                self.flood_del,
                self.neigh_set,
                self.neigh_del,
                self.route_set,
                self.route_del,
            )
        )

    def __len__(self) -> int:
        return (
            len(self.fdb_set)
            + len(self.fdb_del)
            + len(self.flood_add)
            + len(self.flood_del)
            + len(self.neigh_set)
            + len(self.neigh_del)
            + len(self.route_set)
            + len(self.route_del)
        )


class Watcher(Protocol):
    """A rebuild in slices under way (kernel/reimport.py), as the state it rebuilds sees it."""

    def saw(self, changes: list[RouteChange]) -> None: ...

    def overtaken(self) -> None: ...


class DesiredState:
    """Follows the RIB and keeps `desired` current; `take()` hands out what changed since."""

    def __init__(
        self,
        rib: Rib,
        ports: dict[int, VniPorts],
        importing: Callable[[Path], list[int]],
        l3ports: dict[int, L3Ports] | None = None,
        importing_l3: Callable[[Path], list[int]] | None = None,
    ) -> None:
        self.rib = rib
        self.ports = ports
        self.importing = importing
        self.l3ports: dict[int, L3Ports] = l3ports if l3ports is not None else {}
        self.importing_l3 = importing_l3 or (lambda path: [])
        #: what each routed key (Type 2 with IP, Type 5) contributes: routes, FDB, neighbours
        self._l3_of: dict[object, list[L3Entry]] = {}
        #: kind -> entry key -> {value: how many routes want it} (see _settle_l3)
        self._l3_users: dict[L3Kind, dict[object, dict[Any, int]]] = {k: {} for k in L3Kind}
        self.desired = Entries()
        self._pending = Changes()
        #: flood entries each Type 3 key contributes, so a withdrawal releases them
        self._flood_of: dict[object, list[FloodKey]] = {}
        #: neighbour entries each Type 2 key contributes
        self._neigh_of: dict[object, list[NeighKey]] = {}
        #: FDB entries each (VNI label, MAC)'s winning route is imported into
        self._fdb_of: dict[tuple[int, bytes], list[FdbKey]] = {}
        #: FDB entry -> the winning route of each label imported there (a Path alone, the
        #: usual case, or a list): routes of another label can be imported into a VNI by its
        #: RT, and then the winner for the entry is decided among all of them (as FRR decides
        #: per VNI), never by whichever label changed last.
        self._claims: dict[FdbKey, Path | list[Path]] = {}
        #: neighbour entry -> the routes that want it (a Path alone, or a list)
        self._neigh_claims: dict[NeighKey, Path | list[Path]] = {}
        self._imports: dict[int, tuple[object, list[VniPorts]]] = {}
        #: a rebuild in slices under way (kernel/reimport.py): it sees every change meanwhile
        self.reimporting: Watcher | None = None

    # --- following the RIB ---------------------------------------------------------------

    def on_changes(self, changes: list[RouteChange]) -> None:
        if self.reimporting is not None:
            self.reimporting.saw(changes)
        if not self.ports and not self.l3ports:
            return  # nothing to program; rebuild() catches up when VNIs appear
        l2_only = not self.l3ports
        macs = self.rib.mac_index
        neigh_of, fdb_of, claims = self._neigh_of, self._fdb_of, self._claims
        fdb, pending = self.desired.fdb, self._pending
        # (the announced-MAC case's import and VTEP, per attribute set)
        last_attrs: object = None
        ports: list[VniPorts] = []
        vtep: bytes | None = None
        for key, old, new in changes:
            path = new if new is not None else old
            if path is None:
                continue
            route = path.route
            if new is None and type(route) is MacIpRoute and (l2_only or not route.ip):
                label_mac = (route.label1, route.mac)
                if label_mac not in macs:
                    # The last route for a MAC withdrawn: the usual case of a table going
                    # (100,000 in a second). What `_mac` would do, without looking for
                    # winners, written out here: its entries of this label go.
                    for fkey in fdb_of.pop(label_mac, ()):
                        # taken out, and put back unless it is this label's claim alone:
                        # the withdrawn path itself, nearly always (known without reading
                        # the claim, which is far away in memory by now)
                        current = claims.pop(fkey, None)
                        if current is old or (
                            type(current) is Path and current.route.label1 == route.label1  # type: ignore[union-attr]
                        ):
                            if fdb.pop(fkey, None) is not None:
                                if pending.fdb_set:  # (empty while a table goes)
                                    pending.fdb_set.pop(fkey, None)
                                pending.fdb_del[fkey] = None
                            continue
                        if current is not None:
                            claims[fkey] = current
                        _set_claim(claims, fkey, None, _LabelOf(route.label1))
                        self._settle_fdb(fkey, False)
                    if neigh_of and key in neigh_of:
                        self._neighbours_gone(key, path)
                    continue
            elif (
                old is None
                and type(route) is MacIpRoute
                and (l2_only or not route.ip)
                and macs.get((route.label1, route.mac)) is key  # its MAC's only route
                and (route.label1, route.mac) not in fdb_of
                and path.source.name != LOCAL
            ):
                # A remote MAC new to the RIB: the usual case of a table arriving. What `_mac`
                # would do with this route as the winner, written out here; the VNIs it is
                # imported into and its VTEP are worked out once per attribute set.
                attrs = path.attributes
                if attrs is not last_attrs:
                    last_attrs, ports = attrs, self._ports_for(path)
                    nexthop = attrs.nexthop
                    vtep = nexthop[:16] if nexthop is not None and len(nexthop) == 32 else nexthop
                if vtep is not None and ports:
                    label, mac = route.label1, route.mac
                    fkeys = [(p.vxlan_ifindex, mac) for p in ports]
                    for fkey in fkeys:
                        current = claims.get(fkey)
                        if current is not None:  # another label's route claims it too
                            _set_claim(claims, fkey, path, _LabelOf(label))
                            self._settle_fdb(fkey, False)
                            continue
                        claims[fkey] = path
                        if fdb.get(fkey) != vtep:
                            fdb[fkey] = vtep
                            if pending.fdb_del:
                                pending.fdb_del.pop(fkey, None)
                            pending.fdb_set[fkey] = vtep
                    fdb_of[(label, mac)] = fkeys
                if route.ip and key not in neigh_of:
                    self._neighbours_new(key, path, ports)
                elif route.ip or (neigh_of and key in neigh_of):
                    self._neighbours(key, path, winners=[path])
                continue
            if self.l3ports and (
                isinstance(route, IpPrefixRoute) or (isinstance(route, MacIpRoute) and route.ip)
            ):
                self._l3(key, new)
            if not self.ports:
                continue
            if isinstance(route, MacIpRoute):
                if old is not None and new is not None:
                    was = old.route
                    assert isinstance(was, MacIpRoute)
                    if (was.label1, was.mac) != (route.label1, route.mac):
                        # the same route now says another VNI: the old VNI's entry goes
                        self._mac(was.label1, was.mac)
                # the MAC's routes, winner first: looked up once for all that follows
                paths = self.rib.mac_paths(route.label1, route.mac)
                self._mac(route.label1, route.mac, paths=paths)
                self._neighbours(key, new, winners=paths)
                # a local route for this MAC appearing or going changes what its remote
                # routes' neighbours should be
                for other in paths:
                    if other.route.key != key:
                        self._neighbours(other.route.key, other, winners=paths)
            elif isinstance(route, InclusiveMulticastRoute):
                self._flood(key, new)

    def set_ports(self, ports: dict[int, VniPorts], l3ports: dict[int, L3Ports]) -> None:
        """The VNIs the kernel has now: everything is computed again (`rebuild`)."""
        self.ports = dict(ports)
        self.l3ports = dict(l3ports)
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute everything (VNIs came or went, or what they import changed): the
        difference is queued as usual, after whatever was queued and not yet taken."""
        if self.reimporting is not None:
            self.reimporting.overtaken()  # first: a comparison under way finishes on this wish
        wanted = Entries()
        saved = self.desired
        self.desired = wanted
        self._flood_of.clear()
        self._neigh_of.clear()
        self._fdb_of.clear()
        self._claims.clear()
        self._neigh_claims.clear()
        self._imports.clear()
        self._l3_of.clear()
        for users in self._l3_users.values():
            users.clear()
        queued = self._pending
        self._pending = Changes()
        for path in self.rib.best_paths():
            self.take_in(path)
        # `queued` leads from what was written to `saved`, the new difference from `saved` to
        # `wanted`: both together lead from what was written to `wanted`. (The difference
        # alone would lose an entry queued, not yet written, and still wanted.)
        self._pending = then(queued, diff(saved, wanted))

    def take_in(self, path: Path) -> None:
        """One best path's entries, added to the wish quietly (a rebuild)."""
        route = path.route
        if self.l3ports and (
            isinstance(route, IpPrefixRoute) or (isinstance(route, MacIpRoute) and route.ip)
        ):
            self._l3(route.key, path, quiet=True)
        if isinstance(route, MacIpRoute):
            self._mac(route.label1, route.mac, quiet=True)
            self._neighbours(route.key, path, quiet=True)
        elif isinstance(route, InclusiveMulticastRoute):
            self._flood(route.key, path, quiet=True)

    @property
    def pending_fdb(self) -> int:
        """FDB changes waiting for take(): how much a write would carry now."""
        return len(self._pending.fdb_set) + len(self._pending.fdb_del)

    def adopt(self, fresh: DesiredState) -> tuple[Entries, list[dict[Any, Any]]]:
        """`fresh`'s wish and bookkeeping in place of this one's (a rebuild in slices is
        done), with nothing queued for the difference: the caller queues it (`requeue`).
        Returns the old entries and the old bookkeeping's tables."""
        old = self.desired
        tables: list[dict[Any, Any]] = [
            self._flood_of,
            self._neigh_of,
            self._fdb_of,
            self._claims,
            self._neigh_claims,
            self._imports,
            self._l3_of,
            *self._l3_users.values(),
        ]
        self.desired = fresh.desired
        self._flood_of, self._neigh_of, self._fdb_of = (
            fresh._flood_of,
            fresh._neigh_of,
            fresh._fdb_of,
        )
        self._claims, self._neigh_claims = fresh._claims, fresh._neigh_claims
        self._imports, self._l3_of, self._l3_users = fresh._imports, fresh._l3_of, fresh._l3_users
        return old, tables

    def requeue(self, kind: str, entries: list[tuple[Any, object]]) -> None:
        """Queue entries of table `kind` ("fdb", "flood", "neigh", "routes") to be written as
        their values (None: removed), after whatever is queued for them."""
        pending = self._pending
        if kind == "flood":
            for key, value in entries:
                if value is None:
                    pending.flood_add.discard(key)
                    pending.flood_del.add(key)
                else:
                    pending.flood_del.discard(key)
                    pending.flood_add.add(key)
            return
        tables: dict[str, tuple[dict[Any, Any], dict[Any, None]]] = {
            "fdb": (pending.fdb_set, pending.fdb_del),
            "neigh": (pending.neigh_set, pending.neigh_del),
            "routes": (pending.route_set, pending.route_del),
        }
        sets, removals = tables[kind]
        for key, value in entries:
            if value is None:
                sets.pop(key, None)
                removals[key] = None
            else:
                removals.pop(key, None)
                sets[key] = value

    def take(self) -> Changes:
        pending = self._pending
        self._pending = Changes()
        return pending

    # --- per entry -----------------------------------------------------------------------------

    def _ports_for(self, path: Path) -> list[VniPorts]:
        if path.source.is_local:
            return []
        # Import depends on the attributes only, and those are shared by many routes.
        attrs = path.attributes
        cached = self._imports.get(id(attrs))
        if cached is not None and cached[0] is attrs:
            return cached[1]
        # A VTEP of the other address family than the VNI's vxlan device cannot be reached
        # through it: such a route is never programmed there (rib/validation.py).
        nexthop = attrs.nexthop or b""
        family = 16 if len(nexthop) == 32 else len(nexthop)
        ports = [
            p
            for vni in self.importing(path)
            if (p := self.ports.get(vni)) is not None
            and (not p.local_ip or len(p.local_ip) == family)
        ]
        if len(self._imports) > 4096:
            self._imports.clear()
        self._imports[id(attrs)] = (attrs, ports)
        return ports

    def _mac(
        self, label: int, mac: bytes, quiet: bool = False, paths: list[Path] | None = None
    ) -> None:
        """The FDB entries for one MAC from the mobility winner among its routes of this label,
        claimed for every VNI that winner is imported into (a local winner claims its own VNI:
        no remote entry may take the place of a host that is here)."""
        if paths is None:
            paths = self.rib.mac_paths(label, mac)
        winner = paths[0] if paths else None
        keys: list[FdbKey] = []
        if winner is not None:
            if winner.source.is_local:
                port = self.ports.get(label)
                keys = [(port.vxlan_ifindex, mac)] if port is not None else []
            elif winner.attributes.nexthop is not None:
                keys = [(p.vxlan_ifindex, mac) for p in self._ports_for(winner)]
        claims = self._claims
        fdb, pending = self.desired.fdb, self._pending
        for key in self._fdb_of.pop((label, mac), ()):
            if key not in keys:
                current = claims.get(key)
                if type(current) is Path and current.route.label1 == label:  # type: ignore[union-attr]
                    # the usual case, this label's claim was the only one
                    del claims[key]
                    _put(fdb, pending.fdb_set, pending.fdb_del, key, None, quiet)
                    continue
                _set_claim(claims, key, None, _LabelOf(label))
                self._settle_fdb(key, quiet)
        if not keys:
            return
        assert winner is not None
        vtep = None
        if winner.source.name != LOCAL:
            nexthop = winner.attributes.nexthop
            assert nexthop is not None
            vtep = nexthop[:16] if len(nexthop) == 32 else nexthop
        for key in keys:
            current = claims.get(key)
            if current is not None and (
                type(current) is not Path or current.route.label1 != label  # type: ignore[union-attr]
            ):
                _set_claim(claims, key, winner, _LabelOf(label))
                self._settle_fdb(key, quiet)
                continue
            # the usual case, this label's winner alone decides (100,000 times a table)
            claims[key] = winner
            _put(fdb, pending.fdb_set, pending.fdb_del, key, vtep, quiet)
        self._fdb_of[(label, mac)] = keys

    def _settle_fdb(self, key: FdbKey, quiet: bool) -> None:
        best = self._claims.get(key)
        if type(best) is list:
            best = mobility_sorted(best)[0]
        vtep = None
        if best is not None and best.source.name != LOCAL:  # type: ignore[union-attr]
            nexthop = best.attributes.nexthop  # type: ignore[union-attr]
            assert nexthop is not None
            vtep = nexthop[:16] if len(nexthop) == 32 else nexthop
        pending = self._pending
        _put(self.desired.fdb, pending.fdb_set, pending.fdb_del, key, vtep, quiet)

    def _neighbours(
        self,
        key: object,
        path: Path | None,
        quiet: bool = False,
        winners: list[Path] | None = None,
    ) -> None:
        """The ARP/ND entries one Type 2 route with an IP claims: one per VNI it is imported
        into, unless the MAC's winner is local (the host is here, e.g. a migrated VM's static
        entries: hands off). Several routes may claim one entry (the same IP from two RDs):
        it stays while any does."""
        wanted: list[NeighKey] = []
        route = path.route if path is not None else None
        if path is not None and isinstance(route, MacIpRoute) and route.ip:
            if winners is None:
                winners = self.rib.mac_paths(route.label1, route.mac)
            if not (winners and winners[0].source.is_local):
                wanted = [(p.bridge_ifindex, route.ip) for p in self._ports_for(path)]
        before = self._neigh_of.pop(key, None)
        if not wanted and not before:
            return  # a MAC-only route, or one that claims nothing: the usual case at scale
        claims = self._neigh_claims
        same = _RouteOf(key)
        for nkey in before or ():
            if nkey not in wanted:
                _set_claim(claims, nkey, None, same)
                self._settle_neigh(nkey, quiet)
        for nkey in wanted:
            _set_claim(claims, nkey, path, same)
            self._settle_neigh(nkey, quiet)
        if wanted:
            self._neigh_of[key] = wanted

    def _neighbours_new(self, key: object, path: Path, ports: list[VniPorts]) -> None:
        """`_neighbours` for a remote route new to the RIB, the only one for its MAC: its IP
        on the SVI of every VNI it is imported into (`ports`)."""
        route = path.route
        assert isinstance(route, MacIpRoute)
        claims, neigh, pending = self._neigh_claims, self.desired.neigh, self._pending
        wanted = [(p.bridge_ifindex, route.ip) for p in ports]
        for nkey in wanted:
            if nkey in claims:  # another route binds this IP too: ranked in _settle_neigh
                _set_claim(claims, nkey, path, _RouteOf(key))
                self._settle_neigh(nkey, False)
                continue
            claims[nkey] = path
            if neigh.get(nkey) != route.mac:
                neigh[nkey] = route.mac
                if pending.neigh_del:
                    pending.neigh_del.pop(nkey, None)
                pending.neigh_set[nkey] = route.mac
        if wanted:
            self._neigh_of[key] = wanted

    def _neighbours_gone(self, key: object, old: Path) -> None:
        """`_neighbours` for a withdrawn route that was the last for its MAC: the entries it
        claimed go, unless another route binds the same IP."""
        claims, neigh, pending = self._neigh_claims, self.desired.neigh, self._pending
        for nkey in self._neigh_of.pop(key, ()):
            current = claims.pop(nkey, None)
            if current is old:  # its claim alone, nearly always
                if neigh.pop(nkey, None) is not None:
                    if pending.neigh_set:
                        pending.neigh_set.pop(nkey, None)
                    pending.neigh_del[nkey] = None
                continue
            if current is not None:
                claims[nkey] = current
            _set_claim(claims, nkey, None, _RouteOf(key))
            self._settle_neigh(nkey, False)

    def _settle_neigh(self, nkey: NeighKey, quiet: bool) -> None:
        claims = self._neigh_claims.get(nkey)
        best = claims if not isinstance(claims, list) else _neigh_winner(claims)
        mac = best.route.mac if best is not None else None  # type: ignore[union-attr]
        pending = self._pending
        _put(self.desired.neigh, pending.neigh_set, pending.neigh_del, nkey, mac, quiet)

    def _flood(self, key: object, path: Path | None, quiet: bool = False) -> None:
        wanted: list[FloodKey] = []
        if path is not None:
            route = path.route
            assert isinstance(route, InclusiveMulticastRoute)
            pmsi = path.attributes.pmsi_tunnel
            vtep = (
                pmsi.tunnel_id
                if pmsi is not None and len(pmsi.tunnel_id) in (4, 16)
                else (route.originator)
            )
            wanted = [(p.vxlan_ifindex, vtep) for p in self._ports_for(path)]
        before = self._flood_of.pop(key, [])
        flood = self.desired.flood
        for fkey in wanted:
            if fkey in before:
                before.remove(fkey)
                continue
            flood[fkey] = flood.get(fkey, 0) + 1
            if flood[fkey] == 1 and not quiet:
                self._pending.flood_del.discard(fkey)
                self._pending.flood_add.add(fkey)
        for fkey in before:
            flood[fkey] -= 1
            if flood[fkey] == 0:
                del flood[fkey]
                if not quiet:
                    self._pending.flood_add.discard(fkey)
                    self._pending.flood_del.add(fkey)
        if wanted:
            self._flood_of[key] = wanted

    # --- symmetric IRB ---------------------------------------------------------------------

    def _l3(self, key: object, path: Path | None, quiet: bool = False) -> None:
        wanted: list[L3Entry] = []
        if path is not None and not path.source.is_local:
            wanted = self._l3_entries(path)
        before = self._l3_of.pop(key, [])
        if wanted == before:
            if wanted:
                self._l3_of[key] = wanted
            return
        for kind, entry, value in before:
            self._release(kind, entry, value, quiet)
        for kind, entry, value in wanted:
            self._claim(kind, entry, value, quiet)
        if wanted:
            self._l3_of[key] = wanted

    def _l3_entries(self, path: Path) -> list[L3Entry]:
        route = path.route
        attrs = path.attributes
        rmac, nexthop = attrs.router_mac, attrs.nexthop
        if rmac is None or not nexthop:
            return []
        if isinstance(route, MacIpRoute):
            if not route.label2:
                return []  # an L2-only binding: ARP suppression handles it
            dst, length = route.ip, len(route.ip) * 8
        elif isinstance(route, IpPrefixRoute):
            dst, length = route.network.network_address.packed, route.prefix_len
        else:
            return []
        vtep = nexthop[:16] if len(nexthop) == 32 else nexthop
        if len(vtep) == len(dst):
            gateway = vtep
        elif len(vtep) == 4:
            gateway = V4_MAPPED + vtep
        else:
            return []  # an IPv4 prefix via an IPv6 VTEP would need RTA_VIA: not done
        out: list[L3Entry] = []
        for vni in self.importing_l3(path):
            ports = self.l3ports.get(vni)
            if ports is None:
                continue
            out.append(
                (
                    L3Kind.ROUTE,
                    RouteKey(ports.table, dst, length),
                    Nexthop(gateway, ports.bridge_ifindex),
                )
            )
            out.append((L3Kind.FDB, (ports.vxlan_ifindex, rmac), vtep))
            out.append((L3Kind.NEIGH, (ports.bridge_ifindex, gateway), rmac))
        return out

    def _claim(self, kind: L3Kind, entry: object, value: object, quiet: bool) -> None:
        users = self._l3_users[kind].setdefault(entry, {})
        users[value] = users.get(value, 0) + 1
        self._settle_l3(kind, entry, users, quiet)

    def _release(self, kind: L3Kind, entry: object, value: object, quiet: bool) -> None:
        users = self._l3_users[kind].get(entry, {})
        left = users.get(value, 0) - 1
        if left > 0:
            users[value] = left
        else:
            users.pop(value, None)
        if not users:
            self._l3_users[kind].pop(entry, None)
        self._settle_l3(kind, entry, users, quiet)

    def _settle_l3(self, kind: L3Kind, entry: object, users: dict[Any, int], quiet: bool) -> None:
        """Bring one entry to what its users want: a route goes via every VTEP that announces
        its prefix (ECMP, next hops sorted); a Router's MAC entry takes one value (the smallest,
        should two VTEPs ever claim one MAC); nothing when nobody wants it."""
        table, set_, del_ = self._l3_tables(kind)
        value: object = None
        if users and kind is L3Kind.ROUTE:
            value = tuple(sorted(users))
        elif users:
            value = min(users)
        _put(table, set_, del_, entry, value, quiet)

    def _l3_tables(self, kind: L3Kind) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, None]]:
        desired, pending = self.desired, self._pending
        if kind is L3Kind.ROUTE:
            return desired.routes, pending.route_set, pending.route_del
        if kind is L3Kind.FDB:
            return desired.fdb, pending.fdb_set, pending.fdb_del
        return desired.neigh, pending.neigh_set, pending.neigh_del


def _put(
    table: dict[Any, Any],
    to_set: dict[Any, Any],
    to_remove: dict[Any, None],
    key: object,
    value: object,
    quiet: bool,
) -> None:
    """The wish for one entry is now `value` (None: no entry); unless `quiet` (a rebuild),
    the change is queued for the next write."""
    if value is None:
        if table.pop(key, None) is not None and not quiet:
            to_set.pop(key, None)
            to_remove[key] = None
    elif table.get(key) != value:
        table[key] = value
        if not quiet:
            to_remove.pop(key, None)
            to_set[key] = value


def _set_claim(
    claims: dict[Any, Path | list[Path]],
    entry: object,
    path: Path | None,
    same: Callable[[Path], bool],
) -> None:
    """Replace the claim on `entry` that `same` picks out with `path` (None: drop it). One
    claim is kept as the Path itself: most entries have one, and a list each would cost
    megabytes at a million routes."""
    current = claims.get(entry)
    if current is None or (type(current) is Path and same(current)):  # the usual case
        if path is not None:
            claims[entry] = path
        elif current is not None:
            del claims[entry]
        return
    others = [current] if isinstance(current, Path) else current
    left = [c for c in others if not same(c)]
    if path is not None:
        left.append(path)
    if not left:
        claims.pop(entry, None)
    else:
        claims[entry] = left[0] if len(left) == 1 else left


class _LabelOf:
    """Picks out the claim of one label (a class, not a closure made on every call)."""

    __slots__ = ("label",)

    def __init__(self, label: int) -> None:
        self.label = label

    def __call__(self, claim: Path) -> bool:
        return claim.route.label1 == self.label  # type: ignore[union-attr]


class _RouteOf:
    __slots__ = ("key",)

    def __init__(self, key: object) -> None:
        self.key = key

    def __call__(self, claim: Path) -> bool:
        return claim.route.key == self.key


def _neigh_winner(claims: list[Path]) -> Path:
    """Two routes binding one IP to different MACs: the MAC mobility ranking decides (across
    a sequence number's wrap), then the smaller MAC (any fixed rule will do; it must not
    depend on the order of arrival)."""
    line = unwrapped([mobility(p.attributes)[1] for p in claims])
    return min(claims, key=lambda p: (mobility_order(p, line), p.route.mac))  # type: ignore[union-attr]


def then(first: Changes, second: Changes) -> Changes:
    """`first`, then `second`, as one set of changes (`first` is changed and returned): an
    entry's last word counts."""
    _then(first.fdb_set, first.fdb_del, second.fdb_set, second.fdb_del)
    _then(first.neigh_set, first.neigh_del, second.neigh_set, second.neigh_del)
    _then(first.route_set, first.route_del, second.route_set, second.route_del)
    first.flood_del -= second.flood_add
    first.flood_add |= second.flood_add
    first.flood_add -= second.flood_del
    first.flood_del |= second.flood_del
    return first


def _then(
    sets: dict[Any, Any],
    removals: dict[Any, None],
    later_sets: dict[Any, Any],
    later_removals: dict[Any, None],
) -> None:
    for key, value in later_sets.items():
        removals.pop(key, None)
        sets[key] = value
    for key in later_removals:
        sets.pop(key, None)
        removals[key] = None


def diff(actual: Entries, wanted: Entries) -> Changes:
    """What turns `actual` into `wanted`."""
    changes = Changes()
    halves = actual.bridge
    for key, vtep in wanted.fdb.items():
        if actual.fdb.get(key) != vtep or (halves is not None and key not in halves):
            changes.fdb_set[key] = vtep  # one message makes (or mends) both halves
    changes.fdb_del = dict.fromkeys(k for k in actual.fdb if k not in wanted.fdb)
    if halves is not None:
        changes.fdb_del |= dict.fromkeys(k for k in halves if k not in wanted.fdb)
    changes.flood_add = {k for k in wanted.flood if k not in actual.flood}
    changes.flood_del = {k for k in actual.flood if k not in wanted.flood}
    for key, mac in wanted.neigh.items():
        if actual.neigh.get(key) != mac:
            changes.neigh_set[key] = mac
    changes.neigh_del = dict.fromkeys(k for k in actual.neigh if k not in wanted.neigh)
    for route_key, nexthop in wanted.routes.items():
        if actual.routes.get(route_key) != nexthop:
            changes.route_set[route_key] = nexthop
    changes.route_del = dict.fromkeys(k for k in actual.routes if k not in wanted.routes)
    return changes
