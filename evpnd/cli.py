"""The evpnd command: the daemon, and `evpnd decode` for looking at BGP bytes by hand."""

from __future__ import annotations

import argparse
import sys

from evpnd import __version__


def _decode(hex_text: str) -> int:
    from evpnd.bgp.errors import DecodeError
    from evpnd.bgp.framing import MessageReader
    from evpnd.bgp.messages import decode_message
    from evpnd.bgp.update import Update

    try:
        data = bytes.fromhex("".join(hex_text.split()))
    except ValueError as exc:
        print(f"evpnd decode: not hex: {exc}", file=sys.stderr)
        return 2
    reader = MessageReader(max_message_len=65535)
    reader.feed(data)
    status = 0
    for raw in reader.messages():
        if isinstance(raw, DecodeError):
            print(f"stream error: {raw}")
            return 1
        message = decode_message(raw)
        if isinstance(message, DecodeError):
            print(f"error: {message}")
            status = 1
            continue
        print(type(message).__name__, message if not isinstance(message, Update) else "")
        if isinstance(message, Update):
            for route in message.announced:
                print(f"  + {route.rd} {route.text}")
            for route in message.withdrawn:
                print(f"  - {route.rd} {route.text}")
            print(f"  attributes: {message.attributes}")
            for error in message.errors:
                print(f"  {error}")
    if reader.buffered:
        print(f"{reader.buffered} bytes left over: a message cut short")
        status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evpnd", description="BGP EVPN speaker for Linux VTEPs")
    parser.add_argument("--version", action="version", version=f"evpnd {__version__}")
    parser.add_argument("--config", help="YAML configuration file")
    parser.add_argument("--check", action="store_true", help="validate the configuration, exit")
    sub = parser.add_subparsers(dest="command")
    decode = sub.add_parser("decode", help="decode BGP messages given as hex")
    decode.add_argument("hex", nargs="?", help="hex bytes (default: read standard input)")
    args = parser.parse_args(argv)
    if args.command == "decode":
        return _decode(args.hex if args.hex is not None else sys.stdin.read())
    print(
        f"evpnd {__version__}: the BGP wire codec is in place; the speaker (sessions, RIB) "
        "arrives with issue #3, so there is no daemon to start yet.\n"
        "Try: evpnd decode ffffffffffffffffffffffffffffffff001304",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
