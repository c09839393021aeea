"""The control socket against clumsy and hostile clients, in-process (no root): every bad
request gets a reason and the server keeps serving; it holds 64 clients at most, the last for
root, and closes idle ones; a big answer is written in pieces, the loop given back between."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from evpnd.control import pacing
from evpnd.control.server import (
    FULL,
    IDLE,
    KEPT_FOR_ROOT,
    LINE_LIMIT,
    MAX_CLIENTS,
    NOT_READING,
    ROOT_SLOTS,
    ControlServer,
    admission,
)
from evpnd.control.watch import EventStream
from evpnd.events import VniGone


async def _nothing() -> AsyncIterator[dict[str, Any]]:
    if False:
        yield {}


def _handle(request: dict[str, Any]) -> Any:
    if request["command"] == "show peers":
        return {"filters": request["filters"]}
    raise ValueError(f"unknown command {request['command']!r}")


async def _ask(path: Path, raw: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path), limit=LINE_LIMIT * 2)
    writer.write(raw)
    await writer.drain()
    answer = json.loads(await reader.readline())
    writer.close()
    return answer  # type: ignore[no-any-return]


def test_bad_requests_get_reasons_and_the_server_lives_on(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        path = tmp_path / "evpnd.sock"
        server = ControlServer(str(path), _handle, _nothing)
        await server.start()
        answers = [
            await _ask(path, b'{"command": "show peers", "filters": [1, 2]}\n'),
            await _ask(path, b"[" * 100_000 + b"]" * 100_000 + b"\n"),
            await _ask(path, b'"' + b"x" * (LINE_LIMIT + 10) + b'"\n'),
            await _ask(path, b'{"command": 7}\n'),
            await _ask(path, b"not json\n"),
            await _ask(path, b'{"command": "show peers", "filters": {"vni": 100}}\n'),
        ]
        await server.stop()
        return answers

    wrong_type, deep, long, not_text, garbage, good = asyncio.run(scenario())
    assert wrong_type == {"ok": False, "error": "filters: expected an object"}
    assert (deep["ok"] is False and "nested too deeply" in deep["error"]) or "JSON" in deep["error"]
    assert long == {"ok": False, "error": f"request longer than {LINE_LIMIT} bytes"}
    assert not_text == {"ok": False, "error": "command: expected a string"}
    assert garbage["ok"] is False
    assert good == {"ok": True, "result": {"filters": {"vni": 100}}}


async def _taken_in(server: ControlServer, count: int) -> None:
    for _ in range(10_000):  # turns of the loop until the server has taken them all in
        if server.clients == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"the server holds {server.clients} clients, not {count}")


def test_at_most_64_clients_at_once_the_last_for_root(tmp_path: Path) -> None:
    """With this process's own credentials: all 64 slots if it is root, 63 otherwise."""

    async def scenario() -> tuple[dict[str, Any], dict[str, int]]:
        path = tmp_path / "evpnd.sock"
        server = ControlServer(str(path), _handle, _nothing)
        await server.start()
        held = [await asyncio.open_unix_connection(str(path)) for _ in range(MAX_CLIENTS - 1)]
        await _taken_in(server, MAX_CLIENTS - 1)
        if os.getuid() == 0:
            held.append(await asyncio.open_unix_connection(str(path)))
            await _taken_in(server, MAX_CLIENTS)
        refused = await _ask(path, b'{"command": "show peers"}\n')
        for _, writer in held:
            writer.close()
        await server.stop()
        return refused, server.refused

    refused, counts = asyncio.run(scenario())
    if os.getuid() == 0:
        assert refused == {"ok": False, "error": "too many control clients"}
        assert counts == {FULL: 1, KEPT_FOR_ROOT: 0}
    else:
        assert refused["error"] == "too many control clients (the last is kept for root)"
        assert counts == {FULL: 0, KEPT_FOR_ROOT: 1}


def test_the_slot_policy() -> None:
    """`admission` alone: the last slot is root's; nobody gets past the limit; a caller whose
    credentials cannot be read is not root."""
    assert admission(0, 1000) is None and admission(0, None) is None
    assert admission(MAX_CLIENTS - ROOT_SLOTS - 1, 1000) is None
    assert admission(MAX_CLIENTS - ROOT_SLOTS, 1000) == KEPT_FOR_ROOT
    assert admission(MAX_CLIENTS - ROOT_SLOTS, None) == KEPT_FOR_ROOT
    assert admission(MAX_CLIENTS - ROOT_SLOTS, 0) is None
    assert admission(MAX_CLIENTS, 0) == FULL and admission(MAX_CLIENTS, 1000) == FULL
    assert admission(2, 1000, limit=3) == KEPT_FOR_ROOT and admission(3, 0, limit=3) == FULL


class _PretendUsers(ControlServer):
    """Callers' uids as the test says (a fast test cannot be two users): the socket path of
    the slot policy."""

    uid = 1000

    def credentials(self, writer: asyncio.StreamWriter) -> tuple[int, int] | None:
        return self.uid, self.uid


def test_idle_users_leave_roots_slot_free_and_refusals_are_counted(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], dict[str, int], list[Any]]:
        path = tmp_path / "evpnd.sock"
        server = _PretendUsers(str(path), _handle, _nothing)
        await server.start()
        held = [await asyncio.open_unix_connection(str(path)) for _ in range(MAX_CLIENTS - 1)]
        await _taken_in(server, MAX_CLIENTS - 1)
        answers = [await _ask(path, b'{"command": "show peers"}\n')]  # a user: refused
        server.uid = 0
        root = await asyncio.open_unix_connection(str(path))  # root: the kept slot
        await _taken_in(server, MAX_CLIENTS)
        root[1].write(b'{"command": "show peers"}\n')
        answers.append(json.loads(await root[0].readline()))
        answers.append(await _ask(path, b'{"command": "show peers"}\n'))  # root again: full
        from evpnd.daemon.metrics import DaemonCollector

        families = DaemonCollector(None, server)._control()  # type: ignore[arg-type]
        for _, writer in [*held, root]:
            writer.close()
        await server.stop()
        return answers, server.refused, families

    (user, root, again), refused, families = asyncio.run(scenario())
    assert user["error"] == "too many control clients (the last is kept for root)"
    assert root == {"ok": True, "result": {"filters": {}}}
    assert again["error"] == "too many control clients"
    assert refused == {FULL: 1, KEPT_FOR_ROOT: 1}
    samples = {(s.name, tuple(s.labels.values())): s.value for f in families for s in f.samples}
    assert samples[("evpnd_control_clients", ())] == MAX_CLIENTS
    assert samples[("evpnd_control_clients_refused_total", (FULL,))] == 1
    assert samples[("evpnd_control_clients_refused_total", (KEPT_FOR_ROOT,))] == 1
    assert samples[("evpnd_control_clients_closed_total", (IDLE,))] == 0


def test_idle_clients_are_closed_but_a_watcher_is_not(tmp_path: Path) -> None:
    """A client that sends no whole request within the idle timeout is told and closed (also
    one that sent half a request); a `watch` client waits for events, and is not idle."""
    events = EventStream()

    async def scenario() -> tuple[list[bytes], dict[str, Any], dict[str, int]]:
        path = tmp_path / "evpnd.sock"
        server = ControlServer(str(path), _handle, events.follow, idle_timeout=0.05)
        await server.start()
        watcher = await asyncio.open_unix_connection(str(path))
        watcher[1].write(b'{"command": "watch"}\n')
        assert json.loads(await watcher[0].readline())["result"] == "watching"
        silent = await asyncio.open_unix_connection(str(path))
        halfway = await asyncio.open_unix_connection(str(path))
        halfway[1].write(b'{"command": "show pe')
        # each ends once the timeout has passed: by then the watcher has waited as long
        ends = [await silent[0].read(), await halfway[0].read()]
        events.publish(VniGone(100, "vxlan100"))
        event = json.loads(await watcher[0].readline())
        watcher[1].close()
        await server.stop()
        return ends, event, server.closed

    ends, event, closed = asyncio.run(scenario())
    for end in ends:
        assert json.loads(end) == {"ok": False, "error": "no request for 0.05 s: closed"}
    assert event["event"] == "vni" and event["vni"] == 100
    assert closed == {IDLE: 2, NOT_READING: 0}


def test_a_client_that_does_not_read_its_answer_is_closed(tmp_path: Path) -> None:
    big = [{"row": i, "text": "x" * 100} for i in range(50_000)]  # 5 MB: more than buffers

    async def scenario() -> dict[str, int]:
        path = tmp_path / "evpnd.sock"
        server = ControlServer(str(path), lambda _: big, _nothing, idle_timeout=0.05)
        await server.start()
        _, writer = await asyncio.open_unix_connection(str(path))  # and never read from
        writer.write(b'{"command": "show routes"}\n')
        await writer.drain()
        for _ in range(100_000):  # turns until the server gave up on it
            if server.closed[NOT_READING]:
                break
            await asyncio.sleep(0.001)
        writer.close()
        await server.stop()
        return server.closed

    assert asyncio.run(scenario())[NOT_READING] == 1


def test_a_big_answer_is_written_in_pieces_with_the_loop_given_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The encoding of a whole table gives the loop back between its pieces: another task
    sees the answer half written, many times (a writer that never makes anyone wait, so no
    turn comes from drain()). Before, the answer was one json.dumps and one write."""
    monkeypatch.setattr(pacing, "TURN", 0.0)  # give the loop back at every look at the clock
    rows = [{"row": i, "text": "x" * 100} for i in range(20_000)]
    answer = {"ok": True, "result": rows}

    class Writer:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

        async def drain(self) -> None:
            pass

        def is_closing(self) -> bool:
            return False

    async def scenario() -> tuple[Writer, list[int]]:
        writer = Writer()
        seen: list[int] = []
        done = False

        async def other() -> None:
            while not done:
                seen.append(len(writer.written))
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        server = ControlServer("unused", _handle, _nothing)
        await server._send(writer, answer)  # type: ignore[arg-type]
        done = True
        await task
        return writer, seen

    writer, seen = asyncio.run(scenario())
    assert json.loads(b"".join(writer.written)) == answer
    assert b"".join(writer.written).endswith(b"}\n")
    pieces = len(writer.written)
    assert pieces > 20  # 2.4 MB in 64 KB pieces
    halfway = {n for n in seen if 0 < n < pieces}
    assert len(halfway) > pieces // 2  # the other task ran between the pieces


@pytest.mark.parametrize(
    "value",
    [
        {"ok": True, "result": list(range(1000))},
        {"ok": True, "result": {"routes": [{"a": i} for i in range(100)], 7: None, "b": "é"}},
        {"ok": True, "result": {"wanted": {"deep": [None] * 65}, "x": []}},
        [],
        {},
        "text",
    ],
)
def test_json_in_pieces_is_json_dumps(value: Any) -> None:
    assert "".join(pacing.json_pieces(value)) == json.dumps(value)


def test_a_watcher_that_went_away_is_let_go_quietly_on_uvloop(tmp_path: Path) -> None:
    """evpnd runs on uvloop, whose transports raise RuntimeError (not ConnectionError) on a
    write after the peer went away: a killed `evpnctl watch` was logged as "control request
    failed" with a traceback, and answering it raised again in the connection handler (found
    by the soak, benchmarks/soak.py --seed 1: a `watch` client killed, then a peer event)."""
    uvloop = pytest.importorskip("uvloop")
    from structlog.testing import capture_logs

    events = EventStream()
    unhandled: list[dict[str, Any]] = []

    async def scenario() -> int:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        path = tmp_path / "evpnd.sock"
        server = ControlServer(str(path), _handle, events.follow)
        await server.start()
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b'{"command": "watch"}\n')
        assert json.loads(await reader.readline())["result"] == "watching"
        writer.close()
        await writer.wait_closed()
        for _ in range(200):  # events until the server has let the watcher go
            events.publish(VniGone(100, "vxlan100"))
            await asyncio.sleep(0.005)
            if not server.clients:
                break
        clients = server.clients
        await server.stop()
        return clients

    with capture_logs() as logs:
        loop = uvloop.new_event_loop()
        try:
            clients = loop.run_until_complete(scenario())
        finally:
            loop.close()
    assert clients == 0
    assert not [line for line in logs if line["log_level"] in ("error", "critical")], logs
    assert not unhandled, unhandled
