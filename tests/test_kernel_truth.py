"""The kernel holds exactly what BGP says, against the real kernel: a graceful stop leaves every
entry in place, hostile routes touch nothing, the bridge's half of an entry is repaired too."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.netns import LAB, ROOT, Evpnd, Lab, lab, listed_before_repair, wait_for

pytestmark = LAB

SPEAKER, PEER, VTEP = "192.168.72.1", "192.168.72.3", "192.168.72.2"

#: A raw BGP peer in the namespace: announces a flood route and COUNT MACs from VTEP, then
#: whatever the test writes on its stdin (hex UPDATEs, one per line), and stays until evpnd
#: closes the session.
PEER_SCRIPT = textwrap.dedent(f"""
    import socket, sys
    sys.path.insert(0, ".")
    from benchmarks.receive import Client
    from evpnd.bgp.attributes import AsPath, PathAttributes, PmsiTunnel
    from evpnd.bgp.update import end_of_rib, pack_announcements
    from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
    from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
    from evpnd.evpn.routes import InclusiveMulticastRoute, MacIpRoute

    count = int(sys.argv[1])
    vtep = socket.inet_aton("{VTEP}")
    communities = (Encapsulation(8), RouteTarget(0, 65000, 100))
    attrs = PathAttributes(origin=0, as_path=AsPath(), local_pref=100, nexthop=vtep,
                           ext_communities=communities)
    rd = RouteDistinguisher.from_text("{VTEP}:1")
    macs = [MacIpRoute(rd, 0, (0x020000000000 + i).to_bytes(6, "big"), b"", ZERO_ESI, 100)
            for i in range(1, count + 1)]
    imet = PathAttributes(origin=0, as_path=AsPath(), local_pref=100, nexthop=vtep,
                          ext_communities=communities, pmsi_tunnel=PmsiTunnel(0, 6, 100, vtep))
    client = Client(179, host="{SPEAKER}", source="{PEER}")
    client.send(b"".join(pack_announcements([InclusiveMulticastRoute(rd, 0, vtep)], imet))
                + b"".join(pack_announcements(macs, attrs)) + end_of_rib())
    print("sent", flush=True)
    for line in sys.stdin:
        client.send(bytes.fromhex(line.strip()))
        print("sent", flush=True)
    while client.sock.recv(65536):
        pass
""")


@dataclass
class Vtep:
    lab: Lab
    ns: str
    evpnd: Evpnd
    bridge: str

    def fdb(self) -> list[str]:
        table = self.lab.run(self.ns, "bridge", "fdb", "show", "dev", "vxlan100")
        return [line for line in table.splitlines() if "extern_learn" in line]

    def flood(self) -> list[str]:
        table = self.lab.run(self.ns, "bridge", "fdb", "show", "dev", "vxlan100")
        return [line for line in table.splitlines() if line.startswith("00:00:00:00:00:00")]

    def peer(self, count: int) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-c", PEER_SCRIPT, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.lab.processes.append(process)  # type: ignore[arg-type]
        assert process.stdout is not None
        assert process.stdout.readline() == "sent\n"
        return process


@pytest.fixture
def vtep() -> Iterator[Vtep]:
    with lab() as the_lab:
        ns = the_lab.ns("v")
        for address in (f"{SPEAKER}/32", f"{PEER}/32"):
            the_lab.run(ns, "ip", "addr", "add", address, "dev", "lo")
        _, bridge = the_lab.vxlan_bridge(ns, 100, SPEAKER)
        the_lab.reach(ns, "192.168.72.0/24")  # the VTEPs the peer scripts announce
        daemon = the_lab.evpnd(
            ns,
            "e",
            f"""asn: 65000
router_id: {SPEAKER}
listen: {{address: {SPEAKER}, port: 179}}
listen_ranges: [{{prefix: 192.168.72.0/24, remote_as: 65000}}]
""",
        )
        yield Vtep(the_lab, ns, daemon, bridge)


def test_a_graceful_stop_leaves_every_entry_in_place(vtep: Vtep) -> None:
    """6,000 remote MACs (more than the 5,000 at which a write starts at once): SIGTERM ends
    the session gracefully, and the kernel keeps both halves of every entry and the flood
    entry — no write at all on the way out. (They used to be deleted.)"""
    peer = vtep.peer(6000)
    assert peer.stdin is not None
    peer.stdin.close()  # nothing more to send: it waits for the session to end
    wait_for("6,000 MACs in the kernel", lambda: len(vtep.fdb()) == 12000, 30)
    vtep.evpnd.stop(signal.SIGTERM)
    peer.wait(10)  # the session is over
    assert len(vtep.fdb()) == 12000 and len(vtep.flood()) == 1
    log = vtep.evpnd.log.read_text()
    assert "netlink write failed" not in log and '"stopped"' in log


def _updates(*batches: tuple[str, list[bytes]]) -> str:
    """A line of hex for the peer script: announcements or withdrawals of Type 2 routes for
    the given MACs (from VTEP, VNI 100)."""
    import socket

    from evpnd.bgp.attributes import AsPath, PathAttributes
    from evpnd.bgp.update import pack_announcements, pack_withdrawals
    from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
    from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
    from evpnd.evpn.routes import MacIpRoute

    attrs = PathAttributes(
        origin=0,
        as_path=AsPath(),
        local_pref=100,
        nexthop=socket.inet_aton(VTEP),
        ext_communities=(Encapsulation(8), RouteTarget(0, 65000, 100)),
    )
    rd = RouteDistinguisher.from_text(f"{VTEP}:1")
    out = b""
    for kind, macs in batches:
        routes = [MacIpRoute(rd, 0, mac, b"", ZERO_ESI, 100) for mac in macs]
        messages = pack_announcements(routes, attrs) if kind == "add" else pack_withdrawals(routes)
        out += b"".join(messages)
    return out.hex() + "\n"


def test_hostile_macs_are_refused_and_touch_no_other_entry(vtep: Vtep) -> None:
    """A zero MAC (the flood list's key in the kernel), a broadcast and a multicast MAC,
    announced and withdrawn over and over: never imported, so the VTEP's flood entry is
    never touched; each reason is said once and counted."""
    peer = vtep.peer(10)
    assert peer.stdin is not None and peer.stdout is not None
    wait_for("the MACs and the flood entry", lambda: len(vtep.fdb()) == 20, 30)
    hostile = [bytes(6), b"\xff" * 6, bytes.fromhex("01005e000001")]
    for round_ in range(20):
        sentinel = bytes.fromhex(f"0200000a{round_:04x}")
        peer.stdin.write(_updates(("add", hostile), ("del", hostile), ("add", [sentinel])))
        peer.stdin.flush()
        assert peer.stdout.readline() == "sent\n"
        # UPDATEs are taken in order: once the sentinel is in the kernel, so is all before it
        wait_for(
            "the sentinel",
            lambda s=sentinel: any(s.hex(":") in line for line in vtep.fdb()),  # type: ignore[misc]
            10,
        )
        assert vtep.flood() == [f"00:00:00:00:00:00 dst {VTEP} self permanent"]
    peers = vtep.evpnd.ctl("show", "peers")
    assert peers[0]["routes_received"] == 10 + 20 + 1  # the MACs, the sentinels, the flood
    log = [line for line in vtep.evpnd.log.read_text().splitlines() if "route refused" in line]
    assert len(log) == 2  # once per reason: the zero MAC, and multicast/broadcast
    assert "netlink refused" not in vtep.evpnd.log.read_text()
    assert vtep.evpnd.ctl("show", "kernel")["in_sync"]


def test_either_half_of_an_entry_deleted_by_hand_comes_back(vtep: Vtep) -> None:
    """A remote MAC is two kernel entries, the vxlan device's (`self`) and the bridge's
    (`master`). Both are ours: `show kernel` compares both, and a deletion of either is
    repaired (the bridge's used to go unnoticed)."""
    peer = vtep.peer(10)
    assert peer.stdin is not None
    peer.stdin.close()
    wait_for("the MACs", lambda: len(vtep.fdb()) == 20, 30)
    mac = "02:00:00:00:00:05"
    for half, line in (
        ("master", f"{mac} extern_learn master {vtep.bridge}"),
        ("self", f"{mac} dst {VTEP} self extern_learn"),
    ):
        vtep.lab.run(vtep.ns, "bridge", "fdb", "del", mac, "dev", "vxlan100", half)
        wait_for(f"the {half} half back", lambda x=line: any(x in f for f in vtep.fdb()), 5, 0.01)
    assert vtep.evpnd.ctl("show", "kernel")["in_sync"]
    # A bridge half with no route behind it is found and removed too. (The periodic
    # reconciliation may remove it before `show kernel` looks: then it is added again.)
    stray = "02:00:00:00:99:99"
    row = {
        "kind": "fdb",
        "vni": 100,
        "device": "vxlan100",
        "entry": stray,
        "wanted": None,
        "kernel": "bridge only",
    }
    listed_before_repair(
        lambda: vtep.lab.run(
            vtep.ns, "bridge", "fdb", "replace", stray, "dev", "vxlan100", "master", "extern_learn"
        ),
        lambda: row in vtep.evpnd.ctl("show", "kernel", check=False)["differences"],
    )
    wait_for("the stray removed", lambda: not any(stray in f for f in vtep.fdb()), 30)


def test_a_long_random_sequence_leaves_the_kernel_equal_to_the_best_paths(vtep: Vtep) -> None:
    """The invariant against the real kernel: 400 random UPDATEs — MACs announced from three
    VTEPs with changing labels, sequence numbers and RTs, with and without an IP, withdrawn,
    flood routes coming and going, hostile MACs — then the kernel's entries (both FDB halves,
    flood, ARP) are exactly what the best paths call for, computed here from scratch."""
    import random
    import socket

    from evpnd.bgp.attributes import AsPath, PathAttributes, PmsiTunnel
    from evpnd.bgp.update import pack_announcements, pack_withdrawals
    from evpnd.evpn.extcommunities import Encapsulation, MacMobility, RouteTarget
    from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
    from evpnd.evpn.routes import EvpnRoute, InclusiveMulticastRoute, MacIpRoute
    from evpnd.kernel import invariant
    from evpnd.kernel.desired import VniPorts
    from evpnd.rib import validation
    from evpnd.rib.locrib import Rib
    from evpnd.rib.paths import Path, Source

    peer = vtep.peer(0)
    assert peer.stdin is not None and peer.stdout is not None
    rng = random.Random(7)
    vteps = [socket.inet_aton(f"192.168.72.{n}") for n in (2, 4, 5)]
    macs = [bytes.fromhex(f"02000000{n:04x}") for n in range(1, 41)] + [bytes(6), b"\xff" * 6]
    rib = Rib()  # the model: what evpnd's RIB should hold
    source = Source(PEER, PEER, 65000, ibgp=True)

    def attrs(vtep_ip: bytes, rt: int, seq: int, imet: bool) -> PathAttributes:
        communities: tuple[object, ...] = (Encapsulation(8), RouteTarget(0, 65000, rt))
        if seq:
            communities += (MacMobility(seq),)
        return PathAttributes(
            origin=0,
            as_path=AsPath(),
            local_pref=100,
            nexthop=vtep_ip,
            ext_communities=communities,  # type: ignore[arg-type]
            pmsi_tunnel=PmsiTunnel(0, 6, 100, vtep_ip) if imet else None,
        )

    first = socket.inet_aton(VTEP)  # the peer script's own flood route, first of all
    start = InclusiveMulticastRoute(RouteDistinguisher.from_text(f"{VTEP}:1"), 0, first)
    rib.update(source, [start], attrs(first, 100, 0, True), [])
    lines = []
    for _ in range(400):
        vtep_ip = rng.choice(vteps)
        rd = RouteDistinguisher.type1(socket.inet_ntoa(vtep_ip), rng.choice((1, 2)))
        route: EvpnRoute
        if rng.random() < 0.15:
            route = InclusiveMulticastRoute(rd, 0, vtep_ip)
            path_attrs = attrs(vtep_ip, rng.choice((100, 100, 999)), 0, True)
        else:
            ip = rng.choice((b"", b"", bytes((10, 0, 100, rng.randrange(1, 20)))))
            route = MacIpRoute(rd, 0, rng.choice(macs), ip, ZERO_ESI, rng.choice((100, 101)))
            path_attrs = attrs(vtep_ip, rng.choice((100, 100, 999)), rng.randrange(4), False)
        if rng.random() < 0.3:
            message = b"".join(pack_withdrawals([route]))
            rib.update(source, [], path_attrs, [route])
        else:
            message = b"".join(pack_announcements([route], path_attrs))
            kept, refused = validation.split([route], path_attrs)
            rib.update(source, kept, path_attrs, [r for r, _ in refused])
        lines.append(message.hex() + "\n")
    sentinel = bytes.fromhex("0200000affff")
    lines.append(_updates(("add", [sentinel])))
    sentinel_route = MacIpRoute(
        RouteDistinguisher.from_text(f"{VTEP}:1"), 0, sentinel, b"", ZERO_ESI, 100
    )
    rib.update(source, [sentinel_route], attrs(socket.inet_aton(VTEP), 100, 0, False), [])
    peer.stdin.write("".join(lines))
    peer.stdin.flush()
    for _ in lines:
        assert peer.stdout.readline() == "sent\n"
    wait_for("the sentinel", lambda: any("02:00:00:0a:ff:ff" in f for f in vtep.fdb()), 10)
    wait_for("evpnd in sync", lambda: vtep.evpnd.ctl("show", "kernel", check=False)["in_sync"], 10)

    ifindex = {
        name: int(vtep.lab.run(vtep.ns, "cat", f"/sys/class/net/{name}/ifindex"))
        for name in ("vxlan100", vtep.bridge)
    }
    ports = {
        100: VniPorts(100, ifindex["vxlan100"], ifindex[vtep.bridge], socket.inet_aton(SPEAKER))
    }

    def importing(path: Path) -> list[int]:
        return [100] if any(rt.assigned == 100 for rt in path.attributes.route_targets) else []

    want = invariant.expected(rib, ports, importing)
    fdb_self: dict[str, str] = {}
    fdb_master: set[str] = set()
    for line in vtep.fdb():
        words = line.split()
        if "dst" in words:
            fdb_self[words[0]] = words[words.index("dst") + 1]
        elif "master" in words:
            fdb_master.add(words[0])
    expected_fdb = {key[1].hex(":"): socket.inet_ntoa(dst) for key, dst in want.fdb.items()}
    assert fdb_self == expected_fdb
    assert fdb_master == set(expected_fdb)
    flood = {line.split()[2] for line in vtep.flood()}
    assert flood == {socket.inet_ntoa(dst) for _, dst in want.flood}
    neighbours = vtep.lab.run(vtep.ns, "ip", "neigh", "show", "dev", vtep.bridge)
    have_neigh = {
        (w[0], w[w.index("lladdr") + 1])
        for w in (line.split() for line in neighbours.splitlines())
        if "extern_learn" in w
    }
    assert have_neigh == {
        (socket.inet_ntoa(ip), mac.hex(":")) for (_, ip), mac in want.neigh.items()
    }
    assert len(expected_fdb) > 10 and want.neigh  # the sequence left plenty to compare

    # and the periodic audit reads those entries back (every 10 s a slice: one pass suffices)
    def audited() -> bool:
        audit = vtep.evpnd.ctl("show", "kernel", check=False)["audit"]
        return bool(audit["rotations"] >= 1 and audit["last_slice"] >= len(expected_fdb))

    wait_for("an audit rotation", audited, 25, 0.5)
    assert vtep.evpnd.ctl("show", "kernel")["audit"]["found_wrong"] == 0
