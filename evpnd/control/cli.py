"""evpnctl: ask a running evpnd over its control socket."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

from evpnd import __version__

DEFAULT_SOCKET = "/run/evpnd/evpnd.sock"


class ControlError(Exception):
    pass


def request(path: str, command: str, **extra: Any) -> Any:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(path)
            sock.sendall(json.dumps({"command": command, **extra}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
    except FileNotFoundError:
        raise ControlError(f"no evpnd control socket at {path}: is evpnd running?") from None
    except PermissionError:
        raise ControlError(f"no permission to use {path} (root or the evpnd group)") from None
    except ConnectionRefusedError:
        raise ControlError(f"{path}: nobody listens: evpnd is not running") from None
    except OSError as exc:
        raise ControlError(f"{path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlError("evpnd closed the connection without an answer") from None
    if not answer.get("ok"):
        raise ControlError(answer.get("error", "evpnd refused the request"))
    return answer["result"]


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def show_peers(peers: list[dict[str, Any]]) -> str:
    rows = [
        [
            p["address"],
            str(p["remote_as"] or "*"),
            p["state"],
            _uptime(p["uptime_s"]),
            str(p["routes_received"]),
            str(p["routes_sent"]),
            p["hostname"] or "",
            p["last_error"] or "",
        ]
        for p in peers
    ]
    return table(
        rows, ["Neighbor", "AS", "State", "Up/Down", "PfxRcd", "PfxSnt", "Hostname", "Last error"]
    )


def show_routes(routes: list[dict[str, Any]]) -> str:
    rows = []
    for r in routes:
        flags = (">" if r["best"] else " ") + ("S" if r["stale"] else "")
        extra = []
        if r["seq"] is not None:
            extra.append(f"MM:{r['seq']}" + (",sticky" if r["sticky"] else ""))
        rows.append(
            [
                flags,
                r["rd"],
                r["text"],
                r["nexthop"] or "",
                str(r["vni"] or ""),
                " ".join(f"RT:{rt}" for rt in r["rts"]),
                r["source"],
                " ".join(extra),
            ]
        )
    out = table(rows, ["", "RD", "Route", "Next hop", "VNI", "Route targets", "From", ""])
    return out + f"\n\n{len(routes)} paths; > best, S stale"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evpnctl", description="Ask a running evpnd.")
    parser.add_argument("--version", action="version", version=f"evpnctl {__version__}")
    parser.add_argument("-s", "--socket", default=DEFAULT_SOCKET, help="control socket path")
    sub = parser.add_subparsers(dest="command")
    show = sub.add_parser("show", help="show peers, routes or summary")
    show.add_argument("what", choices=["peers", "routes", "vni", "mac", "summary"])
    show.add_argument("--json", action="store_true", help="JSON for scripts")
    show.add_argument("--type", type=int, choices=[1, 2, 3, 4, 5])
    show.add_argument("--vni", type=int)
    show.add_argument("--mac")
    show.add_argument("--rd")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    filters = {
        k: getattr(args, k)
        for k in ("type", "vni", "mac", "rd")
        if getattr(args, k, None) is not None
    }
    try:
        result = request(args.socket, f"show {args.what}", filters=filters)
    except ControlError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.what == "peers":
        print(show_peers(result))
    elif args.what == "routes":
        print(show_routes(result))
    elif args.what == "vni":
        print(
            table(
                [
                    [
                        str(v["vni"]),
                        v["vxlan"] or "",
                        v["bridge"] or "",
                        v["vtep"],
                        v["rd"],
                        " ".join(v["export_rts"]),
                        str(len(v["remote_vteps"])),
                        str(v["local_macs"]),
                        "; ".join(v["problems"]),
                    ]
                    for v in result
                ],
                [
                    "VNI",
                    "VxLAN",
                    "Bridge",
                    "VTEP",
                    "RD",
                    "Export RTs",
                    "Remote VTEPs",
                    "Local MACs",
                    "Problems",
                ],
            )
        )
    elif args.what == "mac":
        print(
            table(
                [
                    [
                        str(m["vni"]),
                        m["mac"],
                        m["type"],
                        m["vtep"] or "",
                        str(m["seq"]),
                        ",".join(f for f in ("sticky", "frozen") if m[f]),
                    ]
                    for m in result
                ],
                ["VNI", "MAC", "Type", "VTEP", "Seq", "Flags"],
            )
        )
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
