"""Checking the kernel entry by entry, without I/O: which entries to ask about, the requests,
and what the answers say.

Why not a dump: the kernel's FDB dump restarts from the table's first entry for every batch
of about 300 entries it returns, so reading a table of n entries costs n²/300 steps — 4 s of
kernel time at 100,000 MACs, six minutes at a million (docs/kernel.md). A request for one
entry is one hash lookup. So evpnd keeps what the kernel has from its own writes and from the
kernel's notifications, and checks it by asking for the entries themselves:

- the entries a notification names (someone else removed or replaced one of ours): at once;
- every entry wanted or programmed, a slice at a time (`Audit`): the whole table over a
  rotation, at a bounded cost per pass, to find what no notification told (a lost one).

Flood entries cannot be checked this way (a request for 00:00:00:00:00:00 answers with the
first VTEP only); their notifications and the resync after an overrun keep them right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evpnd.kernel import neighbours as nl
from evpnd.kernel.desired import Entries, FdbKey, NeighKey

#: entries asked about per pass (each FDB entry is two requests, one per half)
SLICE = 20_000


@dataclass
class Probed:
    """What the kernel said of some entries."""

    #: FDB key -> (the vxlan half's VTEP if that half is ours, whether the bridge half is ours)
    fdb: dict[FdbKey, tuple[bytes | None, bool]] = field(default_factory=dict)
    #: SVI neighbour key -> the MAC of our (extern_learn) entry, None if there is none
    neigh: dict[NeighKey, bytes | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.fdb) + len(self.neigh)


@dataclass(frozen=True)
class Questions:
    fdb: tuple[FdbKey, ...]
    neigh: tuple[NeighKey, ...]

    def requests(self) -> list[bytes]:
        """Request i carries sequence number i + 1 (netlink.Prober.ask): both halves of each
        FDB entry, then the neighbours."""
        out: list[bytes] = []
        seq = 0
        for ifindex, mac in self.fdb:
            out.append(nl.fdb_get_request(seq + 1, ifindex, mac, master=False))
            out.append(nl.fdb_get_request(seq + 2, ifindex, mac, master=True))
            seq += 2
        for ifindex, ip in self.neigh:
            seq += 1
            out.append(nl.neigh_get_request(seq, ifindex, ip))
        return out

    def read(self, answers: list[nl.Neighbour | None]) -> Probed:
        """The answers to `requests()`, in their order."""
        probed = Probed()
        at = 0
        for key in self.fdb:
            vxlan, bridge = answers[at], answers[at + 1]
            at += 2
            vtep = None
            if vxlan is not None and vxlan.flags & nl.NTF_EXT_LEARNED and vxlan.dst:
                vtep = vxlan.dst
            # the bridge answers with the port the MAC is on now (a local one, maybe)
            ours = (
                bridge is not None
                and bridge.ifindex == key[0]
                and bool(bridge.flags & nl.NTF_EXT_LEARNED)
            )
            probed.fdb[key] = (vtep, ours)
        for key in self.neigh:
            found = answers[at]
            at += 1
            ext = found is not None and found.flags & nl.NTF_EXT_LEARNED and found.mac
            probed.neigh[key] = found.mac if ext and found is not None else None
        return probed


@dataclass
class Audit:
    """Walks every entry wanted or programmed, a slice per pass; a rotation ends when all
    have been asked about once."""

    rotations: int = 0
    #: entries asked about, and found different from what evpnd believed, since the start
    checked: int = 0
    found_wrong: int = 0
    #: loop time at which the last complete rotation ended
    last_rotation_at: float | None = None
    #: seconds the last slice took to ask and answer (in the writer thread), and its size
    last_slice_s: float = 0.0
    last_slice: int = 0
    _fdb: list[FdbKey] = field(default_factory=list)
    _neigh: list[NeighKey] = field(default_factory=list)

    def next(self, wanted: Entries, programmed: Entries, size: int = SLICE) -> Questions:
        if not self._fdb and not self._neigh:
            # a new rotation: a snapshot of the keys (entries that come later are written
            # with their own check: the writer's refusals). An empty table makes an empty
            # slice, and the next pass looks again.
            self._fdb = [*wanted.fdb, *(k for k in programmed.fdb if k not in wanted.fdb)]
            self._neigh = [*wanted.neigh, *(k for k in programmed.neigh if k not in wanted.neigh)]
        fdb = self._fdb[-size:]
        del self._fdb[-size:]
        neigh = self._neigh[-(size - len(fdb)) :] if len(fdb) < size else []
        if neigh:
            del self._neigh[-len(neigh) :]
        return Questions(tuple(fdb), tuple(neigh))

    def answered(
        self, probed: Probed, wrong: int, now: float, took: float = 0.0, slice_: bool = True
    ) -> None:
        """Entries read back: one of our slices (`slice_`), or entries a notification named."""
        self.checked += len(probed)
        self.found_wrong += wrong
        if not slice_:
            return
        self.last_slice_s, self.last_slice = took, len(probed)
        if not self._fdb and not self._neigh:
            self.rotations += 1
            self.last_rotation_at = now

    def status(self, now: float) -> dict[str, object]:
        return {
            "rotations": self.rotations,
            "checked": self.checked,
            "found_wrong": self.found_wrong,
            "last_rotation_ago_s": (
                round(now - self.last_rotation_at, 1) if self.last_rotation_at is not None else None
            ),
            "left_in_rotation": len(self._fdb) + len(self._neigh),
            "last_slice": self.last_slice,
            "last_slice_s": round(self.last_slice_s, 4),
        }
