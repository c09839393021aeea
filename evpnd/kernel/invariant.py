"""The kernel's invariant: evpnd's entries are exactly those the best paths call for. No I/O.

`expected` computes that set from scratch — a new desired state built from the RIB's best
paths, sharing nothing with the one that follows the RIB change by change — so that comparing
the two, and the kernel with either, finds a mistake in the incremental bookkeeping as well
as one in the kernel. The tests use it after every step of random sequences; `evpnctl show
kernel` reports whether the incremental wish still equals it."""

from __future__ import annotations

from collections.abc import Callable

from evpnd.kernel.desired import DesiredState, Entries, L3Ports, VniPorts
from evpnd.kernel.entry_text import Names, key_text, value_text
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


def differences(have: Entries, want: Entries, names: Names | None = None) -> list[str]:
    """What differs, entry by entry, in words (empty: the invariant holds): `fdb vxlan100
    02:00:00:00:00:01: have 192.0.2.2, want none`. `names`: the devices' names by interface
    index (an index not in it reads `ifindex N`). Flood entries are compared as a set: the
    kernel has each once, however many routes want it."""
    names = names or {}
    out: list[str] = []
    for name in ("fdb", "neigh", "routes"):
        mine: dict[object, object] = getattr(have, name)
        theirs: dict[object, object] = getattr(want, name)
        for key in mine.keys() | theirs.keys():
            if mine.get(key) != theirs.get(key):
                out.append(
                    f"{name} {key_text(name, key, names)}: "
                    f"have {value_text(name, mine.get(key), names)}, "
                    f"want {value_text(name, theirs.get(key), names)}"
                )
    for key in have.flood.keys() ^ want.flood.keys():
        state = "extra" if key in have.flood else "missing"
        out.append(f"flood {key_text('flood', key, names)}: {state}")
    return sorted(out)
