"""The control socket: a UNIX stream socket, one JSON request per line, one JSON answer per
line. `{"command": "show peers"}` -> `{"ok": true, "result": [...]}`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

import structlog

from evpnd.control.views import mac_view, peer_view, routes_view, vni_view

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon

log = structlog.get_logger("evpnd.control")


class ControlServer:
    def __init__(self, daemon: Daemon, path: str) -> None:
        self.daemon = daemon
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)  # a socket left by a daemon that died
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=1 << 20)
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    answer = {"ok": True, "result": self.handle(request)}
                except (ValueError, KeyError, TypeError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def handle(self, request: dict[str, Any]) -> Any:
        command = request.get("command")
        if command == "show peers":
            return peer_view(self.daemon)
        if command == "show routes":
            return routes_view(self.daemon, request.get("filters") or {})
        if command == "show vni":
            return vni_view(self.daemon)
        if command == "show mac":
            return mac_view(self.daemon, request.get("filters") or {})
        if command == "show summary":
            return {
                "asn": self.daemon.config.asn,
                "router_id": self.daemon.config.router_id,
                "routes": len(self.daemon.rib),
                "peers": len(self.daemon.drivers),
                "vnis": [
                    {
                        "vni": v.vni,
                        "rd": str(v.rd),
                        "vtep": v.vtep_ip,
                        "export_rts": [rt.value for rt in v.export_rts],
                    }
                    for v in self.daemon.vnis
                ],
            }
        raise ValueError(f"unknown command {command!r}")
