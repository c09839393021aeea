"""A reload leaves the kernel exact, against the real kernel: two evpnd VTEPs, a host behind
each, and each kind of configuration change a reload can make — what a VNI imports, what it
exports, its RD, which VNIs there are — followed until every entry is what a daemon started
with the new file would program, and back. A key that needs a restart refuses the whole
file. (Symmetric IRB's L3VNI changes: tests/test_irb.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.netns import LAB, Evpnd, lab, wait_for
from tests.test_dataplane import H1_MAC, H2_MAC, Fabric, two_vteps

pytestmark = LAB

BASE = """asn: 65000
router_id: {me}
listen: {{address: "{me}", port: 179}}
neighbors:
  - {{address: {other}, remote_as: 65000, connect_retry: 1}}
"""
A, B = "192.168.57.1", "192.168.57.2"


def rewrite(daemon: Evpnd, me: str, other: str, evpn: str = "") -> None:
    """The daemon's file as a new one: the base, plus an `evpn:` section."""
    text = BASE.format(me=me, other=other) + evpn
    text += f"\ncontrol_socket: {daemon.socket}\nstate_dir: {daemon.home}\n"
    (daemon.home / "evpnd.yaml").write_text(text)


def entries(fab: Fabric, ns: str) -> set[str]:
    """evpnd's entries on VNI 100 as the kernel has them: the remote MACs' two FDB halves, the
    flood entries and the ARP-suppression neighbours — each as a line of `bridge`/`ip`."""
    out = set()
    for line in fab.lab.run(ns, "bridge", "fdb", "show", "dev", "vxlan100").splitlines():
        if "extern_learn" in line or ("permanent" in line and "dst" in line):
            out.add(re.sub(r"\s+", " ", line.strip()))
    for line in fab.lab.run(ns, "ip", "neigh", "show", "dev", "br100").splitlines():
        if "extern_learn" in line:
            out.add(re.sub(r"\s+", " ", line.strip()))
    return out


def remote_of(vtep: str, mac: str, ip: str) -> set[str]:
    """What a VTEP holds for the other VTEP's VNI 100 and its host, in FRR's form."""
    return {
        f"{mac} master br100 extern_learn",
        f"{mac} dst {vtep} self extern_learn",
        f"00:00:00:00:00:00 dst {vtep} self permanent",
        f"{ip} lladdr {mac} extern_learn NOARP",
    }


def normal(lines: set[str]) -> set[str]:
    """Flags in a fixed order (iproute2 prints `extern_learn master br100` for the bridge
    half; both orders are the same entry)."""
    return {" ".join(sorted(line.split())) for line in lines}


def exact(fab: Fabric, ns: str, want: set[str]) -> bool:
    return normal(entries(fab, ns)) == normal(want)


def in_sync(daemon: Evpnd) -> bool:
    kernel = daemon.ctl("show", "kernel", check=False)
    return bool(kernel["in_sync"]) and not kernel["wish_differences"]


@pytest.fixture
def fabric() -> Iterator[Fabric]:
    with lab() as the_lab:
        v1, v2, h1, h2 = two_vteps(the_lab, "192.168.57")
        e1 = the_lab.evpnd(v1, "e1", BASE.format(me=A, other=B))
        e2 = the_lab.evpnd(v2, "e2", BASE.format(me=B, other=A))
        wait_for("Established", lambda: e1.peer_state(B) == "Established", 30)
        the_lab.run(h1, "ping", "-c1", "-W1", "10.0.100.1")
        the_lab.run(h2, "ping", "-c1", "-W1", "10.0.100.2")
        fab = Fabric(the_lab, v1, v2, h1, h2, e1, e2)
        wait_for("v1's entries", lambda: exact(fab, v1, FROM_B), 30)
        wait_for("v2's entries", lambda: exact(fab, v2, FROM_A), 30)
        yield fab


FROM_B = remote_of(B, H2_MAC, "10.0.100.12")
FROM_A = remote_of(A, H1_MAC, "10.0.100.11")


def reload(daemon: Evpnd) -> dict[str, object]:
    answer = daemon.ctl("reload", check=False)
    assert isinstance(answer, dict)
    return answer


def test_import_rts_changed_by_a_reload(fabric: Fabric) -> None:
    """The issue's case: VNI 100 stops importing the fabric's routes — every entry they made
    goes, in the kernel and in evpnctl; the other side names the mismatch; back again."""
    e1 = fabric.e1
    rewrite(e1, A, B, 'evpn: {vnis: [{vni: 100, import_rts: ["65000:999"]}]}\n')
    answer = reload(e1)
    assert answer["reloaded"], answer
    changes = "\n".join(answer["changes"])  # type: ignore[arg-type]
    assert "VNI 100: import RTs auto (*:100) -> 65000:999" in changes
    assert "kernel: imports worked out again" in changes
    wait_for("v1's entries from v2 to go", lambda: exact(fabric, fabric.v1, set()), 15)
    wait_for("v1 in sync", lambda: in_sync(e1), 15)
    assert H2_MAC not in {m["mac"] for m in e1.ctl("show", "mac")}  # nor in evpnctl's view
    # doctor names the VTEP whose routes v1 no longer imports, with their RT
    findings = e1.ctl("doctor", check=False)["findings"]
    assert any(B in str(f) and "65000:100" in str(f) for f in findings), findings
    # v2 still imports v1's routes (export stays auto, 65000:100)
    assert exact(fabric, fabric.v2, FROM_A)
    rewrite(e1, A, B)
    assert reload(e1)["reloaded"]
    wait_for("v1's entries back", lambda: exact(fabric, fabric.v1, FROM_B), 15)
    wait_for("v1 in sync", lambda: in_sync(e1), 15)
    fabric.lab.run(fabric.h1, "ping", "-c1", "-W2", "10.0.100.12")


def test_export_rts_changed_by_a_reload(fabric: Fabric) -> None:
    """v1 exports 65000:999 instead: v2 (auto import, *:100) takes none of v1's routes, and
    imports them again when v1 exports both."""
    e1 = fabric.e1
    rewrite(e1, A, B, 'evpn: {vnis: [{vni: 100, export_rts: ["65000:999"]}]}\n')
    answer = reload(e1)
    assert "VNI 100: export RTs 65000:100 -> 65000:999" in "\n".join(answer["changes"])  # type: ignore[arg-type]
    wait_for("v2's entries from v1 to go", lambda: exact(fabric, fabric.v2, set()), 15)
    assert exact(fabric, fabric.v1, FROM_B)
    # the receiving side names v1 and the RT it now carries (doctor on every side)
    findings = fabric.e2.ctl("doctor", check=False)["findings"]
    assert any(A in str(f) and "65000:999" in str(f) for f in findings), findings
    rewrite(e1, A, B, 'evpn: {vnis: [{vni: 100, export_rts: ["65000:999", "65000:100"]}]}\n')
    assert reload(e1)["reloaded"]
    wait_for("v2's entries back", lambda: exact(fabric, fabric.v2, FROM_A), 15)
    wait_for("v2 in sync", lambda: in_sync(fabric.e2), 15)


def test_rd_changed_by_a_reload(fabric: Fabric) -> None:
    """A new RD: every route of v1's VNI 100 is withdrawn under the old RD and announced under
    the new one; v2's RIB holds only the new ones and its kernel the same entries."""
    e1, e2 = fabric.e1, fabric.e2
    rewrite(e1, A, B, 'evpn: {vnis: [{vni: 100, rd: "65000:77"}]}\n')
    answer = reload(e1)
    assert answer["reloaded"]
    assert re.search(r"VNI 100: RD \S+ -> 65000:77", "\n".join(answer["changes"]))  # type: ignore[arg-type]

    def rds_at_v2() -> set[str]:
        return {r["rd"] for r in e2.routes() if r["source"] != "local"}

    wait_for(
        "v2 to hold v1's routes under the new RD only", lambda: rds_at_v2() == {"65000:77"}, 15
    )
    wait_for("v2 in sync", lambda: in_sync(e2), 15)
    assert exact(fabric, fabric.v2, FROM_A)


def test_the_vni_list_changed_by_a_reload(fabric: Fabric) -> None:
    """advertise_all_vni off with no VNI configured: v1 has no VNI — its routes go from v2's
    kernel and v2's from its own; a VNI list naming 100 brings both back."""
    e1 = fabric.e1
    rewrite(e1, A, B, "evpn: {advertise_all_vni: false}\n")
    answer = reload(e1)
    assert "VNI 100: removed" in answer["changes"], answer
    wait_for("v1's entries to go", lambda: exact(fabric, fabric.v1, set()), 15)
    wait_for("v2's entries from v1 to go", lambda: exact(fabric, fabric.v2, set()), 15)
    wait_for("v1 in sync", lambda: in_sync(e1), 15)
    rewrite(e1, A, B, "evpn: {advertise_all_vni: false, vnis: [{vni: 100}]}\n")
    answer = reload(e1)
    assert any(c.startswith("VNI 100: added") for c in answer["changes"]), answer  # type: ignore[attr-defined]
    wait_for("v1's entries back", lambda: exact(fabric, fabric.v1, FROM_B), 15)
    wait_for("v2's entries back", lambda: exact(fabric, fabric.v2, FROM_A), 15)


def test_a_key_that_needs_a_restart_refuses_the_whole_file(fabric: Fabric) -> None:
    """A new AS beside a change that could be applied: nothing is applied, evpnctl exits 1
    and names the key, the log says so at warning level."""
    e1 = fabric.e1
    text = BASE.format(me=A, other=B).replace("asn: 65000", "asn: 65001")
    text += 'evpn: {vnis: [{vni: 100, import_rts: ["65000:999"]}]}\n'
    text += f"control_socket: {e1.socket}\nstate_dir: {e1.home}\n"
    (e1.home / "evpnd.yaml").write_text(text)
    text = subprocess.run(
        [sys.executable, "-m", "evpnd.control.cli", "-s", e1.socket, "reload"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert text.returncode == 1 and "asn: 65000 -> 65001 needs a restart" in text.stdout
    answer = reload(e1)
    assert not answer["reloaded"]
    assert any("asn: 65000 -> 65001 needs a restart" in p for p in answer["problems"])  # type: ignore[attr-defined]
    lines = [json.loads(x) for x in e1.log.read_text().splitlines() if "reload refused" in x]
    assert len(lines) == 2  # (asked twice above)
    assert all(line["level"] == "warning" and "asn" in line["problems"][0] for line in lines)
    # nothing applied: the import RTs are the old ones, the entries stay
    assert exact(fabric, fabric.v1, FROM_B)
    assert e1.ctl("show", "summary")["asn"] == 65000
