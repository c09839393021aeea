"""How late the event loop runs: a tick every `every` seconds notes how much later than asked
it ran. Anything slow on the loop — a big parse, a blocking dump, a burst of work — shows
here, and a peer's keepalives are late by as much."""

from __future__ import annotations

import asyncio


class LoopLag:
    def __init__(self, loop: asyncio.AbstractEventLoop, every: float = 0.05) -> None:
        self.loop = loop
        self.every = every
        #: the largest lag since `take_recent` was last called (a scrape), and since start
        self.recent = 0.0
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.loop.create_task(self._tick())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def take_recent(self) -> float:
        recent, self.recent = self.recent, 0.0
        return recent

    async def _tick(self) -> None:
        while True:
            due = self.loop.time() + self.every
            await asyncio.sleep(self.every)
            self.note(self.loop.time() - due)

    def note(self, lag: float) -> None:
        lag = max(lag, 0.0)
        self.recent = max(self.recent, lag)
        self.worst = max(self.worst, lag)
