from __future__ import annotations

import subprocess
import sys

from evpnd.bgp.attributes import AsPath, PathAttributes
from evpnd.bgp.update import pack_announcements
from tests.test_malformed import ROUTE, ROUTE2


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evpnd.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_decode_prints_routes_in_frr_form() -> None:
    attrs = PathAttributes(origin=0, as_path=AsPath(), nexthop=b"\xc0\x00\x02\x01")
    (wire,) = pack_announcements([ROUTE, ROUTE2], attrs)
    result = run("decode", stdin=wire.hex())
    assert result.returncode == 0, result.stderr
    assert "+ 192.0.2.1:2 [2]:[0]:[48]:[02:00:00:00:00:01]" in result.stdout
    assert "+ 192.0.2.1:2 [2]:[0]:[48]:[02:00:00:00:00:02]:[32]:[10.0.0.2]" in result.stdout


def test_decode_reports_errors_and_cut_messages() -> None:
    result = run("decode", "ffff")
    assert result.returncode == 1
    assert "2 bytes left over" in result.stdout
    bad_marker = "00" * 16 + "001304"
    result = run("decode", bad_marker)
    assert result.returncode == 1
    assert "marker is not all ones" in result.stdout
    result = run("decode", "zz")
    assert result.returncode == 2 and "not hex" in result.stderr


def test_a_control_socket_path_that_is_a_file_is_left_alone(tmp_path) -> None:
    """evpnd refuses to start rather than delete a regular file named as its socket."""
    import subprocess
    import sys

    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    config = tmp_path / "evpnd.yaml"
    config.write_text(
        "asn: 65000\nrouter_id: 192.0.2.1\nlisten: {address: 127.0.0.1, port: 0}\n"
        f"evpn: {{program_kernel: false}}\ncontrol_socket: {victim}\nstate_dir: {tmp_path}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "evpnd.cli", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "exists and is no socket" in result.stderr
    assert victim.read_text() == "keep me"


def test_tables_never_pass_escape_sequences_to_the_terminal() -> None:
    from evpnd.control.tables import printable, table

    hostile = "evil\x1b]0;owned\x07\x1b[2J\u202e"
    assert printable(hostile) == "evil\\x1b]0;owned\\x07\\x1b[2J\\u202e"
    out = table([[hostile, "ok"]], ["Hostname", "State"])
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2J" in out


def test_the_ttl_of_a_saved_syn() -> None:
    from evpnd.daemon.sockets import ttl_of

    ipv4 = bytes([0x45, 0, 0, 60, 0, 0, 0x40, 0, 254, 6]) + bytes(10) + bytes(20)
    ipv6 = bytes([0x60, 0, 0, 0, 0, 40, 6, 255]) + bytes(32) + bytes(20)
    assert ttl_of(ipv4) == 254 and ttl_of(ipv6) == 255
    assert ttl_of(b"") is None and ttl_of(bytes(19)) is None


def test_frr_mac_table_groups_by_vni_with_local_and_remote_sequences() -> None:
    from evpnd.control.tables import frr_evpn_mac

    def mac(vni: int, kind: str, seq: int) -> dict[str, object]:
        return {"vni": vni, "mac": f"02:00:00:00:00:{vni % 100:02d}", "type": kind, "seq": seq,
                "frozen": False, "sticky": False, "port": "eth1", "vtep": "192.0.2.2"}  # fmt: skip

    macs = [mac(200, "remote", 3), mac(100, "local", 2), mac(200, "local", 0)]
    out = frr_evpn_mac(macs, {"vni": None})
    # `vni all`: each block headed by its VNI, as FRR does
    first, second = out.split("\n\nVNI ")
    assert first.startswith("VNI 100 #MACs (local and remote) 1\n")
    assert "02:00:00:00:00:00  local  " in first and first.rstrip().endswith("2/0")
    assert second.startswith("200 #MACs (local and remote) 2\n")
    assert "192.0.2.2" in second and "0/3" in second and "eth1" in second
    one = frr_evpn_mac([m for m in macs if m["vni"] == 200], {"vni": 200})
    assert one.startswith("Number of MACs (local and remote) known for this VNI: 2")
