"""What the VNIs import changed (a reload): the wish worked out again for every best path, in
slices, so that the event loop runs between them. No I/O: the shell calls `step` once per turn
of its loop (kernel/dataplane.py `imports_changed`).

Done in one piece, at a million routes, this is 2.6 s of work and 0.7 s more to free the old
wish (benchmarks/reimport.py) — longer than a short BGP hold time may wait. In slices it goes:

1. **walk**: a new desired state is filled from a copy of the Loc-RIB, `count` paths a step,
   while the old one goes on following the RIB (and writing the kernel) as usual. The changes
   it sees meanwhile are kept.
2. **replay**: the kept changes are replayed on the new state, about `count` a step (a path
   that changed after the copy ends as the RIB has it now); then the new state's wish takes
   the old one's place (adopt).
3. **compare**: entry by entry, old wish against new, the difference queued for the writer.
   The kernel holds the old wish for the entries not compared yet; whatever changes after the
   adoption is queued against the new wish as usual, and a comparison queues the entry's value
   in the new wish as it is when compared — written twice at worst, never wrong.
4. **drop**: the old wish's tables emptied a slice at a time (freeing them is work too).

A rebuild (the ports changed) or another reload overtakes a walk or a replay (abandoned: the
old wish is still in force) or a comparison (finished at once first: the kernel must not keep
old entries nobody compares). A stopping shell abandons it (nothing is written any more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evpnd.kernel.desired import DesiredState, Entries
from evpnd.rib.locrib import RouteChange
from evpnd.rib.paths import Path


class Reimport:
    def __init__(self, state: DesiredState) -> None:
        if state.reimporting is not None:
            state.reimporting.overtaken()
        state.reimporting = self
        self.state = state
        self.fresh = DesiredState(
            state.rib, state.ports, state.importing, state.l3ports, state.importing_l3
        )
        #: the RIB's changes while the walk is under way (replayed at the adoption)
        self.seen: list[list[RouteChange]] = []
        #: entries queued by the comparison, by kind ("fdb written", "fdb removed", …); None
        #: until the comparison is done, and for a walk that was overtaken
        self.result: dict[str, int] | None = None
        self._entries = state.rib.entries()
        self._done = 0
        self._old: Entries | None = None
        self._old_tables: list[dict[Any, Any]] = []
        #: (kind, the old wish's table, keys to compare, whether only keys not in the old
        #: table count) still to do
        self._todo: list[tuple[str, dict[Any, Any], list[Any], bool]] = []
        self._cursor = 0  # (in the last of _todo's key lists)
        self._counts: dict[str, int] = {}
        self._step: Callable[[int], bool] = self._walk

    # --- as the state sees it ----------------------------------------------------------------

    def saw(self, changes: list[RouteChange]) -> None:
        if self._step in (self._walk, self._replay):
            self.seen.append(changes)

    def overtaken(self) -> None:
        """A rebuild or a newer reimport takes over."""
        while self._step == self._compare:
            self._compare(1 << 30)
        self.abandon()

    def abandon(self) -> None:
        """Stop here: a walk or replay under way is dropped (the old wish stays in force), a
        drop goes on. (A comparison under way must be finished first: `overtaken`.)"""
        if self.state.reimporting is self:
            self.state.reimporting = None
        if self._step in (self._walk, self._replay, self._compare):
            self._entries, self.seen, self._todo = [], [], []
            self._step = self._over

    # --- as the shell drives it --------------------------------------------------------------

    def step(self, count: int) -> bool:
        """The next `count` pieces of work; True when there is nothing left."""
        return self._step(count)

    def _walk(self, count: int) -> bool:
        fresh, entries = self.fresh, self._entries
        end = min(self._done + count, len(entries))
        for entry in entries[self._done : end]:
            fresh.take_in(entry if type(entry) is Path else entry[0])  # type: ignore[index]
        self._done = end
        if end == len(entries):
            self._entries, self._done = [], 0
            self._step = self._replay
        return False

    def _replay(self, count: int) -> bool:
        """The changes seen since the copy, on the new state, about `count` at a time (more
        may arrive meanwhile: they are seen too)."""
        fresh, seen = self.fresh, self.seen
        while count > 0 and self._done < len(seen):
            changes = seen[self._done]
            self._done += 1
            fresh.on_changes(changes)
            count -= len(changes)
        if self._done == len(seen):
            self._adopt()
        return False

    def _adopt(self) -> None:
        state = self.state
        self.seen, self._done = [], 0
        old, self._old_tables = state.adopt(self.fresh)
        new = state.desired
        self._old = old
        # the old wish's keys, then the new one's (those also in the old are skipped when
        # compared): copies made in C, the comparison itself in slices
        kinds = ("fdb", "flood", "neigh", "routes")
        self._todo = [(kind, getattr(old, kind), list(getattr(old, kind)), False) for kind in kinds]
        self._todo += [(kind, getattr(old, kind), list(getattr(new, kind)), True) for kind in kinds]
        self._step = self._compare

    def _compare(self, count: int) -> bool:
        state, counts = self.state, self._counts
        while count > 0 and self._todo:
            kind, old_table, keys, only_new = self._todo[-1]
            start = self._cursor
            end = min(start + count, len(keys))
            count -= end - start
            self._cursor = end
            if end == len(keys):
                self._todo.pop()
                self._cursor = 0
            new_table = getattr(state.desired, kind)
            queued = []
            for key in keys[start:end]:
                if only_new and key in old_table:
                    continue  # (compared with the old wish's keys)
                had, want = old_table.get(key), new_table.get(key)
                if kind == "flood":  # (a flood entry's value is how many routes want it)
                    had, want = (1 if had else None), (1 if want else None)
                if had != want:
                    queued.append((key, want))
            state.requeue(kind, queued)
            removed = sum(1 for _, want in queued if want is None)
            for name, number in (
                (f"{kind} removed", removed),
                (f"{kind} written", len(queued) - removed),
            ):
                if number:
                    counts[name] = counts.get(name, 0) + number
        if self._todo:
            return False
        self.result = dict(counts)
        if state.reimporting is self:
            state.reimporting = None
        if self._old is not None:
            old = self._old
            self._old_tables += [old.fdb, old.flood, old.neigh, old.routes]
            self._old = None
        self._step = self._drop
        return False

    def _drop(self, count: int) -> bool:
        tables = self._old_tables
        while count > 0 and tables:
            table = tables[-1]
            for _ in range(min(count, len(table))):
                table.popitem()
                count -= 1
            if not table:
                tables.pop()
        return not tables

    def _over(self, count: int) -> bool:
        return True
