"""Waiting for a condition, never for a time: the one helper every live test uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float = 30,
    every: float = 0.2,
    failure: type[Exception] = AssertionError,
) -> Any:
    """`probe`'s first true answer; `failure` (with what was waited for and the last answer)
    when none came within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as exc:  # a probe may fail while things come up
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise failure(f"timed out after {timeout} s waiting for {what}; last saw: {last!r}")
