"""The event loop's longest wait while some work runs beside it: a task that gives the loop
back at once, every time, and notes the longest gap between its turns (benchmarks/reimport.py,
benchmarks/views.py)."""

from __future__ import annotations

import asyncio


class LoopWait:
    """`async with LoopWait() as waited:` ... `waited.longest` (seconds) once out."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopWait:
        self._running = True
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._running = False
        if self._task is not None:
            await self._task

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while self._running:
            await asyncio.sleep(0)
            now = loop.time()
            self.longest, last = max(self.longest, now - last), now
