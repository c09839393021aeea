"""What a reload changes, and what it refuses (evpnd/config_changes.py, local/vni_changes.py):
from two configuration files, without a daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

from evpnd import config_changes
from evpnd.config import parse
from evpnd.daemon.daemon import Daemon
from evpnd.evpn.extcommunities import RouteTarget
from evpnd.evpn.identifiers import RouteDistinguisher
from evpnd.local import vni_changes
from evpnd.local.origination import Vni, build_vnis

BASE = """asn: 65000
router_id: 192.0.2.1
neighbors:
  - {address: 192.0.2.2, remote_as: 65000}
  - {address: 192.0.2.3, remote_as: 65000, description: spine}
"""


class Indexes:
    def index_for(self, vni: int) -> int:
        return 1


def test_keys_that_need_a_restart_are_named_with_both_values() -> None:
    running = parse(BASE)
    new = parse(BASE.replace("asn: 65000", "asn: 65001") + "listen: {port: 1179}\n")
    found = config_changes.needs_restart(running, new)
    assert [(r.key, r.running, r.configured) for r in found] == [
        ("asn", 65000, 65001),
        ("listen_port", 179, 1179),
    ]
    assert str(found[0]).startswith("asn: 65000 -> 65001 needs a restart")
    assert config_changes.needs_restart(running, parse(BASE + "hold_time: 30\n")) == []


def test_kernel_programming_cannot_be_turned_on_by_a_reload() -> None:
    running = parse(BASE + "evpn: {program_kernel: false}\n")
    (found,) = config_changes.needs_restart(running, parse(BASE))
    assert found.key == "evpn.program_kernel"


def test_neighbours_added_removed_reset_and_updated_in_place() -> None:
    running = parse(BASE)
    new = parse(
        BASE.replace(
            "remote_as: 65000}\n  - {address: 192.0.2.3",
            "remote_as: 65000, hold_time: 9}\n  - {address: 192.0.2.3",
        ).replace("description: spine", "description: spine-1")
        + "  - {address: 192.0.2.4, remote_as: 65001}\n"
    )
    changes = config_changes.neighbor_changes(running, new, reset_all=False)
    assert [str(c) for c in changes] == [
        "peer 192.0.2.2: reset (hold_time)",
        "peer 192.0.2.3: updated (description)",
        "peer 192.0.2.4: added",
    ]
    gone = config_changes.neighbor_changes(new, running, reset_all=False)
    assert "peer 192.0.2.4: removed" in [str(c) for c in gone]


def test_a_session_wide_key_resets_every_session() -> None:
    running = parse(BASE)
    new = parse(BASE.replace("description: spine", "description: other") + "hold_time: 30\n")
    assert config_changes.session_wide(running, new) == ["hold_time"]
    changes = config_changes.neighbor_changes(running, new, reset_all=True)
    assert [c.what for c in changes] == ["reset", "reset"]


def test_listen_ranges_changed_and_the_most_specific_range_chosen() -> None:
    ranges = "listen_ranges:\n  - {prefix: 10.0.0.0/8, remote_as: 65000}\n"
    running = parse(BASE + ranges)
    new = parse(
        BASE
        + ranges.replace("65000}", "65000, password: s3cret}")
        + "  - {prefix: 10.1.0.0/16, remote_as: 65001}\n"
    )
    words = config_changes.range_changes(running, new)
    assert words == [
        "listen range 10.1.0.0/16: added",
        "listen range 10.0.0.0/8: changed (password)",
    ]
    assert "s3cret" not in " ".join(words)
    chosen = config_changes.range_of(new, "10.1.2.3")
    assert chosen is not None and str(chosen.prefix) == "10.1.0.0/16"
    assert config_changes.range_of(new, "192.0.2.9") is None


def _vni(number: int, rd: int = 1, imports: tuple[int, ...] = (), exports: int = 0) -> Vni:
    return Vni(
        number,
        RouteDistinguisher.type1("192.0.2.1", rd),
        (RouteTarget(0, 65000, exports or number),),
        tuple(RouteTarget(0, 65000, rt) for rt in imports),
        "192.0.2.1",
    )


def test_vni_changes_in_words() -> None:
    before = [_vni(100), _vni(200)]
    after = [_vni(100, rd=7, imports=(999,), exports=999), _vni(300)]
    assert vni_changes.describe(before, after) == [
        "VNI 200: removed",
        "VNI 300: added (RD 192.0.2.1:1, import auto (*:300), export 65000:300)",
        "VNI 100: RD 192.0.2.1:1 -> 192.0.2.1:7; import RTs auto (*:100) -> 65000:999; "
        "export RTs 65000:100 -> 65000:999",
    ]
    assert vni_changes.describe(before, before) == []


def test_import_rules_change_only_with_what_is_imported() -> None:
    """An RD or export change leaves the import rules alone (no rebuild of the wish); an
    import RT, a VNI added or removed changes them."""
    base = vni_changes.import_rules([_vni(100)])
    assert vni_changes.import_rules([_vni(100, rd=7, exports=999)]) == base
    assert vni_changes.import_rules([_vni(100, imports=(999,))]) != base
    assert vni_changes.import_rules([_vni(100), _vni(200)]) != base
    assert vni_changes.import_rules([]) != base


def test_the_configured_vnis_give_the_rules_the_daemon_compares() -> None:
    config = parse(BASE + 'evpn: {vnis: [{vni: 100, import_rts: ["65000:999"]}]}\n')
    (vni,) = build_vnis(config, Indexes())
    assert vni_changes.import_rules([vni]) == ((100, (RouteTarget(0, 65000, 999),)),)


def test_plain_keys_are_named_with_both_values() -> None:
    running = parse(BASE)
    new = parse(BASE + "resolve_via_default: true\nevpn: {flush_on_exit: true}\n")
    assert config_changes.plain_changes(running, new) == [
        "resolve_via_default: False -> True",
        "evpn.flush_on_exit: False -> True",
    ]


RANGES = """listen_ranges:
  - {prefix: 10.0.0.0/8, remote_as: 65000}
  - {prefix: 10.1.0.0/16, remote_as: 65001}
"""


QUIET = """asn: 65000
router_id: 192.0.2.1
neighbors:
  - {address: 192.0.2.2, remote_as: 65000, passive: true}
"""


def daemon_on(config_text: str, tmp_path: Path) -> tuple[Daemon, asyncio.AbstractEventLoop]:
    """A daemon, not started (no socket, no kernel): its peers are passive, so none connects."""
    config = parse(config_text + f"state_dir: {tmp_path}\n")
    loop = asyncio.new_event_loop()
    return Daemon(config, loop), loop


def close(daemon: Daemon, loop: asyncio.AbstractEventLoop) -> None:
    for driver in daemon.drivers.values():
        driver.stop()
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()

    async def drained() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)

    loop.run_until_complete(drained())
    loop.close()


def test_a_dynamic_peer_takes_the_most_specific_range(tmp_path: Path) -> None:
    """As the kernel picks the range's MD5 key, and as a reload judges which range changed."""
    daemon, loop = daemon_on(QUIET + RANGES, tmp_path)
    try:
        driver = daemon.driver_for("10.1.2.3")
        assert driver is not None and driver.dynamic
        assert driver.peer.settings.peer_as == 65001
        other = daemon.driver_for("10.9.9.9")
        assert other is not None and other.peer.settings.peer_as == 65000
        assert daemon.driver_for("192.0.2.99") is None
    finally:
        close(daemon, loop)


def test_a_dynamic_peer_made_a_neighbour_by_a_reload_runs_as_the_neighbour(tmp_path: Path) -> None:
    daemon, loop = daemon_on(QUIET + RANGES, tmp_path)
    try:
        dynamic = daemon.driver_for("10.1.2.3")
        assert dynamic is not None and dynamic.dynamic
        new = parse(
            BASE
            + "  - {address: 10.1.2.3, remote_as: 65009, passive: true}\n"
            + RANGES
            + f"state_dir: {tmp_path}\n"
        )
        done, failed = loop.run_until_complete(daemon.reload(new))
        assert "peer 10.1.2.3: added" in done and failed == []
        static = daemon.drivers["10.1.2.3"]
        assert static is not dynamic and not static.dynamic
        assert static.peer.settings.peer_as == 65009
    finally:
        close(daemon, loop)
