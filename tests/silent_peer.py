"""A BGP peer that does the OPEN exchange and then reads nothing, with a small receive buffer,
until told to (a line on standard input); then it reads to the end and prints the NOTIFICATION
it was sent as JSON. Run inside a namespace:

    ip netns exec NS python -m tests.silent_peer HOST PORT SOURCE AS"""

from __future__ import annotations

import json
import socket
import sys

from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Keepalive, Notification, decode_message
from evpnd.bgp.negotiation import LocalSettings


def main() -> int:
    host, port, source, asn = sys.argv[1:]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((source, 0))
    sock.settimeout(30)
    sock.connect((host, int(port)))
    # no hold timer: it never has to send a KEEPALIVE while it does not read
    local = LocalSettings(int(asn), source, hold_time=0, graceful_restart_time=0)
    sock.sendall(local.open_message().encode() + Keepalive().encode())
    reader = MessageReader(65535)
    seen: set[str] = set()
    while not {"Open", "Keepalive"} <= seen:
        data = sock.recv(4096)
        if not data:
            print(json.dumps({"error": "closed during the OPEN exchange"}), flush=True)
            return 1
        reader.feed(data)
        seen |= {type(decode_message(raw)).__name__ for raw in reader.messages()}
    print(json.dumps({"established": True}), flush=True)
    sys.stdin.readline()  # not a byte read until the test says so
    reader = MessageReader(65535)
    last: dict[str, object] = {}
    while True:
        try:
            data = sock.recv(1 << 20)
        except OSError:  # reset: what was read before still counts
            break
        if not data:
            break
        reader.feed(data)
        for raw in reader.messages():
            message = decode_message(raw)
            if isinstance(message, Notification):
                last = {"code": message.code, "subcode": message.subcode}
    print(json.dumps({"notification": last}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
