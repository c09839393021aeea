"""A hand-driven BGP speaker for tests: connects, does the OPEN exchange, sends the UPDATE bytes
it is given, and reports what the other side sent back. Run inside a namespace:

    ip netns exec NS python -m tests.raw_client HOST PORT AS ROUTER_ID HEX [HEX...]

Prints one JSON object: the messages received (type, code, subcode) after each UPDATE."""

from __future__ import annotations

import json
import socket
import sys
import time

from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Keepalive, Notification, Open, decode_message
from evpnd.bgp.negotiation import LocalSettings
from evpnd.wire.errors import DecodeError


def main() -> int:
    host, port, asn, router_id, *updates = sys.argv[1:]
    sock = socket.create_connection((host, int(port)), timeout=10)
    reader = MessageReader(65535)
    local = LocalSettings(int(asn), router_id, hold_time=30, graceful_restart_time=0)
    sock.sendall(local.open_message().encode())

    def receive(seconds: float) -> list[object]:
        got: list[object] = []
        sock.settimeout(0.2)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                got.append("closed")
                break
            if not data:
                got.append("closed")
                break
            reader.feed(data)
            for raw in reader.messages():
                assert not isinstance(raw, DecodeError)
                got.append(decode_message(raw))
        return got

    handshake = receive(2)
    if not any(isinstance(m, Open) for m in handshake):
        print(json.dumps({"error": "no OPEN", "got": [str(m) for m in handshake]}))
        return 1
    sock.sendall(Keepalive().encode())
    receive(1)
    report = []
    for hex_update in updates:
        try:
            sock.sendall(bytes.fromhex(hex_update))
        except OSError:
            report.append(["closed"])
            continue
        answer = receive(1.5)
        report.append(
            [
                {"notification": [m.code, m.subcode]}
                if isinstance(m, Notification)
                else str(type(m).__name__ if not isinstance(m, str) else m)
                for m in answer
            ]
        )
    print(json.dumps({"report": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
