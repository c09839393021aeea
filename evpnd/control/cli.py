"""evpnctl: inspect and steer a running evpnd."""

from __future__ import annotations

import argparse
import sys

from evpnd import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="evpnctl",
        description="Inspect and steer a running evpnd over its control socket.",
    )
    parser.add_argument("--version", action="version", version=f"evpnctl {__version__}")
    parser.add_argument("-s", "--socket", default="/run/evpnd/evpnd.sock")
    parser.add_argument("command", nargs="*", help="show peers|routes|vni|mac, clear, reload")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    print(
        "evpnctl: the control socket arrives with the BGP speaker (issue #3); "
        f"nothing to ask at {args.socket} yet",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
