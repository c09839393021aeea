"""What a reload changes, worked out from the running configuration and the new one. No I/O.

The rule (docs/configuration.md, "Reloading"): a reload applies the whole file or nothing. A
key the running daemon cannot change without a restart (its AS, its router id, where it
listens, where it keeps state) refuses the whole file with the keys named; everything else is
applied, sessions reset where what they negotiated changes, and the kernel brought to what a
daemon started with the new file would program.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields

from evpnd.config import Config, ListenRange, NeighborConfig

#: keys taken once at start: the AS and router id are in every session and route, the
#: listener, control socket and metrics endpoint are bound once, the state folder holds the RD
#: indexes, and without kernel programming at start there is no netlink shell to turn on
RESTART_ONLY = (
    "asn",
    "router_id",
    "listen_address",
    "listen_port",
    "control_socket",
    "control_group",
    "control_write_group",
    "state_dir",
    "metrics",
)
RESTART_ONLY_EVPN = ("program_kernel",)
#: keys every session negotiated (OPEN) or runs with: a change resets every session, as a
#: change to one neighbour's own settings resets that one
SESSION_WIDE = (
    "hold_time",
    "hostname",
    "graceful_restart_time",
    "graceful_notification",
    "stale_path_time",
)
#: a neighbour's keys that change nothing the session negotiated: changed in place
IN_PLACE = ("description", "max_routes", "connect_retry", "max_output_bytes")


@dataclass(frozen=True, slots=True)
class NeedsRestart:
    key: str
    running: object
    configured: object

    def __str__(self) -> str:
        return (
            f"{self.key}: {_text(self.running)} -> {_text(self.configured)} needs a restart "
            "(systemctl restart evpnd); nothing in this file was applied"
        )


def needs_restart(running: Config, new: Config) -> list[NeedsRestart]:
    """The keys whose change a reload cannot apply."""
    out = [
        NeedsRestart(key, getattr(running, key), getattr(new, key))
        for key in RESTART_ONLY
        if getattr(running, key) != getattr(new, key)
    ]
    out += [
        NeedsRestart(f"evpn.{key}", getattr(running.evpn, key), getattr(new.evpn, key))
        for key in RESTART_ONLY_EVPN
        if getattr(running.evpn, key) != getattr(new.evpn, key)
    ]
    return out


def session_wide(running: Config, new: Config) -> list[str]:
    """The keys of every session that changed (each session is reset to take them)."""
    return [key for key in SESSION_WIDE if getattr(running, key) != getattr(new, key)]


@dataclass(frozen=True, slots=True)
class NeighborChange:
    address: str
    #: "added", "removed", "reset" (a new session: what it negotiated changed), "updated"
    #: (changed in place)
    what: str
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        keys = f" ({', '.join(self.keys)})" if self.keys else ""
        return f"peer {self.address}: {self.what}{keys}"


def neighbor_changes(running: Config, new: Config, reset_all: bool) -> list[NeighborChange]:
    """Per configured neighbour: added, removed, reset or updated in place. `reset_all`: a
    session-wide key changed, and every remaining session is reset."""
    before = {n.address: n for n in running.neighbors}
    after = {n.address: n for n in new.neighbors}
    out: list[NeighborChange] = []
    for address, old in before.items():
        now = after.get(address)
        if now is None:
            out.append(NeighborChange(address, "removed"))
            continue
        keys = _differing(old, now)
        if keys and set(keys) <= set(IN_PLACE) and not reset_all:
            out.append(NeighborChange(address, "updated", keys))
        elif keys or reset_all:
            out.append(NeighborChange(address, "reset", keys or ("session-wide keys",)))
    out += [NeighborChange(a, "added") for a in after if a not in before]
    return out


def range_changes(running: Config, new: Config) -> list[str]:
    """Listen ranges added, removed or changed, in words."""
    before = {str(r.prefix): r for r in running.listen_ranges}
    after = {str(r.prefix): r for r in new.listen_ranges}
    out = [f"listen range {p}: removed" for p in before if p not in after]
    out += [f"listen range {p}: added" for p in after if p not in before]
    for prefix, old in before.items():
        now = after.get(prefix)
        if now is not None and now != old:
            out.append(f"listen range {prefix}: changed ({', '.join(_differing(old, now))})")
    return out


#: keys applied as they are, whose change the reload's answer names with both values: the
#: underlay's look-ups, the stop, which VNIs the kernel's count (their VNIs' lines follow)
PLAIN = ("resolve_via_default",)
PLAIN_EVPN = ("flush_on_exit", "advertise_all_vni", "vtep_ip")


def plain_changes(running: Config, new: Config) -> list[str]:
    """The keys of PLAIN and PLAIN_EVPN that changed, with both values."""
    out = [
        f"{key}: {_text(getattr(running, key))} -> {_text(getattr(new, key))}"
        for key in PLAIN
        if getattr(running, key) != getattr(new, key)
    ]
    out += [
        f"evpn.{key}: {_text(getattr(running.evpn, key))} -> {_text(getattr(new.evpn, key))}"
        for key in PLAIN_EVPN
        if getattr(running.evpn, key) != getattr(new.evpn, key)
    ]
    return out


def range_of(config: Config, address: str) -> ListenRange | None:
    """The listen range that accepts `address`: the most specific, as the kernel picks the
    range's MD5 key."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    chosen = [r for r in config.listen_ranges if ip.version == r.prefix.version and ip in r.prefix]
    return max(chosen, key=lambda r: r.prefix.prefixlen, default=None)


def _differing(
    old: NeighborConfig | ListenRange, new: NeighborConfig | ListenRange
) -> tuple[str, ...]:
    return tuple(f.name for f in fields(old) if getattr(old, f.name) != getattr(new, f.name))


def _text(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, tuple):
        return ":".join(str(v) for v in value)
    return str(value)
