"""evpnctl: ask a running evpnd over its control socket."""

from __future__ import annotations

import argparse
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from typing import Any

from evpnd import __version__

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
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
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


def printable(text: object) -> str:
    """What a peer sent (its hostname, a shutdown message) as it may reach a terminal: control
    characters, escape sequences among them, shown as `\\xNN` instead of being obeyed."""
    return "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
        for c in str(text)
    )


def table(rows: list[list[str]], headers: list[str]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
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


def show_mac_table(macs: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(m["vni"]),
            m["mac"],
            m["type"],
            m["vtep"] or "",
            str(m["seq"]),
            ",".join(f for f in ("sticky", "frozen") if m[f]),
        ]
        for m in macs
    ]
    return table(rows, ["VNI", "MAC", "Type", "VTEP", "Seq", "Flags"])


def show_vni_table(vnis: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(v["vni"]),
            v["vxlan"] or "",
            v["bridge"] or "",
            v["vtep"],
            v["rd"],
            " ".join(v["export_rts"]),
            str(len(v["remote_vteps"])),
            str(v["local_macs"]),
            f"{v.get('mtu') or ''}/{v.get('inner_mtu') or '-'}",
            "; ".join([*v["problems"], *filter(None, [v.get("mtu_problem")])]),
        ]
        for v in vnis
    ]
    headers = ["VNI", "VxLAN", "Bridge", "VTEP", "RD", "Export RTs", "Remote VTEPs", "Local MACs"]
    return table(rows, [*headers, "MTU/path", "Problems"])


def show_l3vni_table(l3vnis: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(v["vni"]),
            v["vrf"],
            v["state"],
            v["bridge"] or "",
            v["router_mac"] or "",
            str(v["table"] or ""),
            v["rd"] or "",
            " ".join(v["export_rts"]),
            ",".join(str(n) for n in v["l2vnis"]),
            str(len(v["advertised"])),
            str(v["routes_installed"]),
        ]
        for v in l3vnis
    ]
    headers = ["L3VNI", "VRF", "State", "Bridge", "Router MAC", "Table", "RD", "Export RTs"]
    return table(rows, [*headers, "L2VNIs", "Advertised", "Installed"])


def show_neigh_table(neighs: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(n["vni"]),
            n["ip"],
            n["mac"],
            n["type"],
            n["vtep"] or "",
            str(n["seq"]),
            "sticky" if n["sticky"] else "",
        ]
        for n in neighs
    ]
    return table(rows, ["VNI", "IP", "MAC", "Type", "VTEP", "Seq", "Flags"])


def show_kernel_table(result: dict[str, Any]) -> str:
    if not result["programming"]:
        return "kernel programming is off (evpn.program_kernel: false, or netlink failed)"
    wanted, kernel = result["wanted"], result["kernel"]
    head = (
        f"wanted: {wanted['fdb']} FDB, {wanted['flood']} flood, {wanted['neigh']} neighbour"
        f" entries, {wanted['routes']} routes; kernel: {kernel['fdb']} FDB, {kernel['flood']}"
        f" flood, {kernel['neigh']} neighbour entries, {kernel['routes']} routes"
    )
    if not result["settled"]:
        head += "\n(peers have not all sent End-of-RIB: extra entries are kept until they do)"
    if result["in_sync"]:
        return head + "\nin sync"
    rows = [
        [
            d["kind"],
            str(d["vni"] or ""),
            d["device"] or "",
            d["entry"],
            d["wanted"] or "(none)",
            d["kernel"] or "(none)",
        ]
        for d in result["differences"]
    ]
    body = table(rows, ["Kind", "VNI", "Device", "Entry", "evpnd wants", "kernel has"])
    out = f"{head}\n{body}\n\n{len(rows)} differences"
    wish = result.get("wish_differences") or []
    if wish:
        # evpnd's own bookkeeping disagrees with the best paths: a bug to report
        out += "\nwish out of step with the best paths (please report):\n  " + "\n  ".join(wish)
    return out


def show_summary(result: dict[str, Any]) -> str:
    lines = [
        f"AS {result['asn']}, router id {result['router_id']}",
        f"{result['routes']} routes, {result['peers']} peers, {len(result['vnis'])} VNIs",
    ]
    return "\n".join(lines)


def format_event(event: dict[str, Any]) -> str:
    """One line per event, for people: time, what, then the fields."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", 0)))
    rest = {k: v for k, v in event.items() if k not in ("time", "event", "action")}
    words = [stamp, event.get("event", "?")]
    if "action" in event:
        words.append(str(event["action"]))
    words += [f"{k}={v}" for k, v in rest.items() if v is not None and v != []]
    return " ".join(words)


def watch(path: str, filters: dict[str, Any], as_json: bool) -> int:
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
            print(json.dumps(event) if as_json else format_event(event), flush=True)
    print("evpnctl: evpnd closed the stream", file=sys.stderr)
    return 1


EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2, 3, 4


def show_findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "no problem found"
    lines = []
    for n, f in enumerate(findings, 1):
        lines.append(f"{n}. [{f['check']}] {printable(f['what'])}")
        for key, value in f["evidence"].items():
            if value not in (None, [], {}):
                lines.append(f"     {key}: {printable(json.dumps(value))}")
        lines.append(f"     fix: {printable(f['fix'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader left (`evpnctl show routes | head`): not a failure of ours, and no
        # traceback; standard output goes nowhere from now on, so its flush at exit is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="evpnctl",
        description="Ask a running evpnd.",
        epilog="exit codes: 0 done; 1 done, but reports a problem (a refused reload, the"
        " kernel out of sync); 2 usage; 3 evpnd not reachable; 4 not allowed",
    )
    parser.add_argument("--version", action="version", version=f"evpnctl {__version__}")
    parser.add_argument("-s", "--socket", default=DEFAULT_SOCKET, help="control socket path")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="JSON for scripts")
    sub = parser.add_subparsers(dest="command")
    show = sub.add_parser("show", parents=[common], help="show state")
    show.add_argument(
        "what",
        choices=["peers", "routes", "vni", "l3vni", "mac", "neigh", "kernel", "summary"],
    )
    show.add_argument("--type", type=int, choices=[1, 2, 3, 4, 5], help="routes of this type")
    show.add_argument("--vni", type=int)
    show.add_argument("--mac")
    show.add_argument("--rd")
    clear = sub.add_parser(
        "clear", parents=[common], help="reset a session, or unfreeze a duplicate MAC"
    )
    clear.add_argument("what", choices=["peer", "mac"])
    clear.add_argument("address", help="the peer's address, or the MAC")
    clear.add_argument("--soft", action="store_true", help="refresh routes, keep the session")
    clear.add_argument("--vni", type=int, help="the MAC's VNI (clear mac)")
    sub.add_parser("reload", parents=[common], help="re-read the configuration file")
    doctor = sub.add_parser(
        "doctor", parents=[common], help="name what keeps the fabric from working, with fixes"
    )
    doctor.add_argument("--vni", type=int, help="only this VNI (and the sessions)")
    watching = sub.add_parser("watch", parents=[common], help="stream route and MAC events")
    watching.add_argument("--vni", type=int)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "watch":
            filters = {"vni": args.vni} if args.vni is not None else {}
            try:
                return watch(args.socket, filters, args.json)
            except KeyboardInterrupt:
                return EXIT_OK
        if args.command == "show":
            filters = {
                k: getattr(args, k)
                for k in ("type", "vni", "mac", "rd")
                if getattr(args, k, None) is not None
            }
            result = request(args.socket, f"show {args.what}", filters=filters)
        elif args.command == "doctor":
            filters = {"vni": args.vni} if args.vni is not None else {}
            result = request(args.socket, "doctor", filters=filters)
        elif args.command == "clear" and args.what == "mac":
            if args.vni is None:
                parser.error("clear mac: --vni is needed")
            result = request(args.socket, "clear mac", vni=args.vni, mac=args.address)
        elif args.command == "clear":
            result = request(args.socket, "clear peer", address=args.address, soft=args.soft)
        else:
            result = request(args.socket, "reload")
    except Refused as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ControlError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.unreachable else EXIT_PROBLEM
    status = EXIT_OK
    if args.command == "reload" and not result["reloaded"]:
        status = EXIT_PROBLEM
    if args.command == "show" and args.what == "kernel" and not result["in_sync"]:
        status = EXIT_PROBLEM
    if args.command == "doctor" and result["findings"]:
        status = EXIT_PROBLEM
    if args.json:
        print(json.dumps(result, indent=2))
        return status
    if args.command == "reload":
        print(
            "reloaded" if result["reloaded"] else "reload refused; the running configuration stays:"
        )
        for problem in result["problems"]:
            print(f"  {problem}")
    elif args.command == "doctor":
        print(show_findings(result["findings"]))
    elif args.command == "clear" and args.what == "mac":
        print(f"{result['mac']} in VNI {result['vni']}: unfrozen; announced again if it is here")
    elif args.command == "clear":
        print(
            {
                "reset": f"{result['peer']}: session reset; it reconnects by itself",
                "soft": f"{result['peer']}: sent {result.get('routes_sent')} routes again"
                + (", asked for the peer's" if result.get("refresh_requested") else ""),
                "none": f"{result['peer']}: not Established ({result.get('state')}); nothing to do",
            }[result["action"]]
        )
    else:
        printers: dict[str, Callable[[Any], str]] = {
            "peers": show_peers,
            "routes": show_routes,
            "vni": show_vni_table,
            "l3vni": show_l3vni_table,
            "mac": show_mac_table,
            "neigh": show_neigh_table,
            "kernel": show_kernel_table,
            "summary": show_summary,
        }
        print(printers[args.what](result))
    return status


if __name__ == "__main__":
    sys.exit(main())
