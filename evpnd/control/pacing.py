"""Work on the event loop in turns of a bounded length: a walk, a sort or an encoding of a whole
table gives the loop back whenever `TURN` seconds of it have run, whatever one item costs.

Counting items instead (so many paths per turn) held the loop 0.4 s for `show routes` at
20,000 routes: a route's view costs twenty times a count's. Time is what the promise is about
(docs/operations.md: no whole-table answer holds the loop over 200 ms), so time is measured."""

from __future__ import annotations

import asyncio
import heapq
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: seconds of work per turn of the loop before it is given back
TURN = 0.02
#: items sorted in one piece; runs are merged a few items at a time
SORT_RUN = 4096


class Pacer:
    """Says when the current turn has used its time (`due`), and gives the loop back
    (`pause`). `due` is a clock read: cheap enough to ask per item."""

    def __init__(
        self, turn: float | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.turn = TURN if turn is None else turn
        self.clock = clock
        self.started = clock()
        #: turns given back (tests count them)
        self.pauses = 0

    def due(self) -> bool:
        return self.clock() - self.started >= self.turn

    async def pause(self) -> None:
        await asyncio.sleep(0)
        self.pauses += 1
        self.started = self.clock()

    async def tick(self) -> None:
        if self.due():
            await self.pause()


class Rows(list[Any]):
    """A list made for one answer and held by nothing else: once it is written, the server
    empties it a slice at a time (`paced_release`) — a million rows freed at once held the
    loop a second."""


async def paced_release(value: Any, pacer: Pacer) -> None:
    """Empties the `Rows` in an answer (at its top or among an object's members) a slice at
    a time."""
    if isinstance(value, Rows):
        while value:
            del value[-1024:]
            await pacer.tick()
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, Rows | dict):
                await paced_release(item, pacer)


async def paced_sort(items: list[T], key: Callable[[T], Any], pacer: Pacer) -> Rows:
    """`sorted(items, key=key)`, stable, in turns: runs of `SORT_RUN` items sorted in one piece,
    then merged an item at a time (a million routes sorted in one piece held the loop a second)."""
    runs: list[list[tuple[Any, int, T]]] = []
    for start in range(0, len(items), SORT_RUN):
        # the index breaks ties: stable, and the items themselves are never compared
        run = [
            (key(item), start + i, item) for i, item in enumerate(items[start : start + SORT_RUN])
        ]
        run.sort()
        runs.append(run)
        await pacer.tick()
    out = Rows()
    if len(runs) == 1:
        out.extend(item for _, _, item in runs[0])
    elif runs:
        for _, _, item in heapq.merge(*runs):
            out.append(item)
            if not len(out) & 1023:
                await pacer.tick()
    for run in runs:  # freed a run at a time, not all at the return
        run.clear()
        await pacer.tick()
    return out


#: a list this long is encoded item by item
BIG = 64


def _big(value: Any) -> bool:
    """A long list, or an object that holds one (at any depth of objects)."""
    if isinstance(value, list):
        return len(value) > BIG
    return isinstance(value, dict) and any(_big(v) for v in value.values())


def json_pieces(value: Any) -> Iterator[str]:
    """`json.dumps(value)` in pieces: a long list an item at a time (each item in one piece),
    an object holding one a member at a time, anything else in one piece. The pieces joined
    are exactly `json.dumps(value)`."""
    if isinstance(value, list) and len(value) > BIG:
        yield "["
        dumps = json.dumps
        for index, item in enumerate(value):
            yield (", " + dumps(item)) if index else dumps(item)
        yield "]"
    elif isinstance(value, dict) and _big(value):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield (", " if index else "") + json.dumps(_key(key)) + ": "
            yield from json_pieces(item)
        yield "}"
    else:
        yield json.dumps(value)


def _key(key: Any) -> str:
    # json.dumps writes keys that are numbers, booleans or None as strings, as here
    return key if isinstance(key, str) else json.dumps(key)


def batches(pieces: Iterable[str], size: int) -> Iterator[str]:
    """Pieces joined into strings of about `size` characters (at least one piece each)."""
    held: list[str] = []
    length = 0
    for piece in pieces:
        held.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(held)
            held, length = [], 0
    if held:
        yield "".join(held)
