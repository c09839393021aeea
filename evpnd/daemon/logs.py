"""structlog set-up: JSON lines for journald, key=value on a terminal.

Under systemd, each line starts with its syslog priority (`<3>` for an error, sd-daemon(3)):
journald takes the priority from it and strips it, so `journalctl -p err` finds the errors and
`-p warning` the warnings, while the line itself stays one JSON object."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from evpnd.events import readable

_LEVELS = logging.getLevelNamesMapping()

#: syslog(3) priorities of structlog's levels
PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}


def journal_stream(stream: TextIO) -> bool:
    """True when `stream` is systemd's journal stream: JOURNAL_STREAM names its device and
    inode (systemd.exec(5)); a redirection to a file or a pipe keeps plain lines."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return expected == f"{info.st_dev}:{info.st_ino}"


class PriorityPrefix:
    """Renders with `renderer` and puts the level's `<N>` in front."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        priority = PRIORITY.get(str(event.get("level", method)), 6)
        return f"<{priority}>{self.renderer(logger, method, event)}"


class LevelGate:
    """Drops lines below the configured level — except the debug lines of a scope being
    debugged (daemon/debugging.py), which carry `scope` and were rate-limited already."""

    def __init__(self, level: str) -> None:
        self.threshold = _LEVELS[level.upper()]

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        number = _LEVELS.get(method.upper(), logging.INFO)
        if number < self.threshold and "scope" not in event:
            raise structlog.DropEvent
        return event


def readable_fields(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    """No Python reprs in a log line: a field given bytes (a MAC, an address) is written in
    its text form (events.readable), as `evpnctl watch` shows it."""
    for key, value in event.items():
        if type(value) in (bytes, bytearray, list, tuple):
            event[key] = readable(value)
    return event


def configure(
    level: str = "info", json_lines: bool | None = None, stream: TextIO | None = None
) -> None:
    stream = stream if stream is not None else sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    if journal_stream(stream):
        renderer = PriorityPrefix(renderer)
    structlog.configure(
        processors=[
            LevelGate(level),
            readable_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        # every level reaches the gate: a debugged scope's lines pass at any level
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
