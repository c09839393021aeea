"""The control socket: a UNIX stream socket, one JSON request per line, one JSON answer per
line. `{"command": "show peers"}` -> `{"ok": true, "result": [...]}`. `watch` answers once and
then streams one event per line until the client goes.

Who may connect is the file's business (0660, group `control_group`); who may change things
(`clear`, `reload`) is checked per request from the caller's credentials (SO_PEERCRED)."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from evpnd.control.views import (
    kernel_view,
    l3vni_view,
    mac_view,
    neigh_view,
    peer_view,
    routes_view,
    vni_view,
)
from evpnd.evpn.identifiers import mac_from_text, mac_to_text

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon

log = structlog.get_logger("evpnd.control")

WRITE_COMMANDS = frozenset({"clear peer", "clear mac", "reload"})


class Refused(Exception):
    pass


def caller_groups(uid: int, gid: int) -> set[int]:
    try:
        user = pwd.getpwuid(uid)
    except KeyError:
        return {gid}
    return set(os.getgrouplist(user.pw_name, gid)) | {gid}


class ControlServer:
    def __init__(
        self, daemon: Daemon, path: str, reload: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.daemon = daemon
        self.path = path
        self.reload = reload
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)  # a socket left by a daemon that died
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=1 << 20)
        group = self.daemon.config.control_group
        if group is not None:
            os.chown(self.path, -1, grp.getgrnam(group).gr_gid)
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _may_write(self, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        if sock is None:
            return False
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, gid = struct.unpack("3i", creds)
        if uid in (0, os.getuid()):
            return True
        group = self.daemon.config.control_write_group
        if group is None:
            return False
        try:
            wanted = grp.getgrnam(group).gr_gid
        except KeyError:
            return False
        return wanted in caller_groups(uid, gid)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise TypeError("a request is a JSON object")
                    command = request.get("command")
                    if command in WRITE_COMMANDS and not self._may_write(writer):
                        raise Refused(
                            f"{command}: not allowed (root, or a member of the control_write_group)"
                        )
                    if command == "watch":
                        await self._watch(request, writer)
                        return
                    answer = {"ok": True, "result": self.handle(request)}
                except (ValueError, KeyError, TypeError, Refused) as exc:
                    answer = {"ok": False, "error": str(exc)}
                    if isinstance(exc, Refused):
                        answer["refused"] = True
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _watch(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        vni = request.get("filters", {}).get("vni")
        events = self.daemon.events.follow()  # subscribed first: the answer means watching
        writer.write(b'{"ok": true, "result": "watching"}\n')
        await writer.drain()
        async for event in events:
            if vni is not None and event.get("vni") not in (None, int(vni)):
                continue
            writer.write(json.dumps(event).encode() + b"\n")
            await writer.drain()

    def handle(self, request: dict[str, Any]) -> Any:
        command = request.get("command")
        filters = request.get("filters") or {}
        if command == "show peers":
            return peer_view(self.daemon)
        if command == "show routes":
            return routes_view(self.daemon, filters)
        if command == "show vni":
            return vni_view(self.daemon)
        if command == "show mac":
            return mac_view(self.daemon, filters)
        if command == "show neigh":
            return neigh_view(self.daemon, filters)
        if command == "show l3vni":
            return l3vni_view(self.daemon)
        if command == "show kernel":
            return kernel_view(self.daemon)
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
        if command == "clear peer":
            address = str(request.get("address") or "")
            driver = self.daemon.drivers.get(address)
            if driver is None:
                raise ValueError(f"no peer {address!r}")
            soft = bool(request.get("soft"))
            log.info("clear peer", peer=address, soft=soft)
            return driver.clear(soft)
        if command == "clear mac":
            dataplane = self.daemon.dataplane
            if dataplane is None:
                raise ValueError("kernel programming is off: no duplicate detection")
            vni = int(request.get("vni") or 0)
            mac = mac_from_text(str(request.get("mac") or ""))
            if not dataplane.unfreeze(vni, mac):
                raise ValueError(f"{mac_to_text(mac)} in VNI {vni} is not frozen")
            return {"vni": vni, "mac": mac_to_text(mac), "action": "cleared"}
        if command == "reload":
            if self.reload is None:
                raise ValueError("reload: this evpnd runs without a configuration file")
            return self.reload()
        raise ValueError(f"unknown command {command!r}")
