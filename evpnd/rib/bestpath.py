"""Best-path selection: RFC 4271 §9.1.2.2 with RFC 4456 and the EVPN rules of RFC 7432 §15."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from evpnd.bgp.attributes import PathAttributes
from evpnd.evpn.extcommunities import MacMobility
from evpnd.rib.paths import Path

DEFAULT_LOCAL_PREF = 100


def mobility(attrs: PathAttributes) -> tuple[int, int]:
    """(sticky, sequence): sticky first, since RFC 7432 §15.2 says a static MAC is never moved
    by a higher sequence number."""
    for community in attrs.ext_communities:
        if isinstance(community, MacMobility):
            return (1 if community.sticky else 0, community.sequence)
    return (0, 0)


#: MAC Mobility sequence numbers are 32 bits (RFC 7432 §7.7) and RFC 7432 says nothing of
#: their wrapping. Our rule (speaker.md): as RFC 1982's serial numbers, two numbers more than
#: 2^31 apart are taken as having wrapped — the smaller one is the newer — so after
#: 4,294,967,295 moves the next one, 0, still wins.
SEQUENCE_SPACE = 1 << 32
_HALF = 1 << 31


def newer(a: int, b: int) -> bool:
    """Sequence number `a` came after `b`."""
    return a != b and (a > b) == (abs(a - b) <= _HALF)


def unwrapped(sequences: list[int]) -> Callable[[int], int]:
    """For ranking a MAC's routes: each number as a point on one line, the wrapped ones (the
    small numbers, when the group spans more than 2^31) counted from 2^32 up."""
    if sequences and max(sequences) - min(sequences) > _HALF:
        return lambda s: s + SEQUENCE_SPACE if s < _HALF else s
    return same


def same(sequence: int) -> int:
    return sequence


def following(sequences: list[int]) -> int:
    """The number a move announces: one after the newest of `sequences`, wrapping at 2^32."""
    line = unwrapped(sequences)
    return (max(line(s) for s in sequences) + 1) % SEQUENCE_SPACE


def _address_key(name: str) -> tuple[int, int]:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return (0, 0)  # "local"
    return (address.version, int(address))


def _before_med(path: Path) -> tuple[object, ...]:
    attrs = path.attributes
    return (
        not path.stale,  # RFC 4724: a stale path loses to any fresh one
        *mobility(attrs),
        attrs.local_pref if attrs.local_pref is not None else DEFAULT_LOCAL_PREF,
        path.source.is_local,
        -(attrs.as_path.length if attrs.as_path is not None else 0),
        -(attrs.origin if attrs.origin is not None else 2),
    )


def _after_med(path: Path) -> tuple[object, ...]:
    attrs = path.attributes
    source = path.source
    originator = attrs.originator_id
    # RFC 4456 §9: a reflected route is judged by its ORIGINATOR_ID, then by CLUSTER_LIST length.
    router_id = int.from_bytes(originator, "big") if originator else source.router_id_int
    return (
        not source.ibgp,
        -router_id,
        -len(attrs.cluster_list),
        tuple(-x for x in _address_key(source.name)),
    )


def compare(a: Path, b: Path) -> int:
    """Positive when `a` is better than `b` (RFC 4271 §9.1.2.2 in order)."""
    ka, kb = _before_med(a), _before_med(b)
    if ka != kb:
        if ka[:2] == kb[:2] and abs(ka[2] - kb[2]) > _HALF:  # type: ignore[operator]
            return 1 if newer(ka[2], kb[2]) else -1  # type: ignore[arg-type]
        return 1 if ka > kb else -1
    path_a, path_b = a.attributes.as_path, b.attributes.as_path
    first_a = path_a.first_as if path_a is not None else None
    first_b = path_b.first_as if path_b is not None else None
    if first_a == first_b:
        # MED only between routes from the same neighbouring AS; lower wins, absent is 0.
        med_a, med_b = a.attributes.med or 0, b.attributes.med or 0
        if med_a != med_b:
            return 1 if med_a < med_b else -1
    ka, kb = _after_med(a), _after_med(b)
    if ka != kb:
        return 1 if ka > kb else -1
    return 0


def best(paths: list[Path]) -> Path | None:
    if not paths:
        return None
    winner = paths[0]
    for path in paths[1:]:
        if compare(path, winner) > 0:
            winner = path
    return winner


#: what decides, step by step, in _before_med's and _after_med's order (`show routes --detail`)
_BEFORE_MED_STEPS = (
    "not stale",
    "sticky MAC",
    "higher MAC mobility sequence",
    "higher local preference",
    "locally originated",
    "shorter AS path",
    "lower origin",
)
_AFTER_MED_STEPS = (
    "eBGP over iBGP",
    "lower router id",
    "shorter cluster list",
    "lower peer address",
)


def reason(winner: Path, others: list[Path]) -> str:
    """Why `winner` is the best path: the first step that sets it apart from the runner-up
    (FRR's "best (…)")."""
    rest = [p for p in others if p is not winner]
    if not rest:
        return "only path"
    runner_up = best(rest)
    assert runner_up is not None
    for steps, key in ((_BEFORE_MED_STEPS, _before_med), (_AFTER_MED_STEPS, _after_med)):
        if steps is _AFTER_MED_STEPS:
            med_w, med_r = winner.attributes.med or 0, runner_up.attributes.med or 0
            if med_w != med_r and compare(winner, runner_up) > 0:
                first_w = winner.attributes.as_path.first_as if winner.attributes.as_path else None
                first_r = (
                    runner_up.attributes.as_path.first_as if runner_up.attributes.as_path else None
                )
                if first_w == first_r:
                    return "lower MED"
        for step, a, b in zip(steps, key(winner), key(runner_up), strict=True):
            if a != b:
                return step
    return "equal: first received"
