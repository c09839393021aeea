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
import inspect
import json
import os
import pwd
import socket
import stat
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog

from evpnd.ratelimit import Throttle

log = structlog.get_logger("evpnd.control")

WRITE_COMMANDS = frozenset({"clear peer", "clear mac", "reload", "debug"})

#: answers one request (a JSON object) with a JSON-able result (or an awaitable of one), or
#: raises ValueError, KeyError or TypeError with a message for the client
Handler = Callable[[dict[str, Any]], Any]


#: the longest request line (a request is a few hundred bytes)
LINE_LIMIT = 1 << 20
#: control clients at once; more are refused with a reason
MAX_CLIENTS = 64


class Refused(Exception):
    pass


def _request(line: bytes) -> dict[str, Any]:
    """One request line, checked: a JSON object with a string command and an object of
    filters (ValueError or TypeError, with the reason, otherwise)."""
    try:
        request = json.loads(line)
    except RecursionError:
        raise ValueError("a request nested too deeply") from None
    if not isinstance(request, dict):
        raise TypeError("a request is a JSON object")
    if not isinstance(request.get("command"), str):
        raise TypeError("command: expected a string")
    filters = request.setdefault("filters", {})
    if filters is None:
        request["filters"] = {}
    elif not isinstance(filters, dict):
        raise TypeError("filters: expected an object")
    return request


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
        self.clients = 0
        self.clients_refused = 0
        self._refusals = Throttle(60.0)
        #: the clients' tasks, ended by stop() (a `watch` waits for events for ever)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                # a mistyped control_socket must not cost someone a file
                raise OSError(errno.EEXIST, f"control_socket {self.path} exists and is no socket")
            os.unlink(self.path)  # a socket left by a daemon that died
        self._server = await asyncio.start_unix_server(
            self._serve, path=self.path, limit=LINE_LIMIT
        )
        if self.group is not None:
            os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        # each ends quietly (see _serve): a watcher reads the end of its stream
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
        if self.clients >= MAX_CLIENTS:
            # said once a minute: a stuck tool opening sockets in a loop must not take every
            # descriptor the daemon has
            self.clients_refused += 1
            held = self._refusals.allow("clients", asyncio.get_running_loop().time())
            if held is not None:
                log.warning("control client refused", open=self.clients, since_last=held or None)
            writer.write(b'{"ok": false, "error": "too many control clients"}\n')
            writer.close()
            return
        self.clients += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # asyncio's LimitOverrunError: no newline within the limit
                    answer = {"ok": False, "error": f"request longer than {LINE_LIMIT} bytes"}
                    writer.write(json.dumps(answer).encode() + b"\n")
                    await writer.drain()
                    return
                if not line:
                    return
                request: dict[str, Any] = {}
                try:
                    request = _request(line)
                    command = request.get("command")
                    if command in WRITE_COMMANDS and not self._may_write(writer):
                        raise Refused(
                            f"{command}: not allowed (root, or a member of the control_write_group)"
                        )
                    if command == "watch":
                        await self._watch(request, writer)
                        return
                    result = self.handle(request)
                    if inspect.isawaitable(result):
                        result = await result
                    answer = {"ok": True, "result": result}
                except (ValueError, KeyError, TypeError, Refused) as exc:
                    answer = {"ok": False, "error": str(exc)}
                    if isinstance(exc, Refused):
                        answer["refused"] = True
                except Exception as exc:  # a bug behind one command: said, and the rest runs
                    log.exception("control request failed", command=str(request.get("command")))
                    answer = {"ok": False, "error": f"internal error: {exc!s} (see the log)"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # evpnd stops: the client sees its stream end, and no traceback is logged for a
            # connection handler that was cancelled (asyncio's streams log one)
        finally:
            self.clients -= 1
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _watch(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        vni = request["filters"].get("vni")
        events = self.follow()  # subscribed first: the answer means watching
        writer.write(b'{"ok": true, "result": "watching"}\n')
        await writer.drain()
        sent = 0
        async for event in events:
            if vni is not None and event.get("vni") not in (None, int(vni)):
                continue
            writer.write(json.dumps(event).encode() + b"\n")
            await writer.drain()
            sent += 1
            if sent % 64 == 0:
                # neither drain() nor a queue with items in it yields: without this, one
                # watcher would write its whole backlog in one turn of the loop
                await asyncio.sleep(0)
