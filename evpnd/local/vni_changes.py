"""How this VTEP's VNIs changed between two originations (a reload, VNIs found or gone), in
the words a reload answers with, and whether what they import changed. No I/O."""

from __future__ import annotations

from collections.abc import Sequence

from evpnd.evpn.extcommunities import RouteTarget
from evpnd.local.origination import L3Vni, Vni

#: what decides which VNIs a received path is imported into
ImportRules = tuple[tuple[int, tuple[RouteTarget, ...]], ...]


def import_rules(vnis: Sequence[Vni]) -> ImportRules:
    """Each VNI with its import RTs (empty: auto, *:VNI): equal rules import the same paths."""
    return tuple(sorted((v.vni, v.import_rts) for v in vnis))


def describe(before: Sequence[Vni], after: Sequence[Vni], kind: str = "VNI") -> list[str]:
    """One line per VNI added, removed or changed (RD, import or export RTs, VTEP address,
    and for L3VNIs the Type 5 prefixes announced)."""
    old = {v.vni: v for v in before}
    new = {v.vni: v for v in after}
    out = [f"{kind} {n}: removed" for n in sorted(old.keys() - new.keys())]
    out += [
        f"{kind} {n}: added (RD {new[n].rd}, {_rts(new[n])})"
        for n in sorted(new.keys() - old.keys())
    ]
    for number in sorted(old.keys() & new.keys()):
        was, now = old[number], new[number]
        words = []
        if was.rd != now.rd:
            words.append(f"RD {was.rd} -> {now.rd}")
        if was.import_rts != now.import_rts:
            words.append(f"import RTs {_imports(was)} -> {_imports(now)}")
        if was.export_rts != now.export_rts:
            words.append(f"export RTs {_list(was.export_rts)} -> {_list(now.export_rts)}")
        if was.vtep_ip != now.vtep_ip:
            words.append(f"VTEP address {was.vtep_ip} -> {now.vtep_ip}")
        if isinstance(was, L3Vni) and isinstance(now, L3Vni) and was.prefixes != now.prefixes:
            added = [str(p) for p in now.prefixes if p not in was.prefixes]
            gone = [str(p) for p in was.prefixes if p not in now.prefixes]
            words.append(
                "Type 5 prefixes " + " ".join([*(f"+{p}" for p in added), *(f"-{p}" for p in gone)])
            )
        if words:
            out.append(f"{kind} {number}: " + "; ".join(words))
    return out


def _rts(vni: Vni) -> str:
    return f"import {_imports(vni)}, export {_list(vni.export_rts)}"


def _imports(vni: Vni) -> str:
    return _list(vni.import_rts) if vni.import_rts else f"auto (*:{vni.vni})"


def _list(rts: Sequence[RouteTarget]) -> str:
    return ", ".join(rt.value for rt in rts) or "none"
