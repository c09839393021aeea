"""Every evpnctl command against a running two-VTEP fabric, as tables and as JSON, with the exit
codes scripts rely on, the live event stream, and who may change things."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from evpnd.control.tables import format_event
from tests.as_user import Runtime, readable_runtime
from tests.netns import LAB, ROOT, Evpnd, Lab, lab, listed_before_repair, wait_for
from tests.test_dataplane import H1_MAC, H2_MAC, two_vteps, vtep_config

pytestmark = LAB

UNDERLAY = "192.168.57"


class Two:
    def __init__(self, the_lab: Lab, v1: str, v2: str, h2: str, e1: Evpnd, e2: Evpnd) -> None:
        self.lab, self.v1, self.v2, self.h2, self.e1, self.e2 = the_lab, v1, v2, h2, e1, e2


@pytest.fixture(scope="module")
def two() -> Iterator[Two]:
    with lab() as the_lab:
        v1, v2, h1, h2 = two_vteps(the_lab, UNDERLAY)
        e1 = the_lab.evpnd(
            v1, "e1", vtep_config(f"{UNDERLAY}.1", f"{UNDERLAY}.2") + "control_group: nogroup\n"
        )
        e2 = the_lab.evpnd(v2, "e2", vtep_config(f"{UNDERLAY}.2", f"{UNDERLAY}.1"))
        wait_for("Established", lambda: e1.peer_state(f"{UNDERLAY}.2") == "Established", 30)
        the_lab.run(h1, "ping", "-c1", "-W1", "10.0.100.1")
        the_lab.run(h2, "ping", "-c1", "-W1", "10.0.100.2")
        wait_for(
            "h2's MAC/IP at e1",
            lambda: any(n["ip"] == "10.0.100.12" for n in e1.ctl("show", "neigh")),
            30,
        )
        yield Two(the_lab, v1, v2, h2, e1, e2)


def ctl(
    daemon: Evpnd, *args: str, user: tuple[str, Runtime] | None = None
) -> subprocess.CompletedProcess[str]:
    """evpnctl ARGS; as `user`, with a copy of evpnd that user can read (tests/as_user.py)."""
    command = [sys.executable, "-m", "evpnd.control.cli", "-s", daemon.socket, *args]
    if user is None:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT)
    name, runtime = user
    command = ["setpriv", f"--reuid={name}", "--regid=nogroup", "--init-groups", runtime.python,
               *command[1:]]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=30, cwd=runtime.folder, env=runtime.env
    )


def both(daemon: Evpnd, *args: str) -> tuple[str, object]:
    table = ctl(daemon, *args)
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stderr
    as_json = ctl(daemon, *args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    return table.stdout, json.loads(as_json.stdout)


def test_show_commands_as_tables_and_json(two: Two) -> None:
    peer = f"{UNDERLAY}.2"
    table, peers = both(two.e1, "show", "peers")
    assert isinstance(peers, list) and peers[0]["address"] == peer
    assert peers[0]["state"] == "Established" and peers[0]["routes_received"] >= 3
    assert table.splitlines()[0].split()[:3] == ["Neighbor", "AS", "State"]
    assert f"{peer}  65000  Established" in table

    table, routes = both(two.e1, "show", "routes", "--type", "2", "--mac", H2_MAC)
    assert isinstance(routes, list) and {r["ip"] for r in routes} == {None, "10.0.100.12"}
    assert all(r["source"] == peer and r["vni"] == 100 for r in routes)
    assert f"[2]:[0]:[48]:[{H2_MAC}]:[32]:[10.0.100.12]" in table
    assert "2 paths; > best" in table
    _, type3 = both(two.e1, "show", "routes", "--type", "3", "--vni", "100")
    assert isinstance(type3, list) and {r["source"] for r in type3} == {"local", peer}

    table, vnis = both(two.e1, "show", "vni")
    assert isinstance(vnis, list) and vnis[0]["remote_vteps"] == [peer]
    row = table.splitlines()[1].split()
    assert row[:5] == ["100", "L2", "vxlan100", "br100", f"{UNDERLAY}.1"]
    assert vnis[0]["import_rts"] == ["auto"] and "auto" in row

    table, macs = both(two.e1, "show", "mac", "--vni", "100")
    assert isinstance(macs, list)
    assert {(m["mac"], m["type"]) for m in macs} == {(H1_MAC, "local"), (H2_MAC, "remote")}
    assert f"100  {H2_MAC}  remote  {peer}" in table
    (local,) = [m for m in macs if m["type"] == "local"]
    # a local MAC's bridge port, as the kernel names it
    assert local["port"] and local["port"] in two.lab.run(
        two.v1, "bridge", "fdb", "show", "br", "br100"
    )
    assert f"100  {H1_MAC}  local   {local['port']}" in table

    table, neighs = both(two.e1, "show", "neigh")
    assert isinstance(neighs, list)
    assert {(n["ip"], n["mac"], n["type"]) for n in neighs if n["ip"].startswith("10.")} == {
        ("10.0.100.11", H1_MAC, "local"),
        ("10.0.100.12", H2_MAC, "remote"),
    }
    assert f"10.0.100.12  {H2_MAC}  remote  {peer}" in table

    table, summary = both(two.e1, "show", "summary")
    assert isinstance(summary, dict) and summary["asn"] == 65000
    assert f"AS 65000, router id {UNDERLAY}.1" in table

    wait_for("e1 in sync", lambda: ctl(two.e1, "show", "kernel").returncode == 0, 30)
    table, kernel = both(two.e1, "show", "kernel")
    assert isinstance(kernel, dict) and kernel["in_sync"] and kernel["differences"] == []
    assert kernel["wanted"]["fdb"] >= 1 and kernel["wanted"] == kernel["kernel"]
    assert table.rstrip().endswith("in sync")


def test_frr_habits_print_the_same_data_in_frr_layouts(two: Two) -> None:
    """vtysh's commands, shortened as vtysh allows, beside the native ones: FRR's layout on
    the terminal, FRR's JSON keys with --json (test_frr_json.py checks them against FRR's)."""
    peer = f"{UNDERLAY}.2"
    summary, peers = both(two.e1, "sh", "bgp", "sum")
    assert list(peers["l2VpnEvpn"]["peers"]) == [peer]
    assert peers["l2VpnEvpn"]["peers"][peer]["state"] == "Established"
    assert "local AS number 65000" in summary and "Total number of neighbors 1" in summary
    assert summary.splitlines()[2].split()[:3] == ["Neighbor", "V", "AS"]
    assert summary.splitlines()[3].split()[:3] == [peer, "4", "65000"]
    evpn_summary, family = both(two.e1, "sh", "bgp", "l2", "ev", "sum")
    assert family["peers"][peer]["pfxRcd"] >= 3 and "TblVer" in evpn_summary

    detail, neighbor = both(two.e1, "show", "bgp", "neighbors", peer)
    assert neighbor[peer]["bgpState"] == "Established"
    assert neighbor[peer]["neighborCapabilities"]["multiprotocolExtensions"] == {
        "l2VpnEvpn": {"advertisedAndReceived": True}
    }
    assert f"BGP neighbor is {peer}, remote AS 65000" in detail
    assert "BGP state = Established" in detail and "Foreign host: " + peer in detail
    native = two.e1.ctl("show", "peers", peer)  # evpnd's own JSON of one peer
    assert native["capabilities"]["families"] == ["25/70"]

    evpn = ctl(two.e1, "show", "bgp", "l2vpn", "evpn", "route", "type", "macip").stdout
    assert f"Route Distinguisher: {peer}:" in evpn and "ET:8" in evpn
    assert f"[2]:[0]:[48]:[{H2_MAC}]:[32]:[10.0.100.12]" in evpn and "*>i[3]:" not in evpn
    detail_json = json.loads(
        ctl(two.e1, "show", "routes", "--mac", H2_MAC, "--detail", "--json").stdout
    )
    assert {r["best_reason"] for r in detail_json} == {"only path"}
    detail_text = ctl(two.e1, "show", "routes", "--mac", H2_MAC, "detail").stdout
    assert "best (only path)" in detail_text and "  last update: 00:" in detail_text
    assert all(r["received_ago_s"] >= 0 for r in detail_json)
    in_vni, in_vni_json = both(two.e1, "show", "bgp", "l2vpn", "evpn", "route", "vni", "100")
    assert "Route Distinguisher" not in in_vni and f"[2]:[0]:[48]:[{H2_MAC}]" in in_vni
    assert in_vni_json["numPrefix"] == 6  # both VTEPs' MAC, MAC/IP and multicast routes
    rd = next(r["rd"] for r in detail_json)
    by_rd, by_rd_json = both(two.e1, "show", "bgp", "l2vpn", "evpn", "route", "rd", rd)
    assert f"BGP routing table entry for {rd}:[2]:[0]:[48]:[{H2_MAC}]" in by_rd
    assert list(by_rd_json) == [rd, "numPrefix", "numPaths"]
    received, received_json = both(two.e1, "show", "bgp", "neighbors", peer, "routes")
    assert "out of" in received and received_json["numPrefix"] == 3
    sent, sent_json = both(two.e1, "show", "bgp", "neighbors", peer, "advertised-routes")
    assert "Total number of prefixes 3" in sent and sent_json["totalPrefixCounter"] == 3

    vni = ctl(two.e1, "show", "evpn", "vni", "100").stdout
    assert "VNI: 100" in vni and f"{peer} flood: HER" in vni
    listing, listing_json = both(two.e1, "show", "evpn", "vni")
    assert listing.splitlines()[0].split()[:5] == ["VNI", "Type", "VxLAN", "IF", "#"]
    assert "# ARPs" in listing and listing.splitlines()[1].split()[:5] == [
        "100", "L2", "vxlan100", "2", "2"
    ]  # fmt: skip
    assert listing_json["100"]["numArpNd"] == 2 and listing_json["100"]["remoteVteps"] == [peer]
    bgp_vni, bgp_vni_json = both(two.e1, "show", "bgp", "l2vpn", "evpn", "vni", "100")
    assert "Import Route Target:" in bgp_vni and bgp_vni_json["exportRts"] == ["65000:100"]

    macs, as_json = both(two.e1, "show", "evpn", "mac", "vni", "all")
    assert "VNI 100 #MACs (local and remote) 2" in macs and H2_MAC in macs and peer in macs
    assert as_json["100"]["macs"][H2_MAC]["remoteVtep"] == peer
    one, one_json = both(two.e1, "show", "evpn", "mac", "vni", "100", "mac", H2_MAC)
    assert one.startswith(f"MAC: {H2_MAC}") and "10.0.100.12 Active" in one
    assert one_json[H2_MAC]["neighbors"]["active"] == ["10.0.100.12"]
    theirs, _ = both(two.e1, "show", "evpn", "mac", "vni", "all", "vtep", peer)
    assert H2_MAC in theirs and H1_MAC not in theirs
    arp, arp_json = both(two.e1, "show", "evpn", "arp-cache", "vni", "100")
    assert arp_json["numArpNd"] == 2 and arp_json["10.0.100.12"]["mac"] == H2_MAC
    assert "10.0.100.12" in arp
    rmac = ctl(two.e1, "show", "evpn", "rmac", "vni", "all")
    assert rmac.returncode == 0 and "no Router's MACs" in rmac.stdout  # no L3VNI here
    bad = ctl(two.e1, "show", "evpn", "mac", "vni", "zero")
    assert bad.returncode == 2 and "'zero' is no VNI" in bad.stderr

    config, config_json = both(two.e1, "show", "running-config")
    assert "YAML" in config.splitlines()[0] and config_json["asn"] == 65000
    version, version_json = both(two.e1, "show", "version")
    assert version.startswith("evpnd ") and version_json["version"] in version


def test_a_vni_lists_only_the_macs_it_imports() -> None:
    """A remote MAC whose route carries RTs the VNI does not import is in the RIB, but in no
    VNI: `show evpn mac`, `arp-cache`, `show mac` and the VNI's counts leave it out."""
    underlay = "192.168.74"
    with lab() as the_lab:
        v1, v2, h1, h2 = two_vteps(the_lab, underlay)
        e1 = the_lab.evpnd(v1, "e1", vtep_config(f"{underlay}.1", f"{underlay}.2"))
        other_rt = (
            'evpn: {vnis: [{vni: 100, import_rts: ["65000:999"], export_rts: ["65000:999"]}]}'
        )
        e2 = the_lab.evpnd(v2, "e2", vtep_config(f"{underlay}.2", f"{underlay}.1") + other_rt)
        wait_for("Established", lambda: e1.peer_state(f"{underlay}.2") == "Established", 30)
        the_lab.run(h1, "ping", "-c1", "-W1", "10.0.100.1")
        the_lab.run(h2, "ping", "-c1", "-W1", "10.0.100.2")
        # (a positive sign first: h2's MAC/IP route has reached e1's RIB, and h1's is listed)
        wait_for(
            "h2's MAC/IP route at e1",
            lambda: any(r["ip"] == "10.0.100.12" for r in e1.routes(mac=H2_MAC)),
            30,
        )
        wait_for(
            "h1's binding at e1",
            lambda: any(n["ip"] == "10.0.100.11" for n in e1.ctl("show", "neigh")),
            30,
        )
        assert all(r["imported_by"] == [] for r in e1.routes(mac=H2_MAC))
        macs = e1.ctl("show", "evpn", "mac", "vni", "100")["macs"]
        assert H1_MAC in macs and H2_MAC not in macs
        assert H2_MAC not in json.dumps(e1.ctl("show", "evpn", "mac", "vni", "all"))
        assert "10.0.100.12" not in e1.ctl("show", "evpn", "arp-cache", "vni", "100")
        assert all(m["mac"] != H2_MAC for m in e1.ctl("show", "mac"))
        counts = e1.ctl("show", "evpn", "vni")["100"]
        assert (counts["numMacs"], counts["numArpNd"]) == (1, 1)
        table = e1.ctl("show", "bgp", "l2vpn", "evpn", "route", "vni", "100")
        assert not any(H2_MAC in prefix for prefix in table)
        # e2 imports only 65000:999: e1's MACs are in none of its VNIs either
        assert H1_MAC not in e2.ctl("show", "evpn", "mac", "vni", "100")["macs"]


def test_show_kernel_reports_a_difference_with_exit_code_1(two: Two) -> None:
    # An entry that looks like evpnd's (extern_learn, on its vxlan port) but no route backs:
    # show kernel lists it until the next reconciliation removes it.
    # (The periodic reconciliation may remove it before evpnctl looks: then add it again.)
    stray = "02:00:00:00:99:99"
    row = {
        "kind": "fdb",
        "vni": 100,
        "device": "vxlan100",
        "entry": stray,
        "wanted": None,
        "kernel": "dst 192.0.2.99, no bridge entry",
    }
    answers: list[subprocess.CompletedProcess[str]] = []

    def listed() -> bool:
        answers[:] = [ctl(two.e1, "show", "kernel", "--json"), ctl(two.e1, "show", "kernel")]
        return row in json.loads(answers[0].stdout)["differences"] and stray in answers[1].stdout

    listed_before_repair(
        lambda: two.lab.run(
            two.v1,
            "bridge",
            "fdb",
            "replace",
            stray,
            "dev",
            "vxlan100",
            "dst",
            "192.0.2.99",
            "self",
            "extern_learn",
        ),
        listed,
    )
    result, table = answers
    assert result.returncode == 1, result.stdout + result.stderr
    assert table.returncode == 1
    assert f"fdb   100  vxlan100  {stray}  (none)" in table.stdout
    # the periodic reconciliation (every 10 s) takes it away again
    wait_for("the stray entry removed", lambda: ctl(two.e1, "show", "kernel").returncode == 0, 30)
    assert stray not in two.lab.run(two.v1, "bridge", "fdb", "show", "dev", "vxlan100")


def _sessions(daemon: Evpnd, address: str) -> int:
    """How many sessions with the peer have reached Established: a reset adds one."""
    (peer,) = [p for p in daemon.ctl("show", "peers") if p["address"] == address]
    return int(peer["sessions_established"])


def test_clear_peer_soft_keeps_the_session_hard_resets_it(two: Two) -> None:
    peer = f"{UNDERLAY}.2"
    before = _sessions(two.e1, peer)
    soft = ctl(two.e1, "clear", "peer", peer, "--soft")
    assert soft.returncode == 0, soft.stderr
    assert "sent" in soft.stdout and "asked for the peer's" in soft.stdout
    assert two.e1.peer_state(peer) == "Established" and _sessions(two.e1, peer) == before
    hard = ctl(two.e1, "clear", "peer", peer, "--json")
    assert hard.returncode == 0 and json.loads(hard.stdout)["action"] == "reset"
    wait_for("a new session", lambda: _sessions(two.e1, peer) == before + 1, 30)
    wait_for("the session back", lambda: two.e1.peer_state(peer) == "Established", 30)
    missing = ctl(two.e1, "clear", "peer", "192.0.2.200")
    assert missing.returncode == 1 and "no peer '192.0.2.200'" in missing.stderr


def test_reload_refuses_a_broken_file_and_applies_a_good_one(two: Two) -> None:
    config = Path(two.e1.home) / "evpnd.yaml"
    good = config.read_text()
    try:
        config.write_text(good.replace("asn: 65000", "asn: 650o0"))
        refused = ctl(two.e1, "reload")
        assert refused.returncode == 1
        assert "reload refused" in refused.stdout and "asn" in refused.stdout
        assert two.e1.peer_state(f"{UNDERLAY}.2") == "Established"
        extra = "  - {address: 192.0.2.77, remote_as: 65000, passive: true}\n"
        config.write_text(good.replace("neighbors:\n", "neighbors:\n" + extra))
        done = ctl(two.e1, "reload", "--json")
        assert done.returncode == 0 and json.loads(done.stdout) == {
            "reloaded": True,
            "problems": [],
            "changes": ["peer 192.0.2.77: added"],
        }
        assert "192.0.2.77" in {p["address"] for p in two.e1.ctl("show", "peers")}
    finally:
        config.write_text(good)
        ctl(two.e1, "reload")


def test_watch_streams_route_mac_and_peer_events(two: Two) -> None:
    command = [sys.executable, "-m", "evpnd.control.cli", "-s", two.e1.socket, "watch", "--json"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def peer_back() -> bool:
        events = [json.loads(line) for line in list(lines)]
        return any(e["event"] == "peer" and e.get("state") == "Established" for e in events)

    peer = f"{UNDERLAY}.2"
    mac = "02:00:00:00:77:77"
    port = f"p{two.lab.tag}{two.h2[-2:]}"
    try:
        assert process.stderr.readline().startswith("evpnctl: watching")  # subscribed
        # an orchestrator adds a MAC at the other VTEP, then removes it
        two.lab.run(two.v2, "bridge", "fdb", "add", mac, "dev", port, "master", "static")
        wait_for("the MAC at e1", lambda: two.e1.routes(mac=mac), 10)
        two.lab.run(two.v2, "bridge", "fdb", "del", mac, "dev", port, "master", "static")
        wait_for("the MAC gone at e1", lambda: not two.e1.routes(mac=mac), 10)
        assert ctl(two.e1, "clear", "peer", peer).returncode == 0
        wait_for("the session back", lambda: two.e1.peer_state(peer) == "Established", 30)
        wait_for("the watcher to see it", peer_back, 10)
    finally:
        process.terminate()
        process.wait(10)
        reader.join(10)
    events = [json.loads(line) for line in lines]
    kinds = [(e["event"], e.get("action") or e.get("state")) for e in events]
    assert ("peer", "down") in kinds and ("peer", "Established") in kinds
    h2 = [e for e in events if e["event"] == "route" and e.get("mac") == mac]
    assert [e["action"] for e in h2] == ["added", "withdrawn"]
    assert all(e["vni"] == 100 and e["nexthop"] == peer and e["seq"] == 0 for e in h2)
    # and the readable form prints one line per event
    line = format_event(h2[0])
    assert " route added type=2 " in line and f"mac={mac}" in line and "\n" not in line


def test_readers_and_writers_by_group(two: Two) -> None:
    # The socket is root:nogroup 0660: nobody (in nogroup) may read but not clear/reload.
    mode = os.stat(two.e1.socket)
    assert oct(mode.st_mode & 0o777) == "0o660"
    os.chmod(two.e1.home, 0o755)
    nobody = ("nobody", readable_runtime(two.lab.dir / "runtime"))
    read = ctl(two.e1, "show", "peers", user=nobody)
    assert read.returncode == 0, read.stderr
    refused = ctl(two.e1, "clear", "peer", f"{UNDERLAY}.2", user=nobody)
    assert refused.returncode == 4
    assert "not allowed" in refused.stderr and "Traceback" not in refused.stderr
    assert two.e1.peer_state(f"{UNDERLAY}.2") == "Established"


def test_clear_mac_needs_a_frozen_mac(two: Two) -> None:
    result = ctl(two.e1, "clear", "mac", H2_MAC, "--vni", "100")
    assert result.returncode == 1 and "is not frozen" in result.stderr
    bad = ctl(two.e1, "clear", "mac", "02:zz", "--vni", "100")  # caught before asking evpnd
    assert bad.returncode == 2 and "expected six hex bytes" in bad.stderr
    usage = ctl(two.e1, "clear", "mac", H2_MAC)
    assert usage.returncode == 2 and "--vni VNI is needed" in usage.stderr


def test_a_flapping_mac_is_frozen_and_cleared(two: Two) -> None:
    """A MAC that two hosts claim moves back and forth; after five moves one VTEP freezes it
    (duplicate address detection), shows it, and `clear mac` lets it go again."""
    mac = "02:00:00:00:5a:5a"
    ports = {two.v1: f"p{two.lab.tag}h1", two.v2: f"p{two.lab.tag}{two.h2[-2:]}"}

    def claim(vtep: str) -> None:
        two.lab.run(vtep, "bridge", "fdb", "replace", mac, "dev", ports[vtep], "master", "dynamic")

    def local_at(daemon: Evpnd) -> bool:
        return any(r["source"] == "local" for r in daemon.routes(mac=mac))

    def frozen_at() -> Evpnd | None:
        for daemon in (two.e1, two.e2):
            if any(m["frozen"] for m in daemon.ctl("show", "mac") if m["mac"] == mac):
                return daemon
        return None

    for turn in range(12):
        here, daemon = (two.v1, two.e1) if turn % 2 else (two.v2, two.e2)
        claim(here)
        wait_for(f"move {turn}", lambda d=daemon: local_at(d) or frozen_at(), 10)
        if frozen_at():
            break
    frozen = frozen_at()
    assert frozen is not None, "no VTEP froze the flapping MAC"
    assert turn >= 4  # five moves in 180 s, as FRR counts them
    assert "duplicate address: mac frozen" in frozen.log.read_text()
    table = ctl(frozen, "show", "mac")
    assert any(mac in line and "frozen" in line for line in table.stdout.splitlines())
    # the frozen VTEP no longer announces it, whatever its kernel learns
    assert not local_at(frozen)
    cleared = ctl(frozen, "clear", "mac", mac, "--vni", "100")
    assert cleared.returncode == 0, cleared.stderr
    assert "unfrozen" in cleared.stdout
    # (the other VTEP may freeze it in turn as this one announces it again: both hosts still
    # claim it — an operator removes the duplicate host first)
    assert not any(m["frozen"] for m in frozen.ctl("show", "mac") if m["mac"] == mac)
    assert "duplicate address: mac cleared" in frozen.log.read_text()
