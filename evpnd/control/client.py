"""The control socket's client side: one request and its answer, or a stream of events."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any

DEFAULT_SOCKET = "/run/evpnd/evpnd.sock"


class ControlError(Exception):
    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class Refused(ControlError):
    """The daemon answered, and said no: this caller may not do that."""


def _connect_problem(path: str, exc: OSError) -> str:
    if os.path.exists(path) and not stat.S_ISSOCK(os.stat(path).st_mode):
        return f"{path} is not a socket: give evpnd's control socket (-s, control_socket)"
    if isinstance(exc, FileNotFoundError):
        return f"no evpnd control socket at {path}: is evpnd running?"
    if isinstance(exc, PermissionError):
        return f"no permission to use {path} (root, or the control_group of evpnd.yaml)"
    if isinstance(exc, ConnectionRefusedError):
        return f"{path}: nobody listens: evpnd is not running"
    return f"{path}: {exc.strerror or exc}"


def request(path: str, command: str, **extra: Any) -> Any:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(path)
            sock.sendall(json.dumps({"command": command, **extra}).encode() + b"\n")
            # pieces kept and joined once: `data += chunk` copied the answer so far at every
            # piece, quadratic in its length (a million routes are 450 MB of JSON)
            chunks: list[bytes] = []
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    break
            data = b"".join(chunks)
    except OSError as exc:
        raise ControlError(_connect_problem(path, exc), unreachable=True) from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlError("evpnd closed the connection without an answer") from None
    if not answer.get("ok"):
        error = answer.get("error", "evpnd refused the request")
        raise Refused(error) if answer.get("refused") else ControlError(error)
    return answer["result"]


def watch(
    path: str, filters: dict[str, Any], as_json: bool, show: Callable[[dict[str, Any]], str]
) -> int:
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError as exc:
        raise ControlError(_connect_problem(path, exc), unreachable=True) from None
    with sock, sock.makefile("rb") as stream:
        sock.sendall(json.dumps({"command": "watch", "filters": filters}).encode() + b"\n")
        first = json.loads(stream.readline() or b"{}")
        if not first.get("ok"):
            raise ControlError(first.get("error", "evpnd refused to stream events"))
        # on stderr, so that standard output holds events only; from here on none is missed
        print(f"evpnctl: watching {path}", file=sys.stderr, flush=True)
        for line in stream:
            event = json.loads(line)
            print(json.dumps(event) if as_json else show(event), flush=True)
    print("evpnctl: evpnd closed the stream", file=sys.stderr)
    return 1
