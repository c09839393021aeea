"""The kernel reconciler's decisions, without I/O: what the RIB wants (`DesiredState`), what we
have programmed, what the kernel has (read by the shell), and the operations between them.

- Route changes: the desired state's pending difference becomes operations (`take`).
- Reconciliation: what the kernel really has is compared with the wish (`repair`). Before the
  peers have sent End-of-RIB (or the restart time has passed) nothing is removed: routes that
  still come back must not lose their entries in between.
- What was asked for counts as programmed at once; a refusal is taken back (`refused`), and the
  next reconciliation tries again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from evpnd.evpn.identifiers import ip_to_text, mac_to_text
from evpnd.kernel import iproutes as ipr
from evpnd.kernel import operations as ops
from evpnd.kernel.desired import Changes, DesiredState, Entries, NeighKey, diff
from evpnd.kernel.links import VxlanPort


class Reconciler:
    def __init__(self, state: DesiredState) -> None:
        self.state = state
        self.programmed = Entries()

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
        return self._carry_out(changes)

    def flush(self) -> list[ops.Operation]:
        """Everything we programmed, removed (`evpn.flush_on_exit`)."""
        return self._carry_out(diff(self.programmed, Entries()))[0]

    def refused(self, op: ops.Operation) -> None:
        ops.refused(self.programmed, op)

    def disown(self, key: NeighKey) -> None:
        """Someone else's neighbour entry is where ours was: never ours to remove again."""
        self.programmed.neigh.pop(key, None)

    def _carry_out(self, changes: Changes) -> tuple[list[ops.Operation], Changes]:
        operations = ops.operations(changes, self.programmed)
        ops.record(self.programmed, changes)
        return operations, changes


def differences(
    actual: Entries,
    wanted: Entries,
    by_vxlan: Mapping[int, VxlanPort],
    by_bridge: Mapping[int, VxlanPort],
) -> list[dict[str, Any]]:
    """The difference between what the RIB wants and what the kernel has, entry by entry, for
    people (`evpnctl show kernel`)."""
    changes = diff(actual, wanted)
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
        vxlan = f"dst {ip_to_text(have)}" if have else None
        if key in halves:
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
