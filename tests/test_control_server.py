"""The control socket against clumsy and hostile clients, in-process (no root): every bad
request gets a reason and the server keeps serving; it holds 64 clients at most."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from evpnd.control.server import LINE_LIMIT, MAX_CLIENTS, ControlServer


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


def test_at_most_64_clients_at_once(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, Any], int]:
        path = tmp_path / "evpnd.sock"
        server = ControlServer(str(path), _handle, _nothing)
        await server.start()
        held = [await asyncio.open_unix_connection(str(path)) for _ in range(MAX_CLIENTS)]
        for _ in range(10_000):  # turns of the loop until the server has taken them all in
            if server.clients == MAX_CLIENTS:
                break
            await asyncio.sleep(0)
        refused = await _ask(path, b'{"command": "show peers"}\n')
        for _, writer in held:
            writer.close()
        await server.stop()
        return refused, server.clients_refused

    refused, count = asyncio.run(scenario())
    assert refused == {"ok": False, "error": "too many control clients"} and count == 1
