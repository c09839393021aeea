"""What one neighbour message (a dump entry or an event) means for evpnd. No I/O.

- On a vxlan port, extern_learn entries and flood entries are ours. Our own writes'
  notifications are filtered in the kernel (netlink.own_events_filter), so what arrives is
  someone else's doing: an FDB entry named by one is asked about (`check`: its two halves
  are read back one by one, audit.py); a flood entry's notification says all there is.
- On a local bridge port, a MAC is a local MAC (`LocalMac`; static/NOARP entries are sticky),
  except the bridge's and its ports' own addresses (permanent) and multicast MACs (IPv6 ND's
  33:33:…: the bridge's business, not BGP's).
- On an SVI, an extern_learn neighbour is ours (asked about, like an FDB entry); any other
  is a local MAC/IP binding while it is reachable, stale, delay, probe or permanent
  (`LocalHost`), gone otherwise (`LocalHostGone`). A foreign entry where ours was is theirs
  now: we must never remove it (`disowned`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import NamedTuple

from evpnd.kernel import neighbours as nl
from evpnd.kernel.desired import Entries, FdbKey, FloodKey, NeighKey
from evpnd.kernel.links import VxlanPort
from evpnd.local.learning import LocalHost, LocalHostGone, LocalMac, LocalMacGone, Observation

_LEARNED_STATES = nl.NUD_REACHABLE | nl.NUD_STALE | nl.NUD_DELAY | nl.NUD_PROBE


class Meaning(NamedTuple):
    #: what it says of this VTEP's own hosts
    observation: Observation | None = None
    #: someone else changed an FDB entry that is or may be ours: ask the kernel about it
    check_fdb: FdbKey | None = None
    #: the same for an extern_learn neighbour on an SVI
    check_neigh: NeighKey | None = None
    #: someone else added (True) or removed (False) a flood entry on one of our ports
    flood: tuple[FloodKey, bool] | None = None
    #: a neighbour entry that is someone else's now (never to be removed by us)
    disowned: NeighKey | None = None


NOTHING = Meaning()


def meaning(
    n: nl.Neighbour,
    by_vxlan: Container[int],
    by_bridge: Mapping[int, VxlanPort],
    desired: Entries,
) -> Meaning:
    if n.family == nl.AF_BRIDGE:
        if n.ifindex in by_vxlan:
            if n.mac is None:
                return NOTHING
            if n.mac == nl.ZERO_MAC:
                if n.dst is None or n.flags & nl.NTF_MASTER:
                    return NOTHING
                return Meaning(flood=((n.ifindex, n.dst), n.kind == nl.RTM_NEWNEIGH))
            key = (n.ifindex, n.mac)
            if n.flags & nl.NTF_EXT_LEARNED or key in desired.fdb:
                # ours, or put where ours is (a `static` entry replacing it, say)
                return Meaning(check_fdb=key)
            return NOTHING
        port = by_bridge.get(n.master) if n.master is not None else None
        if port is None or n.mac is None or n.state & nl.NUD_PERMANENT or n.mac[0] & 1:
            return NOTHING
        # No extern_learn test here: we never program local ports, and an orchestrator's
        # `bridge fdb replace … master static` over one of our entries moves it to the port
        # keeping the flag — that entry is local (a VM's new home) all the same.
        if n.kind == nl.RTM_DELNEIGH:
            return Meaning(LocalMacGone(port.vni, n.mac))
        return Meaning(LocalMac(port.vni, n.mac, bool(n.state & nl.NUD_NOARP), n.ifindex))
    port = by_bridge.get(n.ifindex)
    if port is None or n.dst is None:
        return NOTHING
    if n.flags & nl.NTF_EXT_LEARNED:
        return Meaning(check_neigh=(n.ifindex, n.dst))
    disowned = (n.ifindex, n.dst)
    if n.mac is not None and n.mac[0] & 1:
        return Meaning(disowned=disowned)  # multicast groups' NOARP entries (224.0.0.22, …)
    alive = n.kind == nl.RTM_NEWNEIGH and n.state & (_LEARNED_STATES | nl.NUD_PERMANENT)
    if alive and n.mac:
        return Meaning(LocalHost(port.vni, n.mac, n.dst), disowned=disowned)
    return Meaning(LocalHostGone(port.vni, n.dst), disowned=disowned)
