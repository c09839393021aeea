"""Adj-RIB-In per source and the Loc-RIB, with best-path selection per route key and an index
of Type 2 routes by (VNI, MAC) for MAC mobility decisions in O(1).

Next-hop tracking (RFC 4271 §9.1.2.1): a path whose next hop (the remote VTEP) the underlay
cannot reach is kept in the Adj-RIB-In but is not a candidate — no best path, no kernel entry,
not advertised — until the shell says the next hop is reachable again (`set_unreachable`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from evpnd.bgp.attributes import PathAttributes
from evpnd.evpn.routes import MAC_IP, EvpnRoute, MacIpRoute, MacIpWithdrawal
from evpnd.rib.bestpath import best, mobility, same, unwrapped
from evpnd.rib.paths import Path, Source

Key = tuple[object, ...]


class RouteChange(NamedTuple):
    """The best path for `key` went from `old` to `new` (either may be None)."""

    key: Key
    old: Path | None
    new: Path | None


#: RouteChange without the named tuple's Python-level __new__, which costs as much again
#: (100,000 times when a table comes or goes)
_new_change: Callable[[type[RouteChange], tuple[Key, Path | None, Path | None]], RouteChange] = (
    tuple.__new__
)


class Rib:
    def __init__(self) -> None:
        #: source name -> key -> that source's path
        self.adj_in: dict[str, dict[Key, Path]] = {}
        #: key -> the best path alone, or every candidate with the best first. One dict, and no
        #: list for the usual single path: this is most of the memory of a large table.
        self._loc: dict[Key, Path | list[Path]] = {}
        #: (VNI, MAC) -> keys of Type 2 routes for that MAC (one per advertising VTEP and IP)
        self._macs: dict[tuple[int, bytes], Key | list[Key]] = {}
        #: best-path changes not yet taken by `take_changes`, in the order they happened
        self._changes: list[RouteChange] = []
        #: next hops of received paths -> how many paths have them (the VTEPs to track)
        self.nexthops: dict[bytes, int] = {}
        #: next hops the underlay cannot reach: their paths are not candidates
        self.unreachable: frozenset[bytes] = frozenset()

    # --- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._loc)

    def best(self, key: Key) -> Path | None:
        entry = self._loc.get(key)
        if entry is None:
            return None
        return entry if isinstance(entry, Path) else entry[0]

    def candidates(self, key: Key) -> list[Path]:
        entry = self._loc.get(key)
        if entry is None:
            return []
        return [entry] if isinstance(entry, Path) else list(entry)

    def best_paths(self) -> Iterator[Path]:
        for entry in self._loc.values():
            yield entry if isinstance(entry, Path) else entry[0]

    def entries(self) -> list[Path | list[Path]]:
        """The Loc-RIB as it is now, one entry per key: the best path alone, or every candidate
        with the best first. A copy made in C, for a walk that gives the loop back between
        slices while the RIB goes on changing (`views.snapshot_slices`)."""
        return list(self._loc.values())

    def best_of_type(self, route_type: int) -> Iterator[Path]:
        """Best paths of one route type (the type is a key's first field: no route object is
        looked at for the others)."""
        for key, entry in self._loc.items():
            if key[0] == route_type:
                yield entry if isinstance(entry, Path) else entry[0]

    def received_from(self, source: str) -> int:
        return len(self.adj_in.get(source, ()))

    @property
    def mac_index(self) -> Mapping[tuple[int, bytes], object]:
        """(VNI, MAC) -> the keys of that MAC's Type 2 routes with a best path; read only."""
        return self._macs

    def mac_paths(self, vni: int, mac: bytes) -> list[Path]:
        """Best paths of every Type 2 route for this MAC in this VNI, the winner first
        (RFC 7432 §15: sticky, then the highest sequence number, then the lowest VTEP)."""
        entry = self._macs.get((vni, mac))
        if entry is None:
            return []
        if isinstance(entry, tuple):  # one route for this MAC: nothing to rank
            path = self.best(entry)
            return [path] if path is not None else []
        keys = entry
        return mobility_sorted([p for k in keys if (p := self.best(k)) is not None])

    # --- changing ------------------------------------------------------------------------------

    def take_changes(self) -> list[RouteChange]:
        """The best-path changes since the last call, oldest first. Nobody is called back in
        the middle of a change: whoever changes the RIB takes its changes afterwards and hands
        them on in an order of its own choosing (daemon.py: `settle`)."""
        changes, self._changes = self._changes, []
        return changes

    def update(
        self,
        source: Source,
        announced: list[EvpnRoute],
        attributes: PathAttributes,
        withdrawn: list[EvpnRoute],
        received: float = 0.0,
    ) -> list[RouteChange]:
        """Apply one UPDATE's worth of routes from `source`; returns the best-path changes (and
        queues them for `take_changes`). `received`: the UPDATE's wall time, kept with its
        paths for display."""
        changes: list[RouteChange] = []
        table = self.adj_in.setdefault(source.name, {})
        nexthops = self.nexthops
        if withdrawn:
            self._withdraw(source, table, withdrawn, changes)
        nexthop = attributes.nexthop
        eligible = source.is_local or nexthop not in self.unreachable
        if announced and nexthop is not None and not source.is_local:
            # one next hop for the whole UPDATE: counted once (replaced paths are let go below)
            nexthops[nexthop] = nexthops.get(nexthop, 0) + len(announced)
        loc, macs, append = self._loc, self._macs, changes.append
        new = _new_change
        for route in announced:
            key = route.key
            path = Path(route, attributes, source, False, received)
            old = table.get(key)
            table[key] = path
            if old is None:
                if not eligible:
                    continue
                if key not in loc and type(route) is MacIpRoute:
                    # a route new to the Loc-RIB, the usual case of a table arriving: _add
                    # and _index_mac written out
                    loc[key] = path
                    mac_key = (route.label1, route.mac)
                    if mac_key in macs:
                        self._index_mac(key, route)
                    else:
                        macs[mac_key] = key
                    append(new(RouteChange, (key, None, path)))
                else:
                    self._add(key, path, changes)
                continue
            self._forget_path(old)
            if not eligible:
                self._remove(key, old, changes)
            elif self._is_candidate(key, old):
                self._replace(key, old, path, changes)
            else:
                self._add(key, path, changes)
        self._tell(changes)
        return changes

    def set_unreachable(self, unreachable: frozenset[bytes]) -> list[RouteChange]:
        """The next hops the underlay cannot reach now: paths via those that became unreachable
        stop being candidates, those via next hops reachable again become candidates. A walk
        of the Adj-RIB-In, done only when reachability changes (a VTEP or a tunnel going up
        or down)."""
        changed = self.unreachable ^ unreachable
        self.unreachable = unreachable
        changes: list[RouteChange] = []
        if changed:
            for table in self.adj_in.values():
                for key, path in table.items():
                    nexthop = path.attributes.nexthop
                    if nexthop not in changed or path.source.is_local:
                        continue
                    if nexthop in unreachable:
                        self._remove(key, path, changes)
                    elif not self._is_candidate(key, path):
                        self._add(key, path, changes)
        self._tell(changes)
        return changes

    def ineligible(self) -> Iterator[Path]:
        """Received paths that are no candidates: their next hop is unreachable."""
        unreachable = self.unreachable
        if not unreachable:
            return
        for table in self.adj_in.values():
            for path in table.values():
                if path.attributes.nexthop in unreachable and not path.source.is_local:
                    yield path

    def remove_source(self, source: str) -> list[RouteChange]:
        """Forget everything a source sent (its session ended without graceful restart)."""
        changes: list[RouteChange] = []
        for key, path in self.adj_in.pop(source, {}).items():
            self._forget_path(path)
            self._remove(key, path, changes)
        self._tell(changes)
        return changes

    def mark_stale(self, source: str) -> int:
        """RFC 4724: keep the routes of a restarting peer, marked stale."""
        table = self.adj_in.get(source, {})
        for path in table.values():
            path.stale = True
        # Stale paths lose to fresh ones; re-rank keys that have alternatives.
        changes: list[RouteChange] = []
        for key in table:
            entry = self._loc.get(key)
            if isinstance(entry, list):
                self._rank(key, entry, changes)
        self._tell(changes)
        return len(table)

    def sweep_stale(self, source: str) -> list[RouteChange]:
        """End-of-RIB (or the restart time ran out): drop what the peer did not send again."""
        table = self.adj_in.get(source, {})
        changes: list[RouteChange] = []
        for key in [k for k, p in table.items() if p.stale]:
            path = table.pop(key)
            self._forget_path(path)
            self._remove(key, path, changes)
        self._tell(changes)
        return changes

    # --- internals -----------------------------------------------------------------------------

    def _withdraw(
        self,
        source: Source,
        table: dict[Key, Path],
        withdrawn: list[EvpnRoute],
        changes: list[RouteChange],
    ) -> None:
        """Take `withdrawn` out of the source's table. A peer withdraws a whole table at once
        (100,000 routes in a second), nearly always routes that were the only path for their
        key: that case is done here inline, the rest by `_remove`."""
        loc, macs, pop = self._loc, self._macs, table.pop
        append, new = changes.append, _new_change
        # next hops are counted down once per run of paths that share their attributes (the
        # routes of one UPDATE do), not once per path
        counted = source.is_local
        last: PathAttributes | None = None
        run = 0
        for route in withdrawn:
            # a received withdrawal is its own key (no property call for it)
            key = route if type(route) is MacIpWithdrawal else route.key
            old = pop(key, None)
            if old is None:
                continue
            if not counted:
                attrs = old.attributes
                if attrs is not last:
                    if last is not None:
                        self._forget_nexthop(last.nexthop, run)
                    last, run = attrs, 0
                run += 1
            # Taken out first and put back if need be: one dictionary operation, not two, in
            # the usual case (each hashes the key afresh).
            entry = loc.pop(key, None)
            if entry is not old:
                if entry is not None:
                    loc[key] = entry
                self._remove(key, old, changes)  # other candidates, or it was none
                continue
            if key[0] == MAC_IP:
                # the (VNI, MAC) index, inline: _unindex_mac's usual case
                mac_key = (old.route.label1, old.route.mac)  # type: ignore[union-attr]
                indexed = macs.pop(mac_key, None)
                if indexed != key:
                    if indexed is not None:
                        macs[mac_key] = indexed
                    self._unindex_mac(key, old.route)
            append(new(RouteChange, (key, old, None)))
        if last is not None:
            self._forget_nexthop(last.nexthop, run)

    def _tell(self, changes: list[RouteChange]) -> None:
        self._changes += changes

    def _forget_path(self, path: Path) -> None:
        if not path.source.is_local:
            self._forget_nexthop(path.attributes.nexthop, 1)

    def _forget_nexthop(self, nexthop: bytes | None, paths: int) -> None:
        """`paths` received paths with this next hop are gone."""
        if nexthop is None:
            return
        count = self.nexthops.get(nexthop, 0) - paths
        if count > 0:
            self.nexthops[nexthop] = count
        else:
            self.nexthops.pop(nexthop, None)

    def _is_candidate(self, key: Key, path: Path) -> bool:
        entry = self._loc.get(key)
        if entry is None:
            return False
        return entry is path if isinstance(entry, Path) else any(p is path for p in entry)

    def _add(self, key: Key, path: Path, changes: list[RouteChange]) -> None:
        entry = self._loc.get(key)
        if entry is None:
            self._loc[key] = path
            if key[0] == MAC_IP:
                self._index_mac(key, path.route)
            changes.append(RouteChange(key, None, path))
            return
        before = entry if isinstance(entry, Path) else entry[0]
        paths = [entry, path] if isinstance(entry, Path) else [*entry, path]
        self._settle(key, before, paths, changes)

    def _replace(self, key: Key, old: Path, path: Path, changes: list[RouteChange]) -> None:
        entry = self._loc[key]
        if isinstance(entry, Path):
            self._loc[key] = path
            self._reindex(key, old, path)
            changes.append(RouteChange(key, old, path))
            return
        before = entry[0]
        self._settle(key, before, [path if p is old else p for p in entry], changes)

    def _remove(self, key: Key, old: Path, changes: list[RouteChange]) -> None:
        entry = self._loc.get(key)
        if entry is None:
            return
        if isinstance(entry, Path):
            if entry is not old:
                return  # (`old` was no candidate: its next hop is unreachable)
            del self._loc[key]
            if key[0] == MAC_IP:
                self._unindex_mac(key, old.route)
            changes.append(RouteChange(key, old, None))
            return
        self._settle(key, entry[0], [p for p in entry if p is not old], changes)

    def _rank(self, key: Key, paths: list[Path], changes: list[RouteChange]) -> None:
        self._settle(key, paths[0], list(paths), changes)

    def _settle(
        self, key: Key, before: Path, paths: list[Path], changes: list[RouteChange]
    ) -> None:
        """Store `paths` for `key` with the best first; report if the best is another path."""
        winner = best(paths)
        assert winner is not None
        if len(paths) == 1:
            self._loc[key] = winner
        else:
            paths.remove(winner)
            paths.insert(0, winner)
            self._loc[key] = paths
        if winner is not before:
            self._reindex(key, before, winner)
            changes.append(RouteChange(key, before, winner))

    def _reindex(self, key: Key, before: Path | None, after: Path | None) -> None:
        """Keep the (VNI, MAC) index on the best path's labels and MAC: the key of a Type 2
        route has no labels, so a new path for the same key may move it to another VNI."""
        if key[0] != MAC_IP:
            return
        old = _mac_key(before.route) if before is not None else None
        new = _mac_key(after.route) if after is not None else None
        if old == new:
            return
        if old is not None and before is not None:
            self._unindex_mac(key, before.route)
        if new is not None and after is not None:
            self._index_mac(key, after.route)

    def _index_mac(self, key: Key, route: EvpnRoute) -> None:
        assert isinstance(route, MacIpRoute)
        mac_key = (route.label1, route.mac)
        entry = self._macs.get(mac_key)
        if entry is None:
            self._macs[mac_key] = key
        elif isinstance(entry, tuple):
            self._macs[mac_key] = [entry, key]
        else:
            entry.append(key)

    def _unindex_mac(self, key: Key, route: EvpnRoute) -> None:
        assert isinstance(route, MacIpRoute)
        mac_key = (route.label1, route.mac)
        entry = self._macs.get(mac_key)
        if entry is None:
            return
        if isinstance(entry, tuple):
            if entry == key:
                del self._macs[mac_key]
            return
        if key in entry:
            entry.remove(key)
        if len(entry) == 1:
            self._macs[mac_key] = entry[0]


def _mac_key(route: EvpnRoute) -> tuple[int, bytes] | None:
    return (route.label1, route.mac) if isinstance(route, MacIpRoute) else None


def mobility_order(path: Path, line: Callable[[int], int] = same) -> tuple[int, int, int]:
    """RFC 7432 §15 ranking of one MAC's routes, smallest first: sticky, then the highest
    sequence number (`line`: across a wrap, bestpath.unwrapped), then the lowest VTEP."""
    sticky, sequence = mobility(path.attributes)
    nexthop = path.attributes.nexthop or b""
    return (-sticky, -line(sequence), int.from_bytes(nexthop[:16], "big"))


def mobility_sorted(paths: list[Path]) -> list[Path]:
    """One MAC's routes in RFC 7432 §15 order, the winner first; sequence numbers compared
    across a wrap (bestpath.py: our wrap rule)."""
    line = unwrapped([mobility(p.attributes)[1] for p in paths])
    return sorted(paths, key=lambda p: mobility_order(p, line))
