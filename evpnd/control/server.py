"""The control socket: a UNIX stream socket, one JSON request per line, one JSON answer per
line. `{"command": "show peers"}` -> `{"ok": true, "result": [...]}`. `watch` answers once and
then streams one event per line until the client goes.

Who may connect is the file's business (0660, group `control_group`); who may change things
(`clear`, `reload`) is checked per request from the caller's credentials (SO_PEERCRED)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import json
import os
import pwd
import socket
import stat
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

WRITE_COMMANDS = frozenset({"clear peer", "clear mac", "reload"})

#: answers one request (a JSON object) with a JSON-able result, or raises ValueError, KeyError
#: or TypeError with a message for the client
Handler = Callable[[dict[str, Any]], Any]


class Refused(Exception):
    pass


def caller_groups(uid: int, gid: int) -> set[int]:
    try:
        user = pwd.getpwuid(uid)
    except KeyError:
        return {gid}
    return set(os.getgrouplist(user.pw_name, gid)) | {gid}


class ControlServer:
    """The socket and who may use it; what a request means is `handle`'s business (the daemon
    supplies it), and `follow` gives the events a `watch` client streams."""

    def __init__(
        self,
        path: str,
        handle: Handler,
        follow: Callable[[], AsyncIterator[dict[str, Any]]],
        group: str | None = None,
        write_group: str | None = None,
    ) -> None:
        self.path = path
        self.handle = handle
        self.follow = follow
        self.group = group
        self.write_group = write_group
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                # a mistyped control_socket must not cost someone a file
                raise OSError(errno.EEXIST, f"control_socket {self.path} exists and is no socket")
            os.unlink(self.path)  # a socket left by a daemon that died
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=1 << 20)
        if self.group is not None:
            os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
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
        if self.write_group is None:
            return False
        try:
            wanted = grp.getgrnam(self.write_group).gr_gid
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
        events = self.follow()  # subscribed first: the answer means watching
        writer.write(b'{"ok": true, "result": "watching"}\n')
        await writer.drain()
        async for event in events:
            if vni is not None and event.get("vni") not in (None, int(vni)):
                continue
            writer.write(json.dumps(event).encode() + b"\n")
            await writer.drain()
