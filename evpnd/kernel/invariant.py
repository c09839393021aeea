"""The kernel's invariant: evpnd's entries are exactly those the best paths call for. No I/O.

`expected` computes that set from scratch — a new desired state built from the RIB's best
paths, sharing nothing with the one that follows the RIB change by change — so that comparing
the two, and the kernel with either, finds a mistake in the incremental bookkeeping as well
as one in the kernel. The tests use it after every step of random sequences; `evpnctl show
kernel` reports whether the incremental wish still equals it."""

from __future__ import annotations

from collections.abc import Callable

from evpnd.kernel.desired import DesiredState, Entries, L3Ports, VniPorts
from evpnd.rib.locrib import Rib
from evpnd.rib.paths import Path


def expected(
    rib: Rib,
    ports: dict[int, VniPorts],
    importing: Callable[[Path], list[int]],
    l3ports: dict[int, L3Ports] | None = None,
    importing_l3: Callable[[Path], list[int]] | None = None,
) -> Entries:
    fresh = DesiredState(rib, ports, importing, l3ports or {}, importing_l3)
    fresh.rebuild()
    return fresh.desired


def differences(have: Entries, want: Entries) -> list[str]:
    """What differs, entry by entry, in words (empty: the invariant holds). Flood entries are
    compared as a set: the kernel has each once, however many routes want it."""
    out: list[str] = []
    for name in ("fdb", "neigh", "routes"):
        mine: dict[object, object] = getattr(have, name)
        theirs: dict[object, object] = getattr(want, name)
        for key in mine.keys() | theirs.keys():
            if mine.get(key) != theirs.get(key):
                out.append(f"{name} {key!r}: have {mine.get(key)!r}, want {theirs.get(key)!r}")
    for key in have.flood.keys() ^ want.flood.keys():
        out.append(f"flood {key!r}: {'extra' if key in have.flood else 'missing'}")
    return sorted(out)
