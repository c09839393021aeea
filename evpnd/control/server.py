"""The control socket: a UNIX stream socket, one JSON request per line, one JSON answer per
line. `{"command": "show peers"}` -> `{"ok": true, "result": [...]}`. `watch` answers once and
then streams one event per line until the client goes.

Who may connect is the file's business (0660, group `control_group`); who may change things
(`clear`, `reload`) is checked per request from the caller's credentials (SO_PEERCRED).

Nobody can lock root out: a client that sends no whole request for `IDLE_TIMEOUT` seconds, or
does not read its answer for as long, is closed, and the last of the `MAX_CLIENTS` slots is kept
for a caller whose credentials say uid 0 (`admission`). A `watch` client is never idle (it waits
for us); one that stops reading costs its slot and the socket's buffer, nothing more (the
stream is a shared ring, watch.py). Refusals and closes are counted by reason (the metrics).

Answers are written in pieces of `CHUNK` characters, the loop given back between them
(pacing.py): a whole table in JSON is hundreds of megabytes at a million routes."""

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

from evpnd.control.pacing import Pacer, batches, json_pieces, paced_release
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
#: of those, kept for root: an operator can always reach the daemon
ROOT_SLOTS = 1
#: seconds a client may take to send a whole request, or to read a piece of its answer
IDLE_TIMEOUT = 30.0
#: characters of an answer written between two looks at the loop
CHUNK = 1 << 16

#: why a client was refused (the metric's `reason`)
FULL = "full"
KEPT_FOR_ROOT = "kept for root"
#: why a client was closed
IDLE = "idle"
NOT_READING = "not reading"


class Refused(Exception):
    pass


class _Gone(Exception):
    """The client stopped reading its answer: it is closed."""


def admission(open_clients: int, uid: int | None, limit: int = MAX_CLIENTS) -> str | None:
    """Whether one more client may come in, `open_clients` being open: None, or the reason it
    is refused. The last `ROOT_SLOTS` slots are root's alone (uid None: credentials unknown,
    not root)."""
    if open_clients >= limit:
        return FULL
    if open_clients >= limit - ROOT_SLOTS and uid != 0:
        return KEPT_FOR_ROOT
    return None


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
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.path = path
        self.handle = handle
        self.follow = follow
        self.group = group
        self.write_group = write_group
        self.idle_timeout = idle_timeout
        self._server: asyncio.AbstractServer | None = None
        self.clients = 0
        #: clients refused, by reason (FULL, KEPT_FOR_ROOT), and closed, by reason (IDLE,
        #: NOT_READING)
        self.refused: dict[str, int] = {FULL: 0, KEPT_FOR_ROOT: 0}
        self.closed: dict[str, int] = {IDLE: 0, NOT_READING: 0}
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

    @property
    def clients_refused(self) -> int:
        return sum(self.refused.values())

    def credentials(self, writer: asyncio.StreamWriter) -> tuple[int, int] | None:
        """The caller's uid and gid (SO_PEERCRED), or None when the socket cannot say."""
        sock = writer.get_extra_info("socket")
        if sock is None:
            return None
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, gid = struct.unpack("3i", creds)
        return uid, gid

    def _may_write(self, writer: asyncio.StreamWriter) -> bool:
        creds = self.credentials(writer)
        if creds is None:
            return False
        uid, gid = creds
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
        creds = self.credentials(writer)
        refusal = admission(self.clients, creds[0] if creds else None)
        if refusal is not None:
            # said once a minute: a stuck tool opening sockets in a loop must not take every
            # descriptor the daemon has
            self.refused[refusal] += 1
            held = self._refusals.allow(refusal, asyncio.get_running_loop().time())
            if held is not None:
                log.warning(
                    "control client refused",
                    reason=refusal,
                    open=self.clients,
                    uid=creds[0] if creds else None,
                    since_last=held or None,
                )
            error = "too many control clients"
            if refusal == KEPT_FOR_ROOT:
                error += " (the last is kept for root)"
            writer.write(json.dumps({"ok": False, "error": error}).encode() + b"\n")
            writer.close()
            return
        self.clients += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), self.idle_timeout)
                except ValueError:  # asyncio's LimitOverrunError: no newline within the limit
                    answer = {"ok": False, "error": f"request longer than {LINE_LIMIT} bytes"}
                    await self._send(writer, answer)
                    return
                except TimeoutError:
                    # a client that sends nothing holds a slot others need
                    self.closed[IDLE] += 1
                    error = f"no request for {self.idle_timeout:g} s: closed"
                    writer.write(json.dumps({"ok": False, "error": error}).encode() + b"\n")
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
                except (ConnectionError, _Gone):
                    raise  # the client went (a killed `watch`): no failure of the request
                except Exception as exc:  # a bug behind one command: said, and the rest runs
                    log.exception("control request failed", command=str(request.get("command")))
                    answer = {"ok": False, "error": f"internal error: {exc!s} (see the log)"}
                await self._send(writer, answer)
        except (ConnectionError, asyncio.IncompleteReadError, _Gone):
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

    async def _send(self, writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
        """One answer, one line, written `CHUNK` characters at a time: each piece is drained
        (a client that reads nothing for `idle_timeout` is closed) and the loop given back
        whenever a turn's time is used — a million routes are 450 MB of JSON, seconds to
        encode, and in one piece they held the loop as long."""
        pacer = Pacer()
        for chunk in batches(json_pieces(answer), CHUNK):
            _write(writer, chunk.encode())
            await self._drain(writer)
            await pacer.tick()
        _write(writer, b"\n")
        await self._drain(writer)
        await paced_release(answer, pacer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(writer.drain(), self.idle_timeout)
        except TimeoutError:
            self.closed[NOT_READING] += 1
            raise _Gone from None

    async def _watch(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        vni = request["filters"].get("vni")
        events = self.follow()  # subscribed first: the answer means watching
        writer.write(b'{"ok": true, "result": "watching"}\n')
        await writer.drain()
        sent = 0
        async for event in events:
            if vni is not None and event.get("vni") not in (None, int(vni)):
                continue
            _write(writer, json.dumps(event).encode() + b"\n")
            await writer.drain()
            sent += 1
            if sent % 64 == 0:
                # neither drain() nor a queue with items in it yields: without this, one
                # watcher would write its whole backlog in one turn of the loop
                await asyncio.sleep(0)


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """A write to a client that may have gone: uvloop's transports raise RuntimeError (not
    ConnectionError, and asyncio's drop the bytes) on a write once the peer has closed — a
    killed `evpnctl watch` is no failure of the request, and nothing more can be said to it."""
    if writer.is_closing():
        raise _Gone
    writer.write(data)
