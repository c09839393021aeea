"""evpnctl: ask a running evpnd over its control socket. The commands are grammar.py's table;
what is printed is tables.py's; the socket's client side is client.py's."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from evpnd import __version__
from evpnd.control import frr, tables
from evpnd.control.client import DEFAULT_SOCKET, ControlError, Refused, request, watch
from evpnd.control.grammar import Command, Parsed, UsageError, complete, help_text, parse

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2, 3, 4

# (the names other modules and tests use)
__all__ = ["ControlError", "main", "request"]


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # the reader left (`evpnctl show routes | head`): not a failure of ours, and no
        # traceback; standard output goes nowhere from now on, so its flush at exit is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK


def _main(argv: list[str]) -> int:
    if argv[:1] == ["__complete"]:
        # bash completion (contrib/bash-completion/evpnctl): the words before, then the one
        # being typed
        words = argv[1:]
        before, current = (words[:-1], words[-1]) if words else ([], "")
        print("\n".join(complete(before, current)))
        return EXIT_OK
    try:
        parsed = parse(argv)
    except UsageError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if parsed.version:
        print(f"evpnctl {__version__}")
        return EXIT_OK
    if parsed.help:
        print(help_text(parsed.words, parsed.command))
        return EXIT_OK
    command = parsed.command
    if command is None:
        print(help_text(parsed.words, None), file=sys.stderr)
        return EXIT_USAGE
    path = parsed.socket or DEFAULT_SOCKET
    try:
        if command.words == ("watch",):
            filters = {"vni": parsed.values["vni"]} if "vni" in parsed.values else {}
            return watch(path, filters, parsed.json, tables.format_event)
        result = _ask(path, command, parsed)
        if parsed.json and command.frr and command.frr_json:
            result = _frr_json(path, command.words, parsed.values, result)
    except UsageError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Refused as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ControlError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.unreachable else EXIT_PROBLEM
    status = _status(command, result)
    if parsed.json:
        print(json.dumps(result, indent=2))
    else:
        print(_text(path, command, parsed, result))
    return status


def _ask(path: str, command: Command, parsed: Parsed) -> Any:
    values = parsed.values
    if command.request in ("clear peer",):
        return request(path, "clear peer", address=values["address"], soft=bool(values.get("soft")))
    if command.request == "clear mac":
        return request(path, "clear mac", vni=values["vni"], mac=values["mac"])
    if command.request == "debug":
        scope = command.words[1]
        target = values.get("address", values.get("vni"))
        return request(path, "debug", scope=scope, target=str(target), on=values["state"])
    filters = {k: v for k, v in values.items() if v is not None}
    words = command.words
    if words == ("show", "peers") and "address" in values:
        # one peer in full, in evpnd's keys (`show bgp neighbors X --json` is FRR's)
        return request(path, "show neighbor", filters={"address": values["address"]})
    if words in (("show", "evpn", "vni"), ("show", "bgp", "l2vpn", "evpn", "vni")):
        # `show vni` lists them all: the one asked for is picked out here
        vnis = request(path, "show vni")
        wanted = values.get("vni")
        return vnis if wanted is None else [v for v in vnis if v["vni"] == wanted]
    if words in (("show", "bgp", "neighbors"), ("show", "bgp", "l2vpn", "evpn", "neighbors")):
        received, advertised = bool(values.get("routes")), bool(values.get("advertised-routes"))
        if received and advertised:
            raise UsageError(f"evpnctl {command.name}: routes or advertised-routes, not both")
        if received or advertised:
            if "address" not in values:
                raise UsageError(f"evpnctl {command.name}: which neighbour's routes? ADDRESS")
            filters = {"address": values["address"], "advertised": advertised}
            return request(path, "show neighbor routes", filters=filters)
        return request(path, "show neighbor", filters={"address": values.get("address")})
    if words == ("show", "evpn", "mac") and "mac" in filters:
        filters["detail"] = True  # one MAC: in full, with its IPs, as FRR prints it
    if words == ("show", "bgp", "l2vpn", "evpn", "route"):
        if "vni" in filters:
            # FRR's `route vni N`: the VNI's table (what it imports, and our own)
            filters["table_vni"] = filters.pop("vni")
        if "rd" in filters or ("mac" in filters and "table_vni" in filters):
            filters["detail"] = True  # FRR prints these forms in full
        routes = request(path, command.request, filters=filters)
        if "mac" in filters and ("rd" in filters or "table_vni" in filters):
            return [r for r in routes if not r["ip"]]  # FRR's `mac M` alone: the MAC route
        return routes
    return request(path, command.request, filters=filters)


def _context(path: str) -> frr.Context:
    version = request(path, "show version")
    return frr.Context.of(
        request(path, "show summary"), request(path, "show peers"), version["hostname"]
    )


def _frr_json(path: str, words: tuple[str, ...], values: dict[str, Any], result: Any) -> Any:
    """FRR 8.4's JSON for an FRR command (control/frr.py), from evpnd's answer."""
    if words == ("show", "bgp", "summary"):
        return {"l2VpnEvpn": frr.bgp_summary(result, request(path, "show summary"))}
    if words == ("show", "bgp", "l2vpn", "evpn", "summary"):
        return frr.bgp_summary(result, request(path, "show summary"))
    if isinstance(result, dict) and "direction" in result:
        if result["direction"] == "advertised":
            return frr.advertised_routes(result["routes"], _context(path))
        return frr.evpn_table(result["routes"], _context(path), result["total"])
    if words in (("show", "bgp", "neighbors"), ("show", "bgp", "l2vpn", "evpn", "neighbors")):
        return frr.neighbors(result)
    if words == ("show", "bgp", "l2vpn", "evpn"):
        return frr.evpn_table(result, _context(path), len(result))
    if words == ("show", "bgp", "l2vpn", "evpn", "route"):
        return frr.evpn_route(result, _context(path), values)
    if words == ("show", "bgp", "l2vpn", "evpn", "vni"):
        return frr.bgp_vnis(
            result,
            request(path, "show l3vni") if values.get("vni") is None else [],
            request(path, "show running-config"),
            values.get("vni"),
        )
    if words == ("show", "evpn", "vni"):
        l3vnis = []
        if values.get("vni") is None:
            rows = request(path, "show rmac")
            for l3 in request(path, "show l3vni"):
                mine = [r for r in rows if r["l3vni"] == l3["vni"]]
                rmacs = len({r["router_mac"] for r in mine})
                l3vnis.append(l3 | {"rmacs": rmacs, "next_hops": len(mine)})
        return frr.evpn_vnis(result, l3vnis, values.get("vni"))
    if words == ("show", "evpn", "mac"):
        return frr.evpn_macs(result, values)
    if words == ("show", "evpn", "arp-cache"):
        return frr.evpn_arps(result, values)
    return frr.evpn_rmacs(result, words[-1] == "next-hops", values.get("vni"))


def _status(command: Command, result: Any) -> int:
    if command.request == "reload" and (not result["reloaded"] or result["problems"]):
        return EXIT_PROBLEM
    if command.request == "show kernel" and not result["in_sync"]:
        return EXIT_PROBLEM
    if command.request == "doctor" and result["findings"]:
        return EXIT_PROBLEM
    return EXIT_OK


def _text(path: str, command: Command, parsed: Parsed, result: Any) -> str:
    words, values = command.words, parsed.values
    if command.request == "reload":
        if not result["reloaded"]:
            head = "reload refused; the running configuration stays:"
            return "\n".join([head, *(f"  {problem}" for problem in result["problems"])])
        lines = ["reloaded:", *(f"  {change}" for change in result.get("changes", []))]
        if result["problems"]:
            lines += ["not applied:", *(f"  {problem}" for problem in result["problems"])]
        return "\n".join(lines)
    if command.request == "doctor":
        return tables.show_findings(result["findings"])
    if command.request == "clear mac":
        return f"{result['mac']} in VNI {result['vni']}: unfrozen; announced again if it is here"
    if command.request == "clear peer":
        return {
            "reset": f"{result['peer']}: session reset; it reconnects by itself",
            "soft": f"{result['peer']}: sent {result.get('routes_sent')} routes again"
            + (", asked for the peer's" if result.get("refresh_requested") else ""),
            "none": f"{result['peer']}: not Established ({result.get('state')}); nothing to do",
        }[result["action"]]
    if command.request in ("debug", "show debug"):
        return tables.show_debug(result)
    if words == ("show", "peers") and "address" in values:
        return tables.frr_neighbor(result)
    if command.frr:
        return _frr_text(path, words, values, result)
    if command.request == "show vni":
        return tables.show_vni_table(result, request(path, "show l3vni"))
    printers: dict[str, Callable[[Any], str]] = {
        "show peers": tables.show_peers,
        "show routes": tables.show_routes,
        "show l3vni": tables.show_l3vni_table,
        "show mac": tables.show_mac_table,
        "show neigh": tables.show_neigh_table,
        "show kernel": tables.show_kernel_table,
        "show summary": tables.show_summary,
        "show rmac": tables.show_rmac,
    }
    return printers[command.request](result)


def _frr_text(path: str, words: tuple[str, ...], values: dict[str, Any], result: Any) -> str:
    if words == ("show", "bgp", "summary"):
        return tables.frr_bgp_summary(result, request(path, "show summary"))
    if words == ("show", "bgp", "l2vpn", "evpn", "summary"):
        return tables.frr_evpn_summary(result, request(path, "show summary"))
    if isinstance(result, dict) and "direction" in result:
        return tables.frr_peer_routes(result, request(path, "show summary"))
    if words in (("show", "bgp", "neighbors"), ("show", "bgp", "l2vpn", "evpn", "neighbors")):
        chosen = [result] if isinstance(result, dict) else result
        return "\n\n".join(tables.frr_neighbor(n) for n in chosen)
    if words == ("show", "bgp", "l2vpn", "evpn", "vni"):
        l3vnis = request(path, "show l3vni") if values.get("vni") is None else []
        return tables.frr_bgp_vni(result, l3vnis, values.get("vni"))
    if words == ("show", "bgp", "l2vpn", "evpn", "route") and "vni" in values:
        if "mac" in values:
            return tables.frr_evpn_detail(result, rd_in_title=False)
        return tables.frr_evpn_table(result, request(path, "show summary"), by_rd=False)
    if words[:4] == ("show", "bgp", "l2vpn", "evpn"):
        return tables.frr_evpn_table(result, request(path, "show summary"))
    if words == ("show", "evpn", "vni"):
        return tables.frr_evpn_vni(result, request(path, "show l3vni"), values.get("vni"))
    if words == ("show", "evpn", "mac"):
        return tables.frr_evpn_mac(result, values)
    if words == ("show", "evpn", "arp-cache"):
        return tables.frr_evpn_arp(result, values)
    if words == ("show", "running-config"):
        return tables.running_config(result)
    if words == ("show", "version"):
        return tables.show_version(result)
    return tables.frr_evpn_rmac(result, next_hops=words[-1] == "next-hops")


if __name__ == "__main__":
    sys.exit(main())
