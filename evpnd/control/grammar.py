"""evpnctl's commands as data: one table drives the parsing (vtysh's unique prefixes, options
anywhere, `vni 100` as well as `--vni 100`), the per-command help, bash completion and the
man page, so the four never disagree."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evpnd.evpn.identifiers import RouteDistinguisher, mac_from_text, mac_to_text


class UsageError(Exception):
    """A command line evpnctl cannot understand: exit 2, with what and where."""


def vni(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is no VNI (a number, 1 to 16777215)") from None
    if not 0 < number < 1 << 24:
        raise ValueError(f"VNI {number}: 1 to 16777215")
    return number


def vni_or_all(text: str) -> int | None:
    return None if text == "all" else vni(text)


def address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is no IP address") from None


def mac(text: str) -> str:
    return mac_to_text(mac_from_text(text))


def rd(text: str) -> str:
    return str(RouteDistinguisher.from_text(text))


def route_type(text: str) -> int:
    names = {"ead": 1, "macip": 2, "multicast": 3, "es": 4, "prefix": 5}
    if text in names:
        return names[text]
    matches = [n for n in names if n.startswith(text)]
    if len(matches) == 1:
        return names[matches[0]]
    if text.isdigit() and 1 <= int(text) <= 5:
        return int(text)
    raise ValueError(f"route type {text!r}: 1-5, or ead, macip, multicast, es, prefix")


def on_off(text: str) -> bool:
    if text in ("on", "off"):
        return text == "on"
    raise ValueError(f"{text!r}: on or off")


@dataclass(frozen=True)
class Param:
    name: str
    help: str
    parse: Callable[[str], Any] = str
    metavar: str = "VALUE"
    #: takes no value (`--detail`, `detail`)
    flag: bool = False
    #: given by place, not by name
    positional: bool = False
    required: bool = False

    def usage(self) -> str:
        if self.positional:
            return self.metavar if self.required else f"[{self.metavar}]"
        text = f"--{self.name}" + ("" if self.flag else f" {self.metavar}")
        return text if self.required else f"[{text}]"


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    summary: str
    #: the daemon's command for it (control/server.py), or "" for evpnctl's own (watch)
    request: str
    params: tuple[Param, ...] = ()
    #: an FRR (vtysh) command, printed in FRR's layout
    frr: bool = False
    #: --json gives FRR's JSON keys (control/frr.py); False where FRR has no JSON for it
    frr_json: bool = True
    #: exit 1 when the answer reports a problem (`show kernel` out of sync, a refused reload)
    notes: str = ""

    @property
    def name(self) -> str:
        return " ".join(self.words)

    def usage(self) -> str:
        return " ".join(["evpnctl", *self.words, *(p.usage() for p in self.params)])


def _debug(scope: str, target: Param) -> Command:
    return Command(
        ("debug", scope),
        f"detailed, rate-limited log lines for one {scope}",
        "debug",
        (target, Param("state", "on or off", on_off, "on|off", positional=True, required=True)),
    )


VNI_OPT = Param("vni", "only this VNI", vni, "VNI")
TYPE_OPT = Param("type", "only routes of this type", route_type, "TYPE")
MAC_OPT = Param("mac", "only this MAC", mac, "MAC")
RD_OPT = Param("rd", "only this route distinguisher", rd, "RD")
DETAIL = Param("detail", "every path with its attributes and why the best is best", flag=True)
ALL_VNIS = Param("vni", "one VNI, or all", vni_or_all, "VNI|all", required=True)
#: FRR's `route vni N`: the routes in that VNI's table (imported into it, or our own)
TABLE_VNI = Param("vni", "only the routes in this VNI's table (imported, or our own)", vni, "VNI")
ENTRY_DETAIL = Param("detail", "each entry in full, as FRR's detail", flag=True)
VTEP_OPT = Param("vtep", "only what this remote VTEP announces", address, "VTEP")
PEER_ROUTES = (
    Param("routes", "what the neighbour sent us and we accepted (its Adj-RIB-In)", flag=True),
    Param(
        "advertised-routes",
        "what we send the neighbour (its update group's Adj-RIB-Out)",
        flag=True,
    ),
)

COMMANDS: tuple[Command, ...] = (
    Command(
        ("show", "peers"),
        "sessions: state, up/down time, routes, last error (one peer: in full)",
        "show peers",
        (Param("address", "one peer, in full", address, "ADDRESS", positional=True),),
    ),
    Command(
        ("show", "routes"),
        "the RIB: every path, > marks the best",
        "show routes",
        (TYPE_OPT, VNI_OPT, MAC_OPT, RD_OPT, DETAIL),
    ),
    Command(("show", "vni"), "VNIs: devices, RD/RTs, VTEPs, MACs, MTU, problems", "show vni"),
    Command(("show", "l3vni"), "L3VNIs (symmetric IRB): VRF, Router's MAC, routes", "show l3vni"),
    Command(("show", "mac"), "MACs, local (with their port) and remote", "show mac", (VNI_OPT,)),
    Command(("show", "neigh"), "MAC/IP bindings (ARP/ND suppression)", "show neigh", (VNI_OPT,)),
    Command(("show", "rmac"), "Router's MACs of remote VTEPs per L3VNI", "show rmac", (VNI_OPT,)),
    Command(
        ("show", "kernel"),
        "what evpnd wants programmed against what the kernel has; exit 1 when they differ",
        "show kernel",
    ),
    Command(("show", "summary"), "AS, router id, counts, update groups, status", "show summary"),
    Command(("show", "debug"), "the peers and VNIs being debugged", "show debug"),
    Command(
        ("show", "bgp", "summary"), "FRR's summary: one line per neighbour", "show peers", frr=True
    ),
    Command(
        ("show", "bgp", "neighbors"),
        "one neighbour in full (capabilities, timers, counters, how sessions ended), or the"
        " routes it sent us / we send it",
        "show neighbor",
        (
            Param("address", "the neighbour (default: all)", address, "ADDRESS", positional=True),
            *PEER_ROUTES,
        ),
        frr=True,
    ),
    Command(
        ("show", "bgp", "l2vpn", "evpn"),
        "the EVPN table by route distinguisher, as FRR prints it",
        "show routes",
        (TYPE_OPT, DETAIL),
        frr=True,
    ),
    Command(
        ("show", "bgp", "l2vpn", "evpn", "route"),
        "the EVPN table by route distinguisher (type macip|multicast|prefix, vni, rd, mac, detail)",
        "show routes",
        (TYPE_OPT, TABLE_VNI, RD_OPT, MAC_OPT, DETAIL),
        frr=True,
    ),
    Command(
        ("show", "bgp", "l2vpn", "evpn", "summary"),
        "FRR's summary of the L2VPN EVPN family: one line per neighbour",
        "show peers",
        frr=True,
    ),
    Command(
        ("show", "bgp", "l2vpn", "evpn", "vni"),
        "VNIs as BGP sees them: RD, import and export route targets (one VNI: in full)",
        "show vni",
        (Param("vni", "one VNI in full", vni, "VNI", positional=True),),
        frr=True,
    ),
    Command(
        ("show", "bgp", "l2vpn", "evpn", "neighbors"),
        "what one neighbour sent us (routes) or what we send it (advertised-routes)",
        "show neighbor routes",
        (
            Param("address", "the neighbour", address, "ADDRESS", positional=True, required=True),
            *PEER_ROUTES,
        ),
        frr=True,
    ),
    Command(
        ("show", "evpn", "vni"),
        "VNIs as FRR lists them (one VNI: in full)",
        "show vni",
        (Param("vni", "one VNI in full", vni, "VNI", positional=True),),
        frr=True,
    ),
    Command(
        ("show", "evpn", "mac"),
        "MACs of a VNI, or all (detail, one MAC, one remote VTEP's)",
        "show mac",
        (ALL_VNIS, ENTRY_DETAIL, MAC_OPT, VTEP_OPT),
        frr=True,
    ),
    Command(
        ("show", "evpn", "arp-cache"),
        "MAC/IP bindings of a VNI, or all (detail, one IP, one remote VTEP's)",
        "show neigh",
        (ALL_VNIS, ENTRY_DETAIL, Param("ip", "only this IP address", address, "IP"), VTEP_OPT),
        frr=True,
    ),
    Command(
        ("show", "evpn", "rmac"), "Router's MACs per L3VNI", "show rmac", (ALL_VNIS,), frr=True
    ),
    Command(
        ("show", "evpn", "next-hops"),
        "remote VTEPs per L3VNI with their Router's MAC",
        "show rmac",
        (ALL_VNIS,),
        frr=True,
    ),
    Command(
        ("show", "running-config"),
        "the configuration evpnd runs, as YAML (evpnd's keys; passwords masked)",
        "show running-config",
        frr=True,
        frr_json=False,
    ),
    Command(
        ("show", "version"),
        "evpnd's version, Python, uptime",
        "show version",
        frr=True,
        frr_json=False,
    ),
    Command(
        ("clear", "peer"),
        "end a session (it comes back by itself), or with --soft refresh its routes",
        "clear peer",
        (
            Param("address", "the peer", address, "ADDRESS", positional=True, required=True),
            Param("soft", "refresh routes both ways, keep the session", flag=True),
        ),
    ),
    Command(
        ("clear", "mac"),
        "unfreeze a MAC that duplicate detection froze",
        "clear mac",
        (
            Param("mac", "the MAC", mac, "MAC", positional=True, required=True),
            Param("vni", "its VNI", vni, "VNI", required=True),
        ),
    ),
    Command(("reload",), "re-read the configuration file; exit 1 when refused", "reload"),
    Command(
        ("doctor",), "name what keeps the fabric from working, with fixes", "doctor", (VNI_OPT,)
    ),
    Command(("watch",), "stream route, MAC and session events", "", (VNI_OPT,)),
    _debug(
        "peer", Param("address", "the peer", address, "ADDRESS", positional=True, required=True)
    ),
    _debug("vni", Param("vni", "the VNI", vni, "VNI", positional=True, required=True)),
)

GLOBAL_OPTIONS = (
    ("-s, --socket PATH", "evpnd's control socket (default /run/evpnd/evpnd.sock)"),
    ("--json", "JSON for scripts (the same data; FRR commands: FRR 8.4's keys)"),
    ("-h, --help", "help for the command given (evpnctl show routes --help)"),
    ("--version", "evpnctl's version"),
)

EXIT_CODES = (
    (0, "done"),
    (1, "done, but the answer reports a problem (a refused reload, the kernel out of sync,"),
    (1, "findings of doctor, a filter that matches nothing cannot be one)"),
    (2, "usage: a command or value evpnctl does not understand"),
    (3, "evpnd is not reachable"),
    (4, "not allowed (clear, reload and debug: root or control_write_group)"),
)


@dataclass
class Parsed:
    command: Command | None = None
    #: the words matched so far (a group, like `show`, when no command is complete)
    words: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)
    socket: str | None = None
    json: bool = False
    help: bool = False
    version: bool = False


def _children(words: tuple[str, ...]) -> list[str]:
    n = len(words)
    out: list[str] = []
    for command in COMMANDS:
        if len(command.words) > n and command.words[:n] == words:
            if command.words[n] not in out:
                out.append(command.words[n])
    return out


def _command(words: tuple[str, ...]) -> Command | None:
    return next((c for c in COMMANDS if c.words == words), None)


def _match(token: str, names: Sequence[str], what: str) -> str | None:
    """vtysh's rule: the exact word, or the only word it begins."""
    if token in names:
        return token
    found = [name for name in names if name.startswith(token)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise UsageError(f"{token!r} is ambiguous {what}: {', '.join(found)}")
    return None


def _globals(argv: Sequence[str], parsed: Parsed) -> list[str]:
    """Takes the global options out, wherever they are."""
    rest: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in ("-s", "--socket"):
            value = next(tokens, None)
            if value is None:
                raise UsageError(f"{token} needs the control socket's path")
            parsed.socket = value
        elif token.startswith("--socket="):
            parsed.socket = token.split("=", 1)[1]
        elif token == "--json":
            parsed.json = True
        elif token in ("-h", "--help"):
            parsed.help = True
        elif token == "--version":
            parsed.version = True
        else:
            rest.append(token)
    return rest


def parse(argv: Sequence[str]) -> Parsed:
    parsed = Parsed()
    tokens = _globals(argv, parsed)
    words: tuple[str, ...] = ()
    position = 0
    while position < len(tokens):
        children = _children(words)
        if not children:
            break
        token = tokens[position]
        if token.startswith("-"):
            break
        try:
            word = _match(token, children, f"after {' '.join(('evpnctl', *words))}")
        except UsageError:
            if _command(words) is not None:
                break  # a command's argument that looks like a word's beginning
            raise
        if word is None:
            if _command(words) is not None:
                break
            where = " ".join(("evpnctl", *words))
            raise UsageError(f"{where}: unknown command {token!r}; one of: {', '.join(children)}")
        words += (word,)
        position += 1
    parsed.words = words
    parsed.command = _command(words)
    if parsed.command is None:
        if parsed.help or parsed.version or (not words and not tokens):
            return parsed
        if words:
            raise UsageError(
                f"{' '.join(('evpnctl', *words))}: incomplete; one of: "
                + ", ".join(_children(words))
            )
        return parsed
    if parsed.help:
        return parsed
    _arguments(parsed.command, tokens[position:], parsed.values)
    return parsed


def _arguments(command: Command, tokens: Sequence[str], values: dict[str, Any]) -> None:
    named = [p for p in command.params if not p.positional]
    positional = [p for p in command.params if p.positional]
    where = f"evpnctl {command.name}"
    tokens = list(tokens)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        param: Param | None = None
        inline = ""
        raw: str | None
        if token.startswith("--"):
            name, _, inline = token[2:].partition("=")
            found = _match(name, [p.name for p in named], f"for {where}")
            if found is None:
                options = " ".join(f"--{p.name}" for p in named) or "none"
                raise UsageError(f"{where}: unknown option {token!r} (options: {options})")
            param = next(p for p in named if p.name == found)
        elif named and not _fits(token):
            # vtysh style: `vni 100`, `type macip`, `detail`
            found = _match(token, [p.name for p in named], f"for {where}")
            if found is not None:
                param = next(p for p in named if p.name == found)
        if param is None:
            free = [p for p in positional if p.name not in values]
            if not free:
                raise UsageError(f"{where}: unexpected {token!r}; usage: {command.usage()}")
            param = free[0]
            raw = token
        elif param.flag:
            values[param.name] = True
            continue
        else:
            raw = inline or (tokens[i] if i < len(tokens) else None)
            if not inline:
                i += 1
            if raw is None:
                raise UsageError(f"{where}: {param.name} needs {param.metavar}")
        try:
            values[param.name] = param.parse(raw)
        except ValueError as exc:
            raise UsageError(f"{where}: {param.name}: {exc}") from None
    missing = [p for p in command.params if p.required and p.name not in values]
    if missing:
        names = ", ".join(p.usage() for p in missing)
        raise UsageError(f"{where}: {names} is needed; usage: {command.usage()}")


def _fits(token: str) -> bool:
    """A value rather than a keyword: an address, a number, a MAC."""
    return token[:1].isdigit() or ":" in token


# --- help, completion, man page ------------------------------------------------------------


def help_text(words: tuple[str, ...], command: Command | None) -> str:
    if command is not None:
        lines = [f"usage: {command.usage()} [--json] [-s PATH]", "", command.summary]
        if command.frr and command.frr_json:
            lines.append("(an FRR command: FRR's layout; --json gives FRR 8.4's JSON keys)")
        elif command.frr:
            lines.append("(an FRR command: FRR's layout; --json: evpnd's, FRR has none)")
        if command.params:
            lines += ["", "arguments (options may also be written without --, as in vtysh):"]
            width = max(len(p.usage().strip("[]")) for p in command.params)
            for p in command.params:
                lines.append(f"  {p.usage().strip('[]').ljust(width)}  {p.help}")
        more = _children(words)
        if more:
            lines += ["", "more: " + ", ".join(" ".join((*words, w)) for w in more)]
        return "\n".join(lines)
    chosen = [c for c in COMMANDS if c.words[: len(words)] == words]
    lines = [f"usage: evpnctl {' '.join(words) or 'COMMAND'} ... [--json] [-s PATH]", ""]
    if not words:
        lines += ["Ask a running evpnd. Words may be shortened to any unique beginning.", ""]
    width = max(len(c.name) for c in chosen)
    native = [c for c in chosen if not c.frr]
    frr = [c for c in chosen if c.frr]
    for title, group in (("commands", native), ("FRR (vtysh) commands", frr)):
        if group:
            lines.append(f"{title}:")
            lines += [f"  {c.name.ljust(width)}  {c.summary}" for c in group]
            lines.append("")
    lines.append("options:")
    lines += [f"  {flag.ljust(20)}  {text}" for flag, text in GLOBAL_OPTIONS]
    if not words:
        lines += ["", "exit codes:"] + [f"  {code}  {text}" for code, text in EXIT_CODES]
    return "\n".join(lines)


def complete(before: Sequence[str], current: str) -> list[str]:
    """What may come next after the words `before`, beginning with `current`."""
    words: tuple[str, ...] = ()
    rest = [w for w in before if not w.startswith("-")]
    while rest:
        try:
            word = _match(rest[0], _children(words), "")
        except UsageError:
            return []
        if word is None:
            break
        words += (word,)
        rest.pop(0)
    command = _command(words)
    candidates: list[str] = []
    if not rest:
        candidates += _children(words)
    if command is not None:
        values = len(rest)
        candidates += [f"--{p.name}" for p in command.params if not p.positional]
        positional = [p for p in command.params if p.positional]
        if values < len(positional) and positional[values].parse is on_off:
            candidates += ["on", "off"]
        if rest and any(p.parse is vni_or_all and p.name == rest[-1] for p in command.params):
            candidates.append("all")
        candidates += ["--json", "--socket", "--help"]
    return [c for c in candidates if c.startswith(current)]


def _roff(text: str) -> str:
    out = text.replace("\\", "\\\\").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in out.split("\n")
    )


def man_page(version: str, date: str) -> str:
    """evpnctl(8), from the same table as --help."""
    lines = [
        f'.TH EVPNCTL 8 "{date}" "evpnd {version}" "System Administration"',
        ".SH NAME",
        "evpnctl \\- ask a running evpnd",
        ".SH SYNOPSIS",
        ".B evpnctl",
        "[\\fB\\-s\\fR \\fIPATH\\fR] [\\fB\\-\\-json\\fR] \\fICOMMAND\\fR ...",
        ".SH DESCRIPTION",
        "evpnctl talks to evpnd over its control socket. Every word of a command may be "
        "shortened to a unique beginning (\\fBsho pe\\fR is \\fBshow peers\\fR); options may "
        "come anywhere, with or without their dashes (\\fBvni 100\\fR or \\fB\\-\\-vni 100\\fR).",
        ".SH COMMANDS",
    ]
    for title, frr in (("", False), ("FRR (vtysh) commands", True)):
        if title:
            lines += [".SS " + title]
        for command in (c for c in COMMANDS if c.frr == frr):
            lines += [
                ".TP",
                ".B " + _roff(command.usage().removeprefix("evpnctl ")),
                _roff(command.summary),
            ]
            for p in command.params:
                lines += [".RS", ".TP", ".I " + _roff(p.usage().strip("[]")), _roff(p.help), ".RE"]
    lines.append(".SH OPTIONS")
    for flag, text in GLOBAL_OPTIONS:
        lines += [".TP", ".B " + _roff(flag), _roff(text)]
    lines.append(".SH EXIT STATUS")
    for code, text in EXIT_CODES:
        lines += [".TP", f".B {code}", _roff(text)]
    lines += [".SH SEE ALSO", "evpnd(8)"]
    return "\n".join(lines) + "\n"
