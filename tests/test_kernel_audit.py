"""Checking the kernel entry by entry (kernel/audit.py) and what the reconciler makes of the
answers, without root. The requests against the real kernel: test_kernel_events.py."""

from __future__ import annotations

import struct

from evpnd.kernel import neighbours as nl
from evpnd.kernel import operations as ops
from evpnd.kernel.audit import Audit, Probed, Questions
from evpnd.kernel.desired import DesiredState, Entries
from evpnd.kernel.links import VxlanPort
from evpnd.kernel.observe import Meaning, meaning
from evpnd.kernel.reconciler import Reconciler, differences
from evpnd.rib.locrib import Rib

VX, BR = 10, 11
PORT = VxlanPort(100, VX, "vxlan100", "192.0.2.1", BR, "br100", "02:aa:00:00:00:01", True, False)
VTEP, OTHER = bytes((192, 0, 2, 2)), bytes((192, 0, 2, 3))


def mac(n: int) -> bytes:
    return bytes.fromhex(f"0200000000{n:02x}")


def reconciler(fdb: dict[tuple[int, bytes], bytes]) -> Reconciler:
    """A reconciler whose RIB wants `fdb` and which believes it programmed it all."""
    state = DesiredState(Rib(), {}, lambda path: [])
    state.desired.fdb.update(fdb)
    r = Reconciler(state)
    r.programmed.fdb.update(fdb)
    return r


def test_requests_carry_their_position_as_sequence_number() -> None:
    questions = Questions(((VX, mac(1)), (VX, mac(2))), ((BR, bytes((10, 0, 0, 1))),))
    requests = questions.requests()
    assert len(requests) == 5  # two halves per FDB entry, one per neighbour
    for seq, request in enumerate(requests, 1):
        length, kind, flags, number, _ = struct.unpack_from("=IHHII", request)
        assert (length, kind, flags, number) == (len(request), nl.RTM_GETNEIGH, 1, seq)
    # self, then master: the vxlan device's half, then the bridge's
    assert [r[26] for r in requests[:2]] == [nl.NTF_SELF, nl.NTF_MASTER]


def test_answers_say_which_halves_are_ours() -> None:
    questions = Questions(((VX, mac(1)), (VX, mac(2)), (VX, mac(3))), ((BR, b"\n\0\0\1"),))

    def entry(ifindex: int, flags: int, dst: bytes | None) -> nl.Neighbour:
        return nl.Neighbour(nl.RTM_NEWNEIGH, nl.AF_BRIDGE, ifindex, 0, flags, mac(1), dst, None)

    ext = nl.NTF_EXT_LEARNED
    answers = [
        entry(VX, ext | nl.NTF_SELF, VTEP),  # 1: both halves ours
        entry(VX, ext | nl.NTF_MASTER, None),
        entry(VX, nl.NTF_SELF, VTEP),  # 2: an operator's static entry; the MAC on a local port
        entry(99, ext | nl.NTF_MASTER, None),
        None,  # 3: nowhere
        None,
        nl.Neighbour(nl.RTM_NEWNEIGH, 2, BR, 0x40, 0, mac(9), b"\n\0\0\1", None),  # not ours
    ]
    probed = questions.read(answers)
    assert probed.fdb == {
        (VX, mac(1)): (VTEP, True),
        (VX, mac(2)): (None, False),
        (VX, mac(3)): (None, False),
    }
    assert probed.neigh == {(BR, b"\n\0\0\1"): None}


def test_an_audit_that_began_on_an_empty_table_reads_the_table_that_came() -> None:
    audit = Audit()
    assert audit.next(Entries(), Entries()).fdb == ()  # at start: nothing yet
    wanted = Entries(fdb={(VX, mac(1)): VTEP})
    assert audit.next(wanted, Entries()).fdb == ((VX, mac(1)),)


def test_an_audit_rotation_asks_about_every_entry_once() -> None:
    wanted = Entries(fdb={(VX, mac(n)): VTEP for n in range(50)})
    programmed = Entries(fdb={(VX, mac(n)): VTEP for n in range(40, 60)})  # 50-59: unwanted
    audit = Audit()
    asked: list[tuple[int, bytes]] = []
    for _ in range(5):  # 60 entries, 12 a pass
        questions = audit.next(wanted, programmed, size=12)
        asked += questions.fdb
        audit.answered(Probed(fdb=dict.fromkeys(questions.fdb, (VTEP, True))), 0, 1.0)
    assert sorted(asked) == sorted({*wanted.fdb, *programmed.fdb})  # each once
    assert audit.rotations == 1 and audit.checked == 60
    assert audit.status(3.0)["last_rotation_ago_s"] == 2.0
    assert len(audit.next(wanted, programmed, size=12).fdb) == 12  # the next rotation begins


def test_a_wrong_or_missing_entry_is_rewritten_at_once() -> None:
    r = reconciler({(VX, mac(1)): VTEP, (VX, mac(2)): VTEP, (VX, mac(3)): VTEP})
    probed = Probed(
        fdb={
            (VX, mac(1)): (VTEP, True),  # as it should be
            (VX, mac(2)): (OTHER, True),  # someone pointed it elsewhere
            (VX, mac(3)): (VTEP, False),  # the bridge half removed
        }
    )
    operations, _, wrong = r.check(probed)
    assert set(operations) == {ops.FdbSet(VX, mac(2), VTEP), ops.FdbSet(VX, mac(3), VTEP)}
    assert wrong == 2
    assert r.programmed.fdb[(VX, mac(2))] == VTEP  # the rewrite counts as programmed


def test_a_stray_waits_for_the_pass_and_is_listed_meanwhile() -> None:
    r = reconciler({(VX, mac(1)): VTEP})
    operations, _, wrong = r.check(Probed(fdb={(VX, mac(7)): (None, True)}))
    assert operations == [] and wrong == 1
    port = PORT
    rows = differences(r.programmed, r.state.desired, {VX: port}, {}, r.strays)
    assert [(row["entry"], row["wanted"], row["kernel"]) for row in rows] == [
        ("02:00:00:00:00:07", None, "bridge only")
    ]
    operations, changes = r.take_strays()
    assert [type(o).__name__ for o in operations] == ["FdbDel"] and changes.fdb_del
    assert r.take_strays()[0] == []  # removed once


def test_a_stray_that_became_wanted_stays() -> None:
    r = reconciler({})
    r.check(Probed(fdb={(VX, mac(7)): (VTEP, True)}))
    r.state.desired.fdb[(VX, mac(7))] = VTEP  # a route for it arrived meanwhile
    assert r.take_strays()[0] == []


def test_unwanted_entries_become_strays_when_the_peers_settle() -> None:
    r = reconciler({(VX, mac(1)): VTEP})
    r.programmed.fdb[(VX, mac(2))] = VTEP  # kept over a restart, no route came back
    r.programmed.flood[(VX, OTHER)] = 1
    r.settle()
    operations, _ = r.take_strays()
    assert {type(o).__name__ for o in operations} == {"FdbDel", "FloodDel"}
    assert (VX, mac(1)) in r.programmed.fdb and (VX, mac(2)) not in r.programmed.fdb


def test_a_flood_entry_removed_by_someone_else_comes_back_at_once() -> None:
    r = reconciler({})
    r.state.desired.flood[(VX, VTEP)] = 1
    r.programmed.flood[(VX, VTEP)] = 1
    operations, _ = r.flood_seen((VX, VTEP), present=False)
    assert [type(o).__name__ for o in operations] == ["FloodAdd"]
    operations, _ = r.flood_seen((VX, OTHER), present=True)  # someone else's: a stray
    assert operations == [] and (VX, OTHER) in r.strays.flood


def test_notifications_on_our_ports_name_entries_to_ask_about() -> None:
    port = PORT
    wanted = Entries(fdb={(VX, mac(1)): VTEP}, flood={(VX, VTEP): 1})

    def seen(flags: int, m: bytes, dst: bytes | None, kind: int = nl.RTM_DELNEIGH) -> Meaning:
        n = nl.Neighbour(kind, nl.AF_BRIDGE, VX, 0, flags, m, dst, None)
        return meaning(n, {VX}, {BR: port}, wanted)

    ext, new = nl.NTF_EXT_LEARNED, nl.RTM_NEWNEIGH
    assert seen(ext | nl.NTF_MASTER, mac(1), None).check_fdb == (VX, mac(1))  # ours removed
    assert seen(ext, mac(5), VTEP, new).check_fdb == (VX, mac(5))  # someone else's, added
    assert seen(nl.NTF_SELF, mac(1), OTHER, new).check_fdb == (VX, mac(1))  # static over ours
    assert seen(nl.NTF_SELF, mac(6), OTHER, new).check_fdb is None  # an operator's, elsewhere
    assert seen(nl.NTF_SELF, nl.ZERO_MAC, VTEP).flood == ((VX, VTEP), False)
    svi = nl.Neighbour(nl.RTM_NEWNEIGH, 2, BR, 0x40, ext, mac(9), b"\n\0\0\1", None)
    assert meaning(svi, {VX}, {BR: port}, wanted).check_neigh == (BR, b"\n\0\0\1")


def test_a_refused_write_is_tried_again_at_the_next_pass_while_wanted() -> None:
    r = reconciler({(VX, mac(1)): VTEP, (VX, mac(2)): VTEP})
    for n in (1, 2):
        r.refused(ops.FdbSet(VX, mac(n), VTEP))
    assert not r.programmed.fdb
    del r.state.desired.fdb[(VX, mac(2))]  # withdrawn meanwhile: not tried again
    operations, _ = r.take_retries()
    assert operations == [ops.FdbSet(VX, mac(1), VTEP)]
    assert r.take_retries()[0] == []  # once per refusal


def test_a_removal_the_bridge_refused_is_followed_by_the_vxlan_half() -> None:
    """One message removes both halves; where the bridge's is not on the vxlan port (the MAC
    lives on a local port now) the kernel stops, and the vxlan half is removed by itself."""
    import errno

    removal = ops.FdbDel(VX, mac(1), VTEP)
    assert ops.followup(removal, errno.ENOENT) == ops.FdbDelSelf(VX, mac(1), VTEP)
    assert ops.followup(removal, errno.EINVAL) is None
    assert ops.followup(ops.FdbDelSelf(VX, mac(1), VTEP), errno.ENOENT) is None
    assert ops.harmless(ops.FdbDelSelf(VX, mac(1), VTEP), errno.ENOENT)
    (message,) = [ops.encode(removal, 7)]
    assert message[26] == nl.NTF_MASTER | nl.NTF_SELF  # ndm_flags: one message, both halves
