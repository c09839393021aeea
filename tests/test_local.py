"""The local-routes core (RFC 7432 §15 mobility, §15.1 duplicate detection, sticky MACs,
learning rules) between two in-memory VTEPs: no kernel, no root, no sleeping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from evpnd.evpn.extcommunities import RouterMac, RouteTarget
from evpnd.evpn.identifiers import RouteDistinguisher
from evpnd.evpn.routes import MacIpRoute
from evpnd.local.learning import LocalHost, LocalHostGone, LocalMac, LocalMacGone
from evpnd.local.origination import L3Vni
from evpnd.rib.bestpath import following, newer
from tests.local_pair import VNI, LocalPair

MAC = bytes.fromhex("020000000011")
IP = bytes((10, 0, 100, 11))


def test_a_local_mac_is_announced_and_withdrawn() -> None:
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC))
    assert pair.a.local_routes(MAC) == [(b"", 0, False)]
    pair.deliver()
    assert pair.b.winner(MAC) == "192.0.2.1"
    pair.a.observe(LocalMacGone(VNI, MAC))
    assert pair.a.local_routes(MAC) == []
    pair.deliver()
    assert pair.b.winner(MAC) is None


def test_a_mac_that_moves_gets_a_higher_sequence_and_the_old_home_withdraws() -> None:
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC), LocalHost(VNI, MAC, IP))
    pair.deliver()
    pair.b.observe(LocalMac(VNI, MAC))  # the host speaks behind B now
    assert pair.b.local_routes(MAC) == [(b"", 1, False)]
    assert "MacMovedHere" in pair.b.event_kinds()
    pair.deliver()
    # A saw sequence 1 > its 0: the MAC moved away, all of A's routes for it go
    assert pair.a.local_routes(MAC) == []
    assert "MacMovedAway" in pair.a.event_kinds()
    assert pair.a.winner(MAC) == "192.0.2.2" and pair.b.winner(MAC) == "local"
    # and back again: sequence 2
    pair.a.observe(LocalMac(VNI, MAC))
    assert pair.a.local_routes(MAC) == [(b"", 2, False)]
    pair.deliver()
    assert pair.b.local_routes(MAC) == [] and pair.b.winner(MAC) == "192.0.2.1"


def test_a_remote_withdrawal_never_removes_a_local_mac() -> None:
    pair = LocalPair()
    pair.b.observe(LocalMac(VNI, MAC))
    pair.deliver()
    pair.a.observe(LocalMac(VNI, MAC))  # moved to A: sequence 1
    pair.deliver()
    assert pair.a.local_routes(MAC) == [(b"", 1, False)] and pair.b.local_routes(MAC) == []
    # B's kernel now also forgets the MAC: nothing changes at A
    pair.b.observe(LocalMacGone(VNI, MAC))
    pair.deliver()
    assert pair.a.local_routes(MAC) == [(b"", 1, False)] and pair.a.winner(MAC) == "local"


def test_live_migration_with_a_late_withdrawal_keeps_the_new_home() -> None:
    """The VM stops at A (A's bridge still has its entry), the orchestrator adds a static
    entry at B, B announces it sticky; A's own withdrawal arrives only afterwards."""
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC), LocalHost(VNI, MAC, IP))
    pair.deliver()
    pair.b.observe(LocalMac(VNI, MAC, sticky=True), LocalHost(VNI, MAC, IP))
    assert pair.b.local_routes(MAC) == [(b"", 1, True), (IP, 1, False)]
    pair.deliver(only=pair.b)  # A hears of B's routes; A's answer is held back
    assert pair.a.local_routes(MAC) == []  # moved away (sticky, higher sequence)
    pair.a.observe(LocalMacGone(VNI, MAC), LocalHostGone(VNI, IP))  # A's kernel catches up
    pair.deliver()  # now A's late withdrawal reaches B
    assert pair.b.local_routes(MAC) == [(b"", 1, True), (IP, 1, False)]
    assert pair.b.winner(MAC) == "local" and pair.a.winner(MAC) == "192.0.2.2"


def test_a_sticky_mac_never_moves_away() -> None:
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC, sticky=True))
    pair.deliver()
    pair.b.observe(LocalMac(VNI, MAC))  # a duplicate behind B: sequence 1
    pair.deliver()
    assert pair.a.local_routes(MAC) == [(b"", 0, True)]
    # sticky wins over any sequence number, at both
    assert pair.a.winner(MAC) == "local" and pair.b.winner(MAC) == "192.0.2.1"


def test_both_learn_at_once_and_agree_without_a_war() -> None:
    """A race: the MAC shows up at both VTEPs before either hears of the other (both
    sequence 0). Neither out-bids the other forever; both pick the same winner."""
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC))
    pair.b.observe(LocalMac(VNI, MAC))
    pair.deliver()  # raises if they never go quiet
    assert pair.a.local_routes(MAC) == [(b"", 0, False)]
    assert pair.b.local_routes(MAC) == [(b"", 0, False)]
    # equal sequence numbers: the lower VTEP address wins (RFC 7432 §15), at both
    assert pair.a.winner(MAC) == "local" and pair.b.winner(MAC) == "192.0.2.1"


def test_a_flapping_mac_is_frozen_after_five_moves_and_cleared_by_hand() -> None:
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC))
    pair.deliver()
    for move in range(1, 12):  # moves every 10 s, between the two VTEPs
        pair.advance(10)
        here = pair.b if move % 2 else pair.a
        here.observe(LocalMac(VNI, MAC))
        pair.deliver()
    frozen = [v for v in (pair.a, pair.b) if "MacFrozen" in v.event_kinds()]
    assert len(frozen) >= 1
    for vtep in frozen:
        assert vtep.event_kinds().count("MacFrozen") == 1  # said once
        assert vtep.core.duplicates.is_frozen(VNI, MAC)
    vtep = frozen[0]
    vtep.observe(LocalMacGone(VNI, MAC))
    vtep.observe(LocalMac(VNI, MAC))  # seen again while frozen: not announced
    assert vtep.local_routes(MAC) == []
    step = vtep.core.unfreeze(VNI, MAC, vtep.now)
    assert step is not None and "MacCleared" in [type(e).__name__ for e in step.events]
    vtep.apply(step)
    assert vtep.core.unfreeze(VNI, MAC, vtep.now) is None  # not frozen any more
    vtep.observe(LocalMac(VNI, MAC))
    assert vtep.local_routes(MAC) != []


def test_slow_moves_never_freeze() -> None:
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC))
    pair.deliver()
    for move in range(1, 12):
        pair.advance(100)  # five moves take longer than the 180 s window
        (pair.b if move % 2 else pair.a).observe(LocalMac(VNI, MAC))
        pair.deliver()
    assert "MacFrozen" not in pair.a.event_kinds() + pair.b.event_kinds()


def test_a_binding_for_a_host_behind_another_vtep_is_not_announced() -> None:
    pair = LocalPair()
    pair.b.observe(LocalMac(VNI, MAC))
    pair.deliver()
    pair.a.observe(LocalHost(VNI, MAC, IP))  # an ARP entry at A for B's host
    assert pair.a.local_routes(MAC) == []
    assert pair.b.local_routes(MAC) == [(b"", 0, False)]


def test_a_vni_gets_an_l3vni_and_a_new_rd() -> None:
    """Reconfiguration: the host's MAC/IP route gains the L3VNI (label, RT, Router's MAC);
    a new RD makes new routes and withdraws the old ones."""
    pair = LocalPair()
    a = pair.a
    a.observe(LocalMac(VNI, MAC), LocalHost(VNI, MAC, IP))
    l3 = L3Vni(
        4001,
        RouteDistinguisher.type1("192.0.2.1", 9),
        (RouteTarget(0, 65000, 4001),),
        (),
        "192.0.2.1",
        router_mac=bytes.fromhex("020000000fff"),
        l2vnis=(VNI,),
    )
    a.apply(a.core.configure([a.vni], {VNI: l3}, a.now))
    (with_ip,) = [
        p for p in a.rib.adj_in["local"].values() if isinstance(p.route, MacIpRoute) and p.route.ip
    ]
    assert with_ip.route.label2 == 4001
    assert RouterMac(bytes.fromhex("020000000fff")) in with_ip.attributes.ext_communities
    moved = a.vni.__class__(
        VNI, RouteDistinguisher.type1("192.0.2.1", 7), a.vni.export_rts, (), a.address
    )
    a.apply(a.core.configure([moved], {}, a.now))
    rds = {str(p.route.rd) for p in a.rib.adj_in["local"].values()}
    assert rds == {"192.0.2.1:7"}
    assert a.local_routes(MAC) == [(b"", 0, False), (IP, 0, False)]


def test_a_vni_that_leaves_the_kernel_takes_its_macs() -> None:
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC), LocalHost(VNI, MAC, IP))
    assert pair.a.core.mac_counts() == {VNI: 1}
    pair.a.apply(pair.a.core.ports_changed([]))
    assert pair.a.local_routes(MAC) == [] and pair.a.core.mac_counts() == {}


def test_a_move_after_the_sequence_number_wraps_is_not_lost() -> None:
    """RFC 7432 has no rule for the 32-bit sequence number wrapping; ours (speaker.md): two
    numbers more than 2^31 apart are taken as having wrapped, so 0 follows 2^32 - 1."""
    pair = LocalPair()
    pair.a.core._sequence[(VNI, MAC)] = 2**32 - 1  # (four billion moves ago)
    pair.a.observe(LocalMac(VNI, MAC))
    pair.deliver()
    assert pair.a.local_routes(MAC) == [(b"", 2**32 - 1, False)]
    pair.b.observe(LocalMac(VNI, MAC))  # the host moved to B: one more than 2^32 - 1
    assert pair.b.local_routes(MAC) == [(b"", 0, False)]
    assert pair.b.winner(MAC) == "local"
    pair.deliver()
    assert pair.a.local_routes(MAC) == [] and pair.a.winner(MAC) == "192.0.2.2"
    pair.a.observe(LocalMac(VNI, MAC))  # and back to A
    assert pair.a.local_routes(MAC) == [(b"", 1, False)]
    pair.deliver()
    assert pair.b.local_routes(MAC) == [] and pair.b.winner(MAC) == "192.0.2.1"


def test_sequence_numbers_compare_across_the_wrap() -> None:
    assert newer(1, 0) and not newer(0, 1) and not newer(7, 7)
    assert newer(0, 2**32 - 1) and not newer(2**32 - 1, 0)
    assert newer(5, 2**31 + 10) and not newer(2**31 + 10, 5)  # 2^31 + 5 apart: wrapped
    assert newer(2**31, 0)  # exactly 2^31 apart: the plain order
    assert following([2**32 - 1, 3]) == 4  # 3 came after 2^32 - 1
    assert following([2**32 - 1]) == 0 and following([5, 9]) == 10


def test_an_ip_that_moves_to_another_mac_leaves_no_binding_behind() -> None:
    """The SVI's neighbour table holds one MAC per IP: when an IP's entry names a new MAC (a
    host with a new NIC), the old MAC's binding is gone and its MAC/IP route withdrawn. Found
    by the soak (benchmarks/soak.py --seed 2, `ip_move`): the old route stayed advertised."""
    new_mac = bytes.fromhex("0200000000aa")
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC), LocalHost(VNI, MAC, IP))
    pair.deliver()
    pair.a.observe(LocalMacGone(VNI, MAC), LocalMac(VNI, new_mac), LocalHost(VNI, new_mac, IP))
    assert pair.a.local_routes(MAC) == []
    assert pair.a.local_routes(new_mac) == [(b"", 0, False), (IP, 0, False)]
    pair.deliver()
    assert pair.b.winner(MAC) is None
    # and back to the first MAC: the binding follows the neighbour entry, the new MAC stays
    pair.a.observe(LocalHost(VNI, MAC, IP))
    assert pair.a.local_routes(new_mac) == [(b"", 0, False)]
    assert pair.a.local_routes(MAC) == [(IP, 0, False)]


def test_an_ip_that_moves_away_and_back_in_one_batch_stays_announced() -> None:
    new_mac = bytes.fromhex("0200000000aa")
    pair = LocalPair()
    pair.a.observe(LocalMac(VNI, MAC), LocalHost(VNI, MAC, IP))
    pair.a.observe(LocalHost(VNI, new_mac, IP), LocalHost(VNI, MAC, IP))
    assert pair.a.local_routes(MAC) == [(b"", 0, False), (IP, 0, False)]
    assert pair.a.local_routes(new_mac) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["host", "host_gone", "mac_gone"]), st.integers(0, 3), st.integers(0, 2)
        ),
        max_size=30,
    )
)
def test_the_ip_index_is_what_the_local_hosts_say(steps: list[tuple[str, int, int]]) -> None:
    """The (VNI, IP) index that finds an IP's keys without walking every local host (an IP
    moving between MACs, an IP gone) always equals a count from scratch."""
    pair = LocalPair()
    core = pair.a.core
    macs = [bytes.fromhex(f"0200000000{n:02x}") for n in range(4)]
    ips = [bytes((10, 0, 100, n)) for n in (1, 2, 3)]
    for kind, mac, ip in steps:
        if kind == "host":
            pair.a.observe(LocalMac(VNI, macs[mac]), LocalHost(VNI, macs[mac], ips[ip]))
        elif kind == "host_gone":
            pair.a.observe(LocalHostGone(VNI, ips[ip]))
        else:
            pair.a.observe(LocalMacGone(VNI, macs[mac]))
        counted: dict[tuple[int, bytes], set[tuple[int, bytes, bytes]]] = {}
        for key in core.local:
            if key[2]:
                counted.setdefault((key[0], key[2]), set()).add(key)
        assert core._ips == counted
        # one MAC per IP on the SVI: a binding moved to another MAC leaves no other behind
        assert all(len(keys) == 1 for keys in counted.values())
