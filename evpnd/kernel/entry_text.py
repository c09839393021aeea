"""evpnd's kernel entries in words, the way `bridge fdb` and `ip neigh` print them: device
names, MACs and addresses in their text forms — for `evpnctl show kernel`'s check of the wish,
the "kernel repaired" event and its log line. No I/O.

An entry is keyed by the kernel's interface index; `names` maps an index to its device name
(the vxlan devices and their bridges), and an index it does not know reads `ifindex N`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from typing import cast

from evpnd.evpn.identifiers import ip_to_text, mac_to_text
from evpnd.kernel import iproutes as ipr
from evpnd.kernel.desired import Changes

Names = Mapping[int, str]

#: how many entries a repair names; past that, a count
NAMED = 5


def device(names: Names, ifindex: int) -> str:
    return names.get(ifindex) or f"ifindex {ifindex}"


def key_text(kind: str, key: object, names: Names) -> str:
    """`vxlan100 02:00:00:00:00:01` (fdb), `vxlan100 192.0.2.2` (flood), `br100 10.0.0.5`
    (neigh), `table 1001 10.1.0.0/24` (routes)."""
    if isinstance(key, ipr.RouteKey):
        return f"table {key.table} {ip_to_text(key.dst)}/{key.dst_len}"
    ifindex, raw = cast(tuple[int, bytes], key)
    what = mac_to_text(raw) if kind == "fdb" else ip_to_text(raw)
    return f"{device(names, ifindex)} {what}"


def value_text(kind: str, value: object, names: Names) -> str:
    """What an entry says: the VTEP (fdb), the MAC (neigh), the next hops (routes)."""
    if value is None:
        return "none"
    if kind == "fdb" and isinstance(value, bytes):
        return ip_to_text(value)
    if kind == "neigh" and isinstance(value, bytes):
        return mac_to_text(value)
    if kind == "routes" and isinstance(value, tuple):
        return nexthops_text(value, names)
    return str(value)


def nexthops_text(nexthops: ipr.Nexthops, names: Names) -> str:
    return "; ".join(f"via {ip_to_text(h.gateway)} dev {device(names, h.oif)}" for h in nexthops)


def changed(changes: Changes, names: Names) -> Iterator[str]:
    """Each entry of a set of changes in words: `fdb vxlan100 02:00:00:00:00:01 -> 192.0.2.2`,
    `neigh br100 10.0.0.5 removed`, …"""
    for key, vtep in changes.fdb_set.items():
        yield f"fdb {key_text('fdb', key, names)} -> {ip_to_text(vtep)}"
    for key in changes.fdb_del:
        yield f"fdb {key_text('fdb', key, names)} removed"
    for ifindex, vtep in changes.flood_add:
        yield f"flood {device(names, ifindex)} -> {ip_to_text(vtep)}"
    for key in changes.flood_del:
        yield f"flood {key_text('flood', key, names)} removed"
    for key, mac in changes.neigh_set.items():
        yield f"neigh {key_text('neigh', key, names)} -> {mac_to_text(mac)}"
    for key in changes.neigh_del:
        yield f"neigh {key_text('neigh', key, names)} removed"
    for route, hops in changes.route_set.items():
        yield f"route {key_text('routes', route, names)} -> {nexthops_text(hops, names)}"
    for route in changes.route_del:
        yield f"route {key_text('routes', route, names)} removed"


def named(changes: Changes, names: Names, limit: int = NAMED) -> str:
    """The first `limit` entries of a repair in words, and how many more there are."""
    first = list(islice(changed(changes, names), limit))
    rest = len(changes) - len(first)
    return ", ".join(first) + (f" and {rest} more" if rest > 0 else "")
