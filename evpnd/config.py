"""The YAML configuration, typed, with errors that name the file, line and key.

    evpnd.yaml:12: neighbors[1].remote_as: expected an AS number 1-4294967295, got "650o0"

Unknown keys are errors too: a misspelt option silently ignored is a fabric misconfigured.
"""

from __future__ import annotations

import grp
import ipaddress
import math
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evpnd.bgp.backlog import DEFAULT_LIMIT as DEFAULT_OUTPUT_LIMIT
from evpnd.evpn.extcommunities import RouteTarget
from evpnd.evpn.identifiers import RouteDistinguisher, is_address, mac_from_text

#: problems reported at most (a 10 MB file of mistakes makes one line each)
MAX_PROBLEMS = 50


class ConfigError(ValueError):
    """One or more problems, each a line `file:line: key: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        if len(problems) > MAX_PROBLEMS:
            problems = [*problems[:MAX_PROBLEMS], f"… and {len(problems) - MAX_PROBLEMS} more"]
        super().__init__("\n".join(problems))
        self.problems = problems

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str]]]:
        # (it crosses a process boundary: reloads are read in a worker process)
        return ConfigError, (self.problems,)


@dataclass(frozen=True, slots=True)
class NeighborConfig:
    address: str
    remote_as: int
    password: str | None = None
    port: int = 179
    passive: bool = False
    hold_time: int | None = None
    update_source: str | None = None
    #: eBGP multihop: the TTL of our packets (None: 1 for eBGP, 255 for iBGP).
    multihop: int | None = None
    #: GTSM (RFC 5082): send with TTL 255, accept only TTL >= 255 - hops + 1.
    ttl_security_hops: int | None = None
    route_reflector_client: bool = False
    max_routes: int | None = None
    connect_retry: float = 30.0
    description: str = ""
    #: bytes that may wait to be written to the peer before it is dropped (bgp/backlog.py)
    max_output_bytes: int = DEFAULT_OUTPUT_LIMIT


@dataclass(frozen=True, slots=True)
class ListenRange:
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network
    remote_as: int | None
    password: str | None = None
    route_reflector_client: bool = False
    max_routes: int | None = None


@dataclass(frozen=True, slots=True)
class StaticMac:
    mac: bytes
    ip: bytes = b""


@dataclass(frozen=True, slots=True)
class VniConfig:
    vni: int
    rd: RouteDistinguisher | None = None  # None: auto (router-id:index)
    import_rts: tuple[RouteTarget, ...] = ()  # empty: auto (matches *:VNI)
    export_rts: tuple[RouteTarget, ...] = ()  # empty: auto (AS:VNI)
    vtep_ip: str | None = None
    macs: tuple[StaticMac, ...] = ()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class L3VniConfig:
    """A tenant's routing VNI (symmetric IRB, RFC 9135): the default VRF's (`evpn.l3vni`,
    vrf None, the main table) or a Linux VRF device's (`evpn.vrfs.NAME`)."""

    vni: int
    vrf: str | None = None
    rd: RouteDistinguisher | None = None
    import_rts: tuple[RouteTarget, ...] = ()  # empty: auto (matches *:L3VNI)
    export_rts: tuple[RouteTarget, ...] = ()  # empty: auto (AS:L3VNI)
    #: Type 5 for the subnets of the L2VNI SVIs in this VRF
    advertise_connected: bool = True
    #: and for these
    prefixes: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class EvpnConfig:
    advertise_all_vni: bool = True
    vtep_ip: str | None = None
    vnis: tuple[VniConfig, ...] = ()
    #: Program remote routes into the kernel (off for a route reflector that is no VTEP).
    program_kernel: bool = True
    #: Remove our kernel entries on exit (default: keep them, so a restart is hitless).
    flush_on_exit: bool = False
    l3vnis: tuple[L3VniConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    asn: int
    router_id: str
    hostname: str = ""
    listen_address: str = "::"
    listen_port: int = 179
    hold_time: int = 90
    graceful_restart_time: int = 120
    #: RFC 8538's N bit in our graceful restart capability
    graceful_notification: bool = True
    stale_path_time: float = 360.0
    #: next-hop tracking counts a VTEP reached only through the default route as reachable
    #: (FRR's `ip nht resolve-via-default`; off by default there and here)
    resolve_via_default: bool = False
    neighbors: tuple[NeighborConfig, ...] = ()
    listen_ranges: tuple[ListenRange, ...] = ()
    evpn: EvpnConfig = field(default_factory=EvpnConfig)
    control_socket: str = "/run/evpnd/evpnd.sock"
    #: group of the control socket (may read); None: root's
    control_group: str | None = None
    #: group whose members may also `clear` and `reload`; None: root only
    control_write_group: str | None = None
    state_dir: str = "/var/lib/evpnd"
    #: Prometheus /metrics: (address, port), or None for off.
    metrics: tuple[str, int] | None = None
    #: peers and VNIs debugged from the start (`evpnctl debug` changes it at run time)
    debug_peers: tuple[str, ...] = ()
    debug_vnis: tuple[int, ...] = ()
    source: str = "<config>"
    #: what is allowed but worth a look (a default picked for the operator), with file:line
    notes: tuple[str, ...] = ()


# --- parsing ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[str] = []

    def problem(self, node: yaml.Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(f"{self.name}:{line}: {path}: {message}")
        if len(self.problems) >= MAX_PROBLEMS - 1:
            # enough to act on: reading on through a file of mistakes would take minutes
            raise _TooMany(
                f"{self.name}:{line}: stopped reading after {len(self.problems)} problems"
            )


class _TooMany(Exception):
    pass


class _Unreadable:
    """A scalar YAML cannot turn into a value (`!!int "sixty-five"`): every check refuses it."""


def _scalar(node: yaml.Node | None) -> Any:
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode):
        return _Unreadable()
    try:
        return yaml.safe_load(yaml.serialize(node))
    except (yaml.YAMLError, ValueError):  # PyYAML raises ValueError for `!!int "x"`
        return _Unreadable()


_U32 = (1, 0xFFFFFFFF)


class _Fields:
    """A mapping node read key by key, remembering which keys were used."""

    def __init__(self, reader: _Reader, node: yaml.Node, path: str) -> None:
        self.reader = reader
        self.node = node
        self.path = path
        self.items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        self.used: set[str] = set()
        if not isinstance(node, yaml.MappingNode):
            # no keys then: every read finds nothing, and done() has nothing to report
            reader.problem(node, path or "(top)", "expected a mapping of keys to values")
            return
        for key_node, value_node in node.value:
            key = str(key_node.value)
            first = self.items.get(key)
            if first is not None:
                # YAML would let the last one win, silently: one of them is a mistake
                reader.problem(
                    key_node,
                    self._at(key),
                    f"given twice (first on line {first[0].start_mark.line + 1})",
                )
                continue
            self.items[key] = (key_node, value_node)

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> yaml.Node | None:
        self.used.add(key)
        entry = self.items.get(key)
        return entry[1] if entry else None

    def done(self) -> None:
        for key, (key_node, _) in self.items.items():
            if key not in self.used:
                self.reader.problem(key_node, self._at(key), "unknown key")

    def number(
        self, key: str, default: int | None, low: int, high: int, what: str, required: bool = False
    ) -> int | None:
        node = self.get(key)
        if node is None:
            if required:
                self.reader.problem(self.node, self._at(key), f"required: {what}")
            return default
        value = _scalar(node)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.reader.problem(
                node, self._at(key), f"expected {what} {low}-{high}, got {_show(node)}"
            )
            return default
        return value

    def decimal(self, key: str, default: float, low: float, what: str) -> float:
        node = self.get(key)
        if node is None:
            return default
        value = _scalar(node)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < low
        ):
            self.reader.problem(node, self._at(key), f"expected {what}, got {_show(node)}")
            return default
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        node = self.get(key)
        if node is None:
            return default
        value = _scalar(node)
        if not isinstance(value, bool):
            self.reader.problem(node, self._at(key), f"expected true or false, got {_show(node)}")
            return default
        return value

    def text(self, key: str, default: str | None) -> str | None:
        node = self.get(key)
        if node is None:
            return default
        value = _scalar(node)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.reader.problem(node, self._at(key), f"expected text, got {_show(node)}")
            return default
        return str(value)

    def address(self, key: str, default: str | None, required: bool = False) -> str | None:
        node = self.get(key)
        if node is None:
            if required:
                self.reader.problem(self.node, self._at(key), "required: an IP address")
            return default
        try:
            return str(ipaddress.ip_address(str(_scalar(node))))
        except ValueError:
            self.reader.problem(node, self._at(key), f"expected an IP address, got {_show(node)}")
            return default

    def source(self, key: str) -> str | None:
        """An IP address or an interface name (`update_source: lo`, as FRR's `update-source
        lo`): the interface's address is looked up when the session connects."""
        node = self.get(key)
        if node is None:
            return None
        text = str(_scalar(node))
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            pass
        if _INTERFACE_NAME.fullmatch(text) and text not in (".", ".."):
            return text
        self.reader.problem(
            node, self._at(key), f"expected an IP address or an interface name, got {_show(node)}"
        )
        return None

    def items_of(self, key: str) -> list[tuple[str, yaml.Node]]:
        node = self.get(key)
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.reader.problem(node, self._at(key), "expected a list")
            return []
        return [(f"{self._at(key)}[{i}]", item) for i, item in enumerate(node.value)]


#: what Linux takes as a network interface name (IFNAMSIZ - 1 characters, no slash, no space)
_INTERFACE_NAME = re.compile(r"[^/\s:]{1,15}")


def _show(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return f'"{node.value}"'
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _default_router_id() -> str:
    """The first global IPv4 address of this host, as FRR picks one; 127.0.0.1 otherwise."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        infos = []
    for info in infos:
        address = ipaddress.IPv4Address(info[4][0])
        if not address.is_loopback:
            return str(address)
    return "127.0.0.1"


#: A configuration larger than this is refused unread (100,000 static MACs take about 5 MB).
MAX_CONFIG_BYTES = 16 << 20
#: YAML aliases may repeat a node; this many nodes in all, counted with the repeats, is the
#: most a file may expand to ("billion laughs" expands to billions).
MAX_NODES = 2_000_000
#: the tags of plain YAML data; anything else (!!python/…, !vault, !!timestamp, …) is refused
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "seq", "map")
)
#: libyaml's composer where PyYAML has it (Debian's and PyPI's do): ten times the speed of
#: the pure-Python one, which spends a minute on a 6 MB file
_LOADER: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
#: the longest TCP MD5 key Linux takes (TCP_MD5SIG_MAXKEYLEN)
MAX_PASSWORD_BYTES = 80


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; not read"])
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path.name}:{line}: not UTF-8 text (byte {exc.start})"]) from None
    return parse(text, path.name)


def _check_nodes(root: yaml.Node, name: str) -> list[str]:
    """Tags other than plain data's, and aliases that expand too far, before anything is
    built from the file (walked without recursion, counting repeats)."""
    problems: list[str] = []
    stack: list[yaml.Node] = [root]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return [f"{name}:1: aliases expand to more than {MAX_NODES:,} nodes; refused"]
        if node.tag not in _PLAIN_TAGS:
            line = node.start_mark.line + 1
            problems.append(f"{name}:{line}: YAML tag {node.tag} is not allowed here")
            if len(problems) >= 20:
                break
            continue
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                stack += (key_node, value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return problems


def parse(text: str, name: str = "<config>") -> Config:
    reader = _Reader(name)
    try:
        return _parse(text, name, reader)
    except _TooMany as exc:
        raise ConfigError([*reader.problems, str(exc)]) from None


def _parse(text: str, name: str, reader: _Reader) -> Config:
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise ConfigError(
            [f"{name}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]
        ) from None
    if root is None:
        raise ConfigError([f"{name}:1: the file is empty; at least asn is needed"])
    unsafe = _check_nodes(root, name)
    if unsafe:
        raise ConfigError(unsafe)
    top = _Fields(reader, root, "")
    asn = top.number("asn", 0, *_U32, "an AS number", required=True) or 0
    router_id = top.address("router_id", None)
    if router_id is not None and ipaddress.ip_address(router_id).version != 4:
        reader.problem(top.get("router_id"), "router_id", "expected an IPv4 address")
    elif router_id is not None and ipaddress.ip_address(router_id).is_unspecified:
        # RFC 6286: the BGP identifier is a non-zero 32-bit number
        reader.problem(top.get("router_id"), "router_id", "0.0.0.0 is no BGP identifier")
    listen_address, listen_port = "::", 179
    listen_node = top.get("listen")
    if listen_node is not None:
        listen = _Fields(reader, listen_node, "listen")
        listen_address = listen.address("address", "::") or "::"
        listen_port = listen.number("port", 179, 0, 65535, "a port") or 0
        listen.done()
    gr_time, stale_time, gr_notification = 120, 360.0, True
    gr_node = top.get("graceful_restart")
    if gr_node is not None:
        gr = _Fields(reader, gr_node, "graceful_restart")
        gr_time = gr.number("restart_time", 120, 0, 4095, "seconds") or 0
        stale_time = gr.decimal("stale_path_time", 360.0, 1, "seconds")
        gr_notification = gr.flag("notification", True)
        gr.done()
    neighbors = [_neighbor(reader, node, where) for where, node in top.items_of("neighbors")]
    ranges = [_range(reader, node, where) for where, node in top.items_of("listen_ranges")]
    metrics = None
    metrics_node = top.get("metrics")
    if metrics_node is not None:
        fields = _Fields(reader, metrics_node, "metrics")
        metrics = (
            fields.address("address", "127.0.0.1") or "127.0.0.1",
            fields.number("port", 9179, 1, 65535, "a port") or 9179,
        )
        fields.done()
    debug_peers: list[str] = []
    debug_vnis: list[int] = []
    debug_node = top.get("debug")
    if debug_node is not None:
        debug = _Fields(reader, debug_node, "debug")
        for where, item in debug.items_of("peers"):
            if isinstance(item, yaml.ScalarNode) and is_address(item.value):
                debug_peers.append(str(ipaddress.ip_address(item.value)))
            else:
                reader.problem(item, where, "expected a peer's IP address")
        for where, item in debug.items_of("vnis"):
            if isinstance(item, yaml.ScalarNode) and item.value.isdigit():
                if 0 < int(item.value) < 1 << 24:
                    debug_vnis.append(int(item.value))
                    continue
            reader.problem(item, where, "expected a VNI (1 to 16777215)")
        debug.done()
    evpn = EvpnConfig()
    evpn_node = top.get("evpn")
    if evpn_node is not None:
        evpn = _evpn(reader, evpn_node)
    notes = []
    if router_id is None:
        picked = _default_router_id()
        notes.append(
            f"{name}: router_id is not set: using {picked}, the first IPv4 address of this host"
            " (a management address makes a poor router id and VTEP address: set router_id)"
            if picked != "127.0.0.1"
            else f"{name}: router_id is not set and this host has no IPv4 address but"
            " 127.0.0.1: peers cannot reach that; set router_id"
        )
        router_id = picked
    config = Config(
        asn=asn,
        router_id=router_id,
        hostname=top.text("hostname", "") or socket.gethostname(),
        listen_address=listen_address,
        listen_port=listen_port,
        hold_time=top.number("hold_time", 90, 0, 65535, "seconds") or 0,
        graceful_restart_time=gr_time,
        graceful_notification=gr_notification,
        stale_path_time=stale_time,
        resolve_via_default=top.flag("resolve_via_default", False),
        neighbors=tuple(n for n in neighbors if n is not None),
        listen_ranges=tuple(r for r in ranges if r is not None),
        evpn=evpn,
        control_socket=top.text("control_socket", "/run/evpnd/evpnd.sock") or "",
        control_group=_group(reader, top, "control_group"),
        control_write_group=_group(reader, top, "control_write_group"),
        state_dir=top.text("state_dir", "/var/lib/evpnd") or "",
        metrics=metrics,
        debug_peers=tuple(debug_peers),
        debug_vnis=tuple(debug_vnis),
        source=name,
        notes=tuple(notes),
    )
    top.done()
    ours = {config.router_id, config.listen_address}
    first_line: dict[str, int] = {}
    for where, node in top.items_of("neighbors"):
        fields = _Fields(_Reader(name), node, where)
        address = fields.address("address", None)
        if address is None:
            continue
        if address in ours:
            reader.problem(node, f"{where}.address", "is this speaker's own address")
        if address in first_line:
            reader.problem(
                node, f"{where}.address", f"{address} is listed twice (first on line "
                f"{first_line[address]})"
            )  # fmt: skip
        first_line.setdefault(address, node.start_mark.line + 1)
    if config.hold_time in (1, 2):
        reader.problem(top.get("hold_time"), "hold_time", "must be 0 or at least 3 (RFC 4271)")
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


def _group(reader: _Reader, fields: _Fields, key: str) -> str | None:
    name = fields.text(key, None)
    if name is not None:
        try:
            grp.getgrnam(name)
        except KeyError:
            reader.problem(fields.get(key), key, f"no group named {name!r} on this host")
    return name


def _password(reader: _Reader, fields: _Fields, where: str) -> str | None:
    """A TCP MD5 key: at most 80 bytes, what the kernel takes (said here, not at start)."""
    password = fields.text("password", None)
    if password is not None and len(password.encode()) > MAX_PASSWORD_BYTES:
        reader.problem(
            fields.get("password"),
            f"{where}.password",
            f"{len(password.encode())} bytes; TCP MD5 keys are {MAX_PASSWORD_BYTES} at most",
        )
        return None
    return password


def _neighbor(reader: _Reader, node: yaml.Node, where: str) -> NeighborConfig | None:
    fields = _Fields(reader, node, where)
    before = len(reader.problems)
    address = fields.address("address", None, required=True)
    remote_as = fields.number("remote_as", None, *_U32, "an AS number", required=True)
    multihop = fields.number("multihop", None, 1, 255, "a TTL")
    ttl_security = fields.number("ttl_security_hops", None, 1, 254, "a hop count")
    if multihop is not None and ttl_security is not None:
        reader.problem(node, where, "multihop and ttl_security_hops exclude each other")
    hold = fields.number("hold_time", None, 0, 65535, "seconds")
    if hold in (1, 2):
        reader.problem(fields.get("hold_time"), f"{where}.hold_time", "must be 0 or at least 3")
    neighbor = NeighborConfig(
        address=address or "",
        remote_as=remote_as or 0,
        password=_password(reader, fields, where),
        port=fields.number("port", 179, 1, 65535, "a port") or 179,
        passive=fields.flag("passive", False),
        hold_time=hold,
        update_source=fields.source("update_source"),
        multihop=multihop,
        ttl_security_hops=ttl_security,
        route_reflector_client=fields.flag("route_reflector_client", False),
        max_routes=fields.number("max_routes", None, 1, 1 << 31, "a route count"),
        connect_retry=fields.decimal("connect_retry", 30.0, 1, "seconds"),
        description=fields.text("description", "") or "",
        max_output_bytes=fields.number(
            "max_output_bytes", DEFAULT_OUTPUT_LIMIT, 1 << 20, 1 << 40, "a byte count"
        )
        or DEFAULT_OUTPUT_LIMIT,
    )
    fields.done()
    return neighbor if len(reader.problems) == before else None


def _range(reader: _Reader, node: yaml.Node, where: str) -> ListenRange | None:
    fields = _Fields(reader, node, where)
    before = len(reader.problems)
    prefix_node = fields.get("prefix")
    prefix = None
    if prefix_node is None:
        reader.problem(node, f"{where}.prefix", "required: a prefix like 192.0.2.0/24")
    else:
        try:
            prefix = ipaddress.ip_network(str(_scalar(prefix_node)), strict=False)
        except ValueError:
            reader.problem(
                prefix_node,
                f"{where}.prefix",
                f"expected a prefix like 192.0.2.0/24, got {_show(prefix_node)}",
            )
    result = ListenRange(
        prefix=prefix or ipaddress.ip_network("0.0.0.0/32"),
        remote_as=fields.number("remote_as", None, *_U32, "an AS number"),
        password=_password(reader, fields, where),
        route_reflector_client=fields.flag("route_reflector_client", False),
        max_routes=fields.number("max_routes", None, 1, 1 << 31, "a route count"),
    )
    fields.done()
    return result if len(reader.problems) == before else None


def _rd(reader: _Reader, fields: _Fields) -> RouteDistinguisher | None:
    """`rd`: absent or "auto" (None: derived as FRR does), or ASN:N / IPv4:N."""
    text = fields.text("rd", None)
    if text is None or text == "auto":
        return None
    try:
        return RouteDistinguisher.from_text(text)
    except ValueError as exc:
        reader.problem(fields.get("rd"), fields._at("rd"), str(exc))
        return None


def _l3vni(reader: _Reader, fields: _Fields, vrf: str | None) -> L3VniConfig:
    key = "l3vni" if vrf is not None else "vni"
    vni = fields.number(key, 0, 1, 0xFFFFFF, "a VNI", required=True) or 0
    rd = _rd(reader, fields)
    connected = True
    prefixes: list[Network] = []
    advertise_node = fields.get("advertise")
    if advertise_node is not None:
        advertise = _Fields(reader, advertise_node, fields._at("advertise"))
        connected = advertise.flag("connected", True)
        for where, node in advertise.items_of("prefixes"):
            try:
                prefixes.append(ipaddress.ip_network(str(_scalar(node))))
            except ValueError as exc:
                reader.problem(node, where, f"expected a prefix like 10.9.0.0/16: {exc}")
        advertise.done()
    config = L3VniConfig(
        vni=vni,
        vrf=vrf,
        rd=rd,
        import_rts=_rts(reader, fields, "import_rts"),
        export_rts=_rts(reader, fields, "export_rts"),
        advertise_connected=connected,
        prefixes=tuple(prefixes),
    )
    fields.done()
    return config


def _rts(reader: _Reader, fields: _Fields, key: str) -> tuple[RouteTarget, ...]:
    out = []
    for where, node in fields.items_of(key):
        try:
            out.append(RouteTarget.from_text(str(_scalar(node))))
        except ValueError as exc:
            reader.problem(node, where, str(exc))
    return tuple(out)


def _evpn(reader: _Reader, node: yaml.Node) -> EvpnConfig:
    fields = _Fields(reader, node, "evpn")
    vnis = []
    seen: set[int] = set()
    for where, vni_node in fields.items_of("vnis"):
        vni_fields = _Fields(reader, vni_node, where)
        vni = vni_fields.number("vni", 0, 1, 0xFFFFFF, "a VNI", required=True) or 0
        if vni in seen:
            reader.problem(vni_node, f"{where}.vni", f"VNI {vni} is configured twice")
        seen.add(vni)
        rd = _rd(reader, vni_fields)
        macs = []
        for mac_where, mac_node in vni_fields.items_of("macs"):
            mac_fields = _Fields(reader, mac_node, mac_where)
            mac_text = mac_fields.text("mac", None)
            ip_text = mac_fields.address("ip", None)
            try:
                mac = mac_from_text(mac_text or "")
                ip = ipaddress.ip_address(ip_text).packed if ip_text else b""
                macs.append(StaticMac(mac, ip))
            except ValueError as exc:
                reader.problem(mac_node, f"{mac_where}.mac", str(exc))
            mac_fields.done()
        vnis.append(
            VniConfig(
                vni=vni,
                rd=rd,
                import_rts=_rts(reader, vni_fields, "import_rts"),
                export_rts=_rts(reader, vni_fields, "export_rts"),
                vtep_ip=vni_fields.address("vtep_ip", None),
                macs=tuple(macs),
            )
        )
        vni_fields.done()
    l3vnis: list[tuple[L3VniConfig, yaml.Node, str]] = []
    l3_node = fields.get("l3vni")
    if l3_node is not None:
        where = "evpn.l3vni"
        l3vnis.append((_l3vni(reader, _Fields(reader, l3_node, where), None), l3_node, where))
    vrfs_node = fields.get("vrfs")
    if vrfs_node is not None:
        vrfs = _Fields(reader, vrfs_node, "evpn.vrfs")
        for name in list(vrfs.items):
            vrf_node = vrfs.get(name)
            assert vrf_node is not None
            where = f"evpn.vrfs.{name}"
            l3vnis.append((_l3vni(reader, _Fields(reader, vrf_node, where), name), vrf_node, where))
    for l3, l3_at, where in l3vnis:
        if l3.vni in seen:
            reader.problem(l3_at, where, f"VNI {l3.vni} is configured twice (L2VNI or L3VNI)")
        seen.add(l3.vni)
    config = EvpnConfig(
        l3vnis=tuple(l3 for l3, _, _ in l3vnis),
        advertise_all_vni=fields.flag("advertise_all_vni", True),
        vtep_ip=fields.address("vtep_ip", None),
        vnis=tuple(vnis),
        program_kernel=fields.flag("program_kernel", True),
        flush_on_exit=fields.flag("flush_on_exit", False),
    )
    fields.done()
    return config
