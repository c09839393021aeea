"""The kernel reconciler's decisions, without I/O: what the RIB wants (`DesiredState`), what we
have programmed, what the kernel has (read by the shell), and the operations between them.

- Route changes: the desired state's pending difference becomes operations (`take`).
- Reconciliation: what the kernel really has is compared with the wish (`repair`). Before the
  peers have sent End-of-RIB (or the restart time has passed) nothing is removed: routes that
  still come back must not lose their entries in between.
- What was asked for counts as programmed at once; a refusal is taken back (`refused`), and the
  next reconciliation tries again.
- Between full reconciliations (at start and after lost notifications) `programmed` is the
  kernel as evpnd knows it: our writes, and what the kernel said of single entries
  (`check`, `flood_seen`, `check_routes`: audit.py). A missing or wrong entry is rewritten at
  once; an entry nobody wants is a stray, removed at the next periodic pass (`take_strays`) —
  removing is never urgent, and until then `show kernel` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from evpnd.evpn.identifiers import ip_to_text, mac_to_text
from evpnd.kernel import iproutes as ipr
from evpnd.kernel import operations as ops
from evpnd.kernel.audit import Probed
from evpnd.kernel.desired import (
    Changes,
    DesiredState,
    Entries,
    FdbKey,
    FloodKey,
    NeighKey,
    diff,
)
from evpnd.kernel.links import VxlanPort


@dataclass
class Strays:
    """Entries of ours in the kernel that nothing wants (yet to be removed)."""

    #: FDB key -> what the kernel said of it: (the vxlan half's VTEP, the bridge half is there)
    fdb: dict[FdbKey, tuple[bytes | None, bool]] = field(default_factory=dict)
    flood: set[FloodKey] = field(default_factory=set)
    neigh: set[NeighKey] = field(default_factory=set)
    routes: set[ipr.RouteKey] = field(default_factory=set)


class Reconciler:
    def __init__(self, state: DesiredState) -> None:
        self.state = state
        self.programmed = Entries()
        self.strays = Strays()
        #: entries the kernel refused to write, tried again at the next pass
        self._refused = Entries()

    def take(self) -> tuple[list[ops.Operation], Changes]:
        """The operations for the route changes since the last call."""
        return self._carry_out(self.state.take())

    def repair(self, actual: Entries, settled: bool) -> tuple[list[ops.Operation], Changes]:
        """The operations that make the kernel's `actual` entries what the RIB wants."""
        changes = diff(actual, self.state.desired)
        if not settled:
            changes.fdb_del.clear()
            changes.flood_del.clear()
            changes.neigh_del.clear()
            changes.route_del.clear()
        self.programmed = replace(actual, bridge=None)  # after the repair, whole entries
        self.strays = Strays()
        return self._carry_out(changes)

    def check(self, probed: Probed) -> tuple[list[ops.Operation], Changes, int]:
        """What the kernel said of single entries: the view follows it; a missing or wrong
        entry is rewritten now, one nobody wants becomes a stray. Also returns how many
        entries were not what we believed."""
        wanted = self.state.desired
        view = self.programmed
        changes = Changes()
        wrong = 0
        for key, (vtep, bridge) in probed.fdb.items():
            believed = view.fdb.get(key)
            wrong += (vtep, bridge) != (believed, believed is not None)
            if vtep is None:
                view.fdb.pop(key, None)
            else:
                view.fdb[key] = vtep
            want = wanted.fdb.get(key)
            if want is not None:
                if vtep != want or not bridge:
                    changes.fdb_set[key] = want
            elif vtep is not None or bridge:
                self.strays.fdb[key] = (vtep, bridge)
        for nkey, mac in probed.neigh.items():
            believed_mac = view.neigh.get(nkey)
            wrong += mac != believed_mac
            if mac is None:
                view.neigh.pop(nkey, None)
            else:
                view.neigh[nkey] = mac
            want_mac = wanted.neigh.get(nkey)
            if want_mac is not None:
                if mac != want_mac:
                    changes.neigh_set[nkey] = want_mac
            elif mac is not None:
                self.strays.neigh.add(nkey)
        operations, changes = self._carry_out(changes)
        return operations, changes, wrong

    def flood_seen(self, key: FloodKey, present: bool) -> tuple[list[ops.Operation], Changes]:
        """A notification of a flood entry on one of our ports, by someone else."""
        if present:
            self.programmed.flood[key] = 1
            if key not in self.state.desired.flood:
                self.strays.flood.add(key)
            return [], Changes()
        self.programmed.flood.pop(key, None)
        changes = Changes()
        if key in self.state.desired.flood:
            changes.flood_add.add(key)
        return self._carry_out(changes)

    def check_routes(
        self, actual: dict[ipr.RouteKey, ipr.Nexthops]
    ) -> tuple[list[ops.Operation], Changes]:
        """Our routes as a dump found them (there are few: one per Type 5 prefix)."""
        wanted = self.state.desired.routes
        self.programmed.routes = dict(actual)
        changes = Changes()
        for key, hops in wanted.items():
            if actual.get(key) != hops:
                changes.route_set[key] = hops
        self.strays.routes |= {k for k in actual if k not in wanted}
        return self._carry_out(changes)

    def settle(self) -> None:
        """The peers have settled: whatever is programmed and no longer wanted (kept until
        now for routes that might come back) is a stray."""
        wanted, view = self.state.desired, self.programmed
        self.strays.fdb.update((k, (v, True)) for k, v in view.fdb.items() if k not in wanted.fdb)
        self.strays.flood.update(k for k in view.flood if k not in wanted.flood)
        self.strays.neigh.update(k for k in view.neigh if k not in wanted.neigh)
        self.strays.routes.update(k for k in view.routes if k not in wanted.routes)

    def take_strays(self) -> tuple[list[ops.Operation], Changes]:
        """The strays still unwanted, removed."""
        wanted, strays = self.state.desired, self.strays
        changes = Changes(
            fdb_del=dict.fromkeys(k for k in strays.fdb if k not in wanted.fdb),
            flood_del={k for k in strays.flood if k not in wanted.flood},
            neigh_del=dict.fromkeys(k for k in strays.neigh if k not in wanted.neigh),
            route_del=dict.fromkeys(k for k in strays.routes if k not in wanted.routes),
        )
        self.strays = Strays()
        return self._carry_out(changes)

    def flush(self) -> list[ops.Operation]:
        """Everything we programmed, removed (`evpn.flush_on_exit`)."""
        return self._carry_out(diff(self.programmed, Entries()))[0]

    def known_differences(self) -> int:
        """Entries known to differ from the wish, cheaply: strays not yet removed, refused
        writes not yet retried (`evpnctl show kernel` lists them; the audit finds others)."""
        strays, refused = self.strays, self._refused
        counts = [len(strays.fdb), len(strays.flood), len(strays.neigh), len(strays.routes)]
        counts += [len(refused.fdb), len(refused.flood), len(refused.neigh), len(refused.routes)]
        return sum(counts)

    def refused(self, op: ops.Operation) -> None:
        ops.refused(self.programmed, op)
        ops.refused_into(self._refused, op)

    def take_retries(self) -> tuple[list[ops.Operation], Changes]:
        """The refused entries still wanted and not programmed since, tried again."""
        wanted, view, refused = self.state.desired, self.programmed, self._refused
        self._refused = Entries()
        changes = Changes()
        for key in refused.fdb:
            vtep = wanted.fdb.get(key)
            if vtep is not None and view.fdb.get(key) != vtep:
                changes.fdb_set[key] = vtep
        changes.flood_add = {k for k in refused.flood if k in wanted.flood and k not in view.flood}
        for nkey in refused.neigh:
            mac = wanted.neigh.get(nkey)
            if mac is not None and view.neigh.get(nkey) != mac:
                changes.neigh_set[nkey] = mac
        for rkey in refused.routes:
            hops = wanted.routes.get(rkey)
            if hops is not None and view.routes.get(rkey) != hops:
                changes.route_set[rkey] = hops
        return self._carry_out(changes)

    def disown(self, key: NeighKey) -> None:
        """Someone else's neighbour entry is where ours was: never ours to remove again."""
        self.programmed.neigh.pop(key, None)

    def _carry_out(self, changes: Changes) -> tuple[list[ops.Operation], Changes]:
        return ops.carry_out(changes, self.programmed), changes


def differences(
    actual: Entries,
    wanted: Entries,
    by_vxlan: Mapping[int, VxlanPort],
    by_bridge: Mapping[int, VxlanPort],
    strays: Strays | None = None,
) -> list[dict[str, Any]]:
    """The difference between what the RIB wants and what the kernel has, entry by entry, for
    people (`evpnctl show kernel`). `strays`: entries found that nobody wants (with what was
    found of each FDB entry's halves), not yet removed."""
    changes = diff(actual, wanted)
    seen: Mapping[FdbKey, tuple[bytes | None, bool]] = {}
    if strays is not None:
        seen = strays.fdb
        changes.fdb_del |= dict.fromkeys(k for k in seen if k not in wanted.fdb)
        changes.flood_del |= {k for k in strays.flood if k not in wanted.flood}
    rows: list[dict[str, Any]] = []

    def row(kind: str, key: tuple[int, bytes], want: str | None, have: str | None) -> None:
        port = (by_bridge if kind == "neigh" else by_vxlan).get(key[0])
        rows.append(
            {
                "kind": kind,
                "vni": port.vni if port else None,
                "device": (port.bridge_name if kind == "neigh" else port.name) if port else None,
                "entry": mac_to_text(key[1]) if kind == "fdb" else ip_to_text(key[1]),
                "wanted": want,
                "kernel": have,
            }
        )

    halves = actual.bridge if actual.bridge is not None else set(actual.fdb)

    def found(key: tuple[int, bytes]) -> str | None:
        have = actual.fdb.get(key)
        in_bridge = key in halves
        if key in seen:
            have, in_bridge = seen[key]
        vxlan = f"dst {ip_to_text(have)}" if have else None
        if in_bridge:
            return f"{vxlan} + bridge" if vxlan else "bridge only"
        return f"{vxlan}, no bridge entry" if vxlan else None

    for key, vtep in changes.fdb_set.items():
        row("fdb", key, f"dst {ip_to_text(vtep)} + bridge", found(key))
    for key in changes.fdb_del:
        row("fdb", key, None, found(key))
    for key in changes.flood_add:
        row("flood", key, "00:00:00:00:00:00 dst", None)
    for key in changes.flood_del:
        row("flood", key, None, "00:00:00:00:00:00 dst")
    for key, mac in changes.neigh_set.items():
        had = actual.neigh.get(key)
        row(
            "neigh",
            key,
            f"lladdr {mac_to_text(mac)}",
            f"lladdr {mac_to_text(had)}" if had else None,
        )
    for key in changes.neigh_del:
        row("neigh", key, None, f"lladdr {mac_to_text(actual.neigh[key])}")

    def route_text(nexthops: ipr.Nexthops | None) -> str | None:
        if not nexthops:
            return None
        words = []
        for hop in nexthops:
            port = by_bridge.get(hop.oif)
            device = port.bridge_name if port else f"ifindex {hop.oif}"
            words.append(f"via {ip_to_text(hop.gateway)} dev {device} onlink")
        return "; ".join(words)

    for route_key in [*changes.route_set, *changes.route_del]:
        rows.append(
            {
                "kind": "route",
                "vni": None,
                "device": f"table {route_key.table}",
                "entry": f"{ip_to_text(route_key.dst)}/{route_key.dst_len}",
                "wanted": route_text(changes.route_set.get(route_key)),
                "kernel": route_text(actual.routes.get(route_key)),
            }
        )
    rows.sort(key=lambda r: (str(r["kind"]), r["vni"] or 0, str(r["entry"])))
    return rows
