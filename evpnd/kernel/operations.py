"""Kernel operations as typed values, and the netlink message each becomes. No I/O.

A reconciliation's difference (`desired.Changes`) becomes a list of operations; the writer
sends their messages in batches, and a refusal comes back as the operation it was for, so the
reconciler can take it back. The operations are NamedTuples — immutable and typed like frozen
dataclasses, and as cheap to make as the plain tuples they replace: a table of 100,000 MACs
makes 100,000 of them in one go."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, NamedTuple

from evpnd.evpn.identifiers import ip_to_text, mac_to_text
from evpnd.kernel import iproutes as ipr
from evpnd.kernel import neighbours as nl
from evpnd.kernel.desired import Changes, Entries

# No NLM_F_ACK: the writer hears only of refusals (see netlink.Writer.send).
_SET = nl.NLM_F_REQUEST | nl.NLM_F_CREATE | nl.NLM_F_REPLACE
_APPEND = nl.NLM_F_REQUEST | nl.NLM_F_CREATE | nl.NLM_F_APPEND
_DEL = nl.NLM_F_REQUEST
_REMOTE_FLAGS = nl.NTF_MASTER | nl.NTF_SELF | nl.NTF_EXT_LEARNED
_BOTH_HALVES = nl.NTF_MASTER | nl.NTF_SELF  # a removal of the bridge's and the vxlan's entry


class FdbSet(NamedTuple):
    """A remote MAC: the vxlan entry (`dst VTEP self`) and the bridge's (`master`) in one
    message, as FRR makes them; replaces the entry in place when the MAC moves."""

    ifindex: int
    mac: bytes
    vtep: bytes


class FdbDel(NamedTuple):
    """Removes a remote MAC's entry, both halves in one message (`master self`, as `bridge
    fdb del MAC dev vxlan100 master self`): the kernel removes the bridge's half, then the
    vxlan device's. One message, not two: a withdrawal of 100,000 MACs is half the kernel's
    work. Where the bridge has no such entry on the vxlan port (the MAC now lives on a local
    port, a VM's new home, say) the kernel stops at that ENOENT and leaves the vxlan half:
    the refusal comes back and `FdbDelSelf` follows (`followup`)."""

    ifindex: int
    mac: bytes
    vtep: bytes


class FdbDelSelf(NamedTuple):
    """The vxlan device's half alone: after a `FdbDel` the bridge refused."""

    ifindex: int
    mac: bytes
    vtep: bytes


class FloodAdd(NamedTuple):
    """A remote VTEP in a VNI's flood list: `00:00:00:00:00:00 dst VTEP self permanent`."""

    ifindex: int
    vtep: bytes


class FloodDel(NamedTuple):
    ifindex: int
    vtep: bytes


class NeighSet(NamedTuple):
    """`IP lladdr MAC extern_learn NOARP` on an SVI: ARP/ND suppression's answer."""

    ifindex: int
    ip: bytes
    mac: bytes


class NeighDel(NamedTuple):
    ifindex: int
    ip: bytes


class RouteSet(NamedTuple):
    key: ipr.RouteKey
    nexthops: ipr.Nexthops


class RouteDel(NamedTuple):
    key: ipr.RouteKey


Operation = (
    FdbSet | FdbDel | FdbDelSelf | FloodAdd | FloodDel | NeighSet | NeighDel | RouteSet | RouteDel
)
_REMOVALS = (FdbDel, FdbDelSelf, FloodDel, NeighDel, RouteDel)


def carry_out(changes: Changes, programmed: Entries) -> list[Operation]:
    """The operations that carry out `changes`, given what is programmed now; `programmed`
    counts them as done at once, so that the next batch is built on it (a refusal is taken
    back, `refused`, when the kernel's answer comes). A neighbour entry is removed only while
    it is ours: one an operator or orchestrator replaced is theirs (FRR deletes those,
    FRRouting/frr#21472)."""
    # tuple.__new__ skips the named tuples' Python-level __new__: half the time of building
    # the 100,000 operations of a table
    new: Callable[..., Any] = tuple.__new__
    ops: list[Operation] = [
        new(FdbSet, (i, mac, vtep)) for (i, mac), vtep in changes.fdb_set.items()
    ]
    fdb = programmed.fdb
    fdb.update(changes.fdb_set)
    unknown = bytes(4)
    forget = fdb.pop
    # a removal names the VTEP it had (the vxlan half is keyed by it), taken as it goes
    ops += [new(FdbDel, (key[0], key[1], forget(key, unknown))) for key in changes.fdb_del]
    ops += [FloodAdd(i, vtep) for i, vtep in changes.flood_add]
    ops += [FloodDel(i, vtep) for i, vtep in changes.flood_del]
    ops += [NeighSet(i, ip, mac) for (i, ip), mac in changes.neigh_set.items()]
    # Only our own neighbour entries are removed (see above): what is left of `neigh_del`
    # says which were, for whoever looks at the changes carried out (the writer's filter).
    neigh = programmed.neigh
    changes.neigh_del = {key: None for key in changes.neigh_del if neigh.pop(key, None)}
    ops += [new(NeighDel, key) for key in changes.neigh_del]
    neigh.update(changes.neigh_set)
    ops += [RouteSet(key, hops) for key, hops in changes.route_set.items()]
    ops += [RouteDel(key) for key in changes.route_del]
    programmed.flood.update(dict.fromkeys(changes.flood_add, 1))
    for key in changes.flood_del:
        programmed.flood.pop(key, None)
    programmed.routes.update(changes.route_set)
    for route_key in changes.route_del:
        programmed.routes.pop(route_key, None)
    return ops


def _fdb_set(op: FdbSet, seq: int) -> bytes:
    ifindex, mac, vtep = op
    return nl.fdb_message(
        nl.RTM_NEWNEIGH, _SET, seq, ifindex, mac, vtep, nl.NUD_REACHABLE, _REMOTE_FLAGS
    )


def _fdb_del(op: FdbDel, seq: int) -> bytes:
    ifindex, mac, vtep = op
    return nl.fdb_message(nl.RTM_DELNEIGH, _DEL, seq, ifindex, mac, vtep, 0, _BOTH_HALVES)


def _fdb_del_self(op: FdbDelSelf, seq: int) -> bytes:
    ifindex, mac, vtep = op
    return nl.fdb_message(nl.RTM_DELNEIGH, _DEL, seq, ifindex, mac, vtep, 0, nl.NTF_SELF)


def _flood_add(op: FloodAdd, seq: int) -> bytes:
    ifindex, vtep = op
    return nl.fdb_message(
        nl.RTM_NEWNEIGH, _APPEND, seq, ifindex, nl.ZERO_MAC, vtep, nl.NUD_PERMANENT, nl.NTF_SELF
    )


def _flood_del(op: FloodDel, seq: int) -> bytes:
    ifindex, vtep = op
    return nl.fdb_message(nl.RTM_DELNEIGH, _DEL, seq, ifindex, nl.ZERO_MAC, vtep, 0, nl.NTF_SELF)


def _neigh_set(op: NeighSet, seq: int) -> bytes:
    ifindex, ip, mac = op
    return nl.neigh_message(
        nl.RTM_NEWNEIGH, _SET, seq, ifindex, ip, mac, nl.NUD_NOARP, nl.NTF_EXT_LEARNED
    )


def _neigh_del(op: NeighDel, seq: int) -> bytes:
    ifindex, ip = op
    return nl.neigh_message(nl.RTM_DELNEIGH, _DEL, seq, ifindex, ip, None, 0, 0)


def _route_set(op: RouteSet, seq: int) -> bytes:
    return ipr.route_message(ipr.RTM_NEWROUTE, _SET, seq, op.key, op.nexthops)


def _route_del(op: RouteDel, seq: int) -> bytes:
    return ipr.route_message(ipr.RTM_DELROUTE, _DEL, seq, op.key)


#: one encoder per operation type (a dict lookup: this runs 100,000 times a table)
_ENCODERS: dict[type, Callable[[Any, int], bytes]] = {
    FdbSet: _fdb_set,
    FdbDel: _fdb_del,
    FdbDelSelf: _fdb_del_self,
    FloodAdd: _flood_add,
    FloodDel: _flood_del,
    NeighSet: _neigh_set,
    NeighDel: _neigh_del,
    RouteSet: _route_set,
    RouteDel: _route_del,
}


def encode(op: Operation, seq: int) -> bytes:
    """The netlink message for one operation."""
    return _ENCODERS[type(op)](op, seq)


def encode_all(operations: list[Operation], first_seq: int) -> list[bytes]:
    """Each operation's message, numbered from `first_seq` on, at the operation's place. A
    table's worth of FDB writes to IPv4 VTEPs is packed here in one step each, not through
    `encode`'s three calls: this runs 100,000 times when a table comes or goes."""
    pack = nl.FDB_V4.pack
    size = nl.FDB_V4.size
    new_neigh, del_neigh, bridge = nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH, nl.AF_BRIDGE
    reachable, lladdr, dst = nl.NUD_REACHABLE, nl.NDA_LLADDR, nl.NDA_DST
    out: list[bytes] = []
    append = out.append
    for seq, op in enumerate(operations, first_seq):
        kind = type(op)
        if kind is FdbDel or kind is FdbSet:
            ifindex, mac, vtep = op  # type: ignore[misc]  # (both are (ifindex, mac, vtep))
            if len(vtep) == 4:
                if kind is FdbDel:
                    message = pack(
                        size, del_neigh, _DEL, seq, 0, bridge, ifindex, 0, _BOTH_HALVES,
                        0, 10, lladdr, mac, 8, dst, vtep,
                    )  # fmt: skip
                else:
                    message = pack(
                        size, new_neigh, _SET, seq, 0, bridge, ifindex, reachable,
                        _REMOTE_FLAGS, 0, 10, lladdr, mac, 8, dst, vtep,
                    )  # fmt: skip
                append(message)
                continue
        append(_ENCODERS[kind](op, seq))
    return out


def harmless(op: Operation, error: int) -> bool:
    """ENOENT on a removal: already gone, which is what was wanted (a `FdbDel`'s still has
    its `followup`)."""
    return error == errno.ENOENT and isinstance(op, _REMOVALS)


def followup(op: Operation, error: int) -> Operation | None:
    """What to write after a refusal: the vxlan half of a `FdbDel` whose bridge half was not
    on the vxlan port (the kernel stopped there)."""
    if error == errno.ENOENT and isinstance(op, FdbDel):
        return FdbDelSelf(*op)
    return None


def refused(programmed: Entries, op: Operation) -> None:
    """The kernel refused `op`: it is not programmed after all (the next reconciliation tries
    again)."""
    match op:
        case FdbSet(ifindex, mac, _):
            programmed.fdb.pop((ifindex, mac), None)
        case FloodAdd(ifindex, vtep):
            programmed.flood.pop((ifindex, vtep), None)
        case NeighSet(ifindex, ip, _):
            programmed.neigh.pop((ifindex, ip), None)
        case RouteSet(key, _):
            programmed.routes.pop(key, None)


def refused_into(entries: Entries, op: Operation) -> None:
    """Note a refused write's entry (its key) in `entries`, to try it again."""
    match op:
        case FdbSet(ifindex, mac, vtep):
            entries.fdb[(ifindex, mac)] = vtep
        case FloodAdd(ifindex, vtep):
            entries.flood[(ifindex, vtep)] = 1
        case NeighSet(ifindex, ip, mac):
            entries.neigh[(ifindex, ip)] = mac
        case RouteSet(key, nexthops):
            entries.routes[key] = nexthops


def describe(op: Operation) -> str:
    """For a log line: `FdbSet ifindex 7 02:00:00:00:00:01 dst 192.0.2.2`."""
    words = [type(op).__name__]
    for name, value in zip(op._fields, op, strict=True):
        if isinstance(value, bytes):
            text = mac_to_text(value) if len(value) == 6 else ip_to_text(value)
            words.append(f"dst {text}" if name == "vtep" else text)
        elif isinstance(value, ipr.RouteKey):
            words.append(f"{ip_to_text(value.dst)}/{value.dst_len} table {value.table}")
        elif isinstance(value, tuple):
            words += [f"via {ip_to_text(h.gateway)} oif {h.oif}" for h in value]
        else:
            words.append(f"{name} {value}")
    return " ".join(words)
