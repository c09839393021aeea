"""The control socket under load, in-process (no namespaces): whole-table views give the loop
back while they are answered, and root reaches the daemon past a crowd of idle users.

The daemon is real but not started: its RIB holds remote Type 2 routes given by hand, as in
benchmarks/views.py (which measures the loop's longest wait at 20,000 and a million routes)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from benchmarks.converge import VTEP
from benchmarks.views import daemon_with
from evpnd.control import pacing
from evpnd.control.server import MAX_CLIENTS, ControlServer
from evpnd.daemon import commands, views
from evpnd.daemon.daemon import Daemon
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import EvpnRoute, MacIpRoute


def _daemon(folder: str, count: int, loop: asyncio.AbstractEventLoop) -> Daemon:
    """`count` remote MACs, every other one with an IP (so `show neigh` has rows)."""
    rd = RouteDistinguisher.from_text(f"{VTEP}:1")
    routes: list[EvpnRoute] = [
        MacIpRoute(
            rd,
            0,
            (0x020000000000 + i).to_bytes(6, "big"),
            (0x0A000001 + i).to_bytes(4, "big") if i % 2 else b"",
            ZERO_ESI,
            100,
        )
        for i in range(count)
    ]
    return daemon_with(folder, loop, routes)


@pytest.mark.parametrize("command", ["show routes", "show mac", "show neigh", "show vni"])
def test_a_whole_table_view_gives_the_loop_back_while_it_is_built(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another task runs again and again while a view of 3,000 routes is built and sorted (a
    turn's time set to nothing, so every look at the clock gives the loop back: the count of
    turns, not the wall clock, is what is checked). Before, 20,000 paths went by per turn."""
    monkeypatch.setattr(pacing, "TURN", 0.0)
    monkeypatch.setattr(pacing, "SORT_RUN", 256)  # several runs to merge

    async def scenario() -> tuple[Any, int]:
        daemon = _daemon(str(tmp_path), 3000, asyncio.get_running_loop())
        turns, done = 0, False

        async def other() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        before = turns
        answer = await commands.handle(daemon, {"command": command, "filters": {}})
        done = True
        await task
        return answer, turns - before

    answer, turns = asyncio.run(scenario())
    assert turns >= 3000 // views.PACE_SLICE
    if command == "show routes":
        assert len(answer) == 3000 + 1  # and our own Type 3
        texts = [r["text"] for r in answer if r["type"] == 2]
        assert texts == sorted(texts)  # one RD: in the order of their text, merged right
    elif command == "show mac":
        assert [m["mac"] for m in answer] == sorted(m["mac"] for m in answer)
        assert len(answer) == 1500
    elif command == "show neigh":
        assert len(answer) == 1500
        assert [n["ip"] for n in answer] == [
            f"10.0.{(i + 1) >> 8}.{(i + 1) & 255}" for i in range(1, 3000, 2)
        ]
    else:
        assert answer[0]["macs"] == 1500 and answer[0]["arps"] == 1500


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(os.getuid() != 0, reason="two users: root, and a crowd of nobody's")
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"no {SYSTEM_PYTHON}")
def test_root_reaches_the_daemon_past_64_idle_users() -> None:
    """70 idle connections from another user (a process running as nobody) hold every slot
    they may have; the real evpnctl, as root, still gets `show summary`, and the crowd's
    extra connections were refused for the root slot."""
    folder = tempfile.mkdtemp(prefix="evpnd-load-")
    os.chmod(folder, 0o755)  # nobody must reach the socket
    crowd = """
import socket, sys, time
held = []
for _ in range(70):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    held.append(s)
print("holding", flush=True)
sys.stdin.read()  # until the test closes our input
"""

    async def scenario() -> tuple[subprocess.CompletedProcess[str], dict[str, int], int]:
        daemon = _daemon(folder, 10, asyncio.get_running_loop())
        path = f"{folder}/evpnd.sock"
        server = ControlServer(path, lambda request: commands.handle(daemon, request), _none)
        await server.start()
        os.chmod(path, 0o666)
        users = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON,  # (the virtualenv's may be out of nobody's reach)
            "-c",
            crowd,
            path,
            user=65534,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert users.stdout is not None and users.stdin is not None
        assert await users.stdout.readline() == b"holding\n"
        for _ in range(10_000):  # until the server has taken in or refused each of the 70
            if server.clients + server.clients_refused == 70:
                break
            await asyncio.sleep(0.001)
        held = server.clients
        main = "from evpnd.control.cli import main; raise SystemExit(main())"
        evpnctl = [sys.executable, "-c", main, "-s", path, "show", "summary"]
        answered = await asyncio.to_thread(
            subprocess.run, evpnctl, capture_output=True, text=True, timeout=60
        )
        users.stdin.close()
        await users.wait()
        await server.stop()
        return answered, dict(server.refused), held

    try:
        answered, refused, held = asyncio.run(scenario())
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
    assert held == MAX_CLIENTS - 1
    assert answered.returncode == 0, answered.stderr
    assert "192.168.60.1" in answered.stdout
    assert refused["kept for root"] == 70 - (MAX_CLIENTS - 1)


async def _none() -> Any:
    return
    yield
