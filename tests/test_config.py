from __future__ import annotations

import subprocess
import sys

import pytest

from evpnd.cli import default_config_text
from evpnd.config import ConfigError, parse

GOOD = """asn: 65000
router_id: 192.0.2.1
neighbors:
  - {address: 192.0.2.2, remote_as: 65000, password: x, multihop: 2}
listen_ranges:
  - {prefix: 192.0.2.0/24, remote_as: 65000}
evpn:
  vnis:
    - vni: 100
      rd: 192.0.2.1:7
      import_rts: ["65000:100"]
      macs: [{mac: "02:00:00:00:00:01", ip: 10.0.0.1}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "evpnd.yaml")
    return caught.value.problems


def test_a_good_file() -> None:
    config = parse(GOOD)
    assert config.asn == 65000 and config.neighbors[0].multihop == 2
    assert str(config.listen_ranges[0].prefix) == "192.0.2.0/24"
    vni = config.evpn.vnis[0]
    assert str(vni.rd) == "192.0.2.1:7" and vni.import_rts[0].value == "65000:100"
    assert vni.macs[0].ip == bytes((10, 0, 0, 1))


def test_the_embedded_default_is_valid() -> None:
    config = parse(default_config_text())
    assert config.asn == 65000 and config.neighbors == ()
    assert not config.resolve_via_default
    assert parse(GOOD + "resolve_via_default: true\n").resolve_via_default


def test_errors_name_file_line_and_key() -> None:
    assert problems(GOOD.replace("remote_as: 65000, password", "remote_as: 650o0, password")) == [
        'evpnd.yaml:4: neighbors[0].remote_as: expected an AS number 1-4294967295, got "650o0"'
    ]
    assert problems(GOOD + "colour: blue\n") == ["evpnd.yaml:13: colour: unknown key"]
    assert problems(GOOD.replace("rd: 192.0.2.1:7", "rd: nonsense")) == [
        "evpnd.yaml:10: evpn.vnis[0].rd: route distinguisher 'nonsense': expected ASN:N or IPv4:N"
    ]
    assert problems("neighbors: []\n") == ["evpnd.yaml:1: asn: required: an AS number"]
    assert problems("asn: [1\n")[0].startswith("evpnd.yaml:2: not valid YAML")


def test_every_problem_is_reported_at_once() -> None:
    found = problems("asn: 0\nhold_time: 2\nneighbors:\n  - {address: nope, remote_as: 1}\n")
    assert len(found) == 3
    assert any("hold_time" in p for p in found) and any("address" in p for p in found)


def test_check_command(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + "colour: blue\n")
    ok = subprocess.run(
        [sys.executable, "-m", "evpnd.cli", "--check", "--config", str(good)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "valid" in ok.stdout
    ko = subprocess.run(
        [sys.executable, "-m", "evpnd.cli", "--check", "--config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert ko.returncode == 1 and "bad.yaml:13: colour: unknown key" in ko.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "evpnd.cli", "--check", "--config", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_evpnctl_without_a_daemon_says_so(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evpnd.control.cli", "-s", str(tmp_path / "sock"), "show", "peers"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 3
    assert "is evpnd running?" in result.stderr and "Traceback" not in result.stderr


def test_l3vni_and_vrfs() -> None:
    text = """asn: 65000
router_id: 192.0.2.1
evpn:
  vnis: [{vni: 110}]
  l3vni:
    vni: 4001
    advertise: {connected: false, prefixes: [10.9.0.0/16, "2001:db8::/32"]}
  vrfs:
    red: {l3vni: 5001}
"""
    config = parse(text, "evpnd.yaml")
    default, red = config.evpn.l3vnis
    assert (default.vni, default.vrf, default.advertise_connected) == (4001, None, False)
    assert [str(p) for p in default.prefixes] == ["10.9.0.0/16", "2001:db8::/32"]
    assert (red.vni, red.vrf, red.advertise_connected) == (5001, "red", True)
    assert problems(text.replace("10.9.0.0/16", "10.9.1.1/16")) == [
        "evpnd.yaml:7: evpn.l3vni.advertise.prefixes[0]: expected a prefix like 10.9.0.0/16:"
        " 10.9.1.1/16 has host bits set"
    ]
    assert problems(text.replace("l3vni: 5001", "l3vni: 110")) == [
        "evpnd.yaml:9: evpn.vrfs.red: VNI 110 is configured twice (L2VNI or L3VNI)"
    ]
    assert problems(text.replace("{l3vni: 5001}", "{vni: 5001}")) == [
        "evpnd.yaml:9: evpn.vrfs.red.l3vni: required: a VNI",
        "evpnd.yaml:9: evpn.vrfs.red.vni: unknown key",
    ]
    assert problems(text + "control_group: no-such-group-here\n") == [
        "evpnd.yaml:10: control_group: no group named 'no-such-group-here' on this host"
    ]


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("asn: !!python/object/apply:os.system [true]\n", "evpnd.yaml:1: YAML tag"),
        ("asn: 65000\nhostname: !vault |\n  abc\n", "evpnd.yaml:2: YAML tag !vault"),
        ("asn: 65000\nstate_dir: !!timestamp 2001-99-99\n", "evpnd.yaml:2: YAML tag"),
        ('asn: !!int "sixty-five"\n', "evpnd.yaml:1: asn: expected an AS number"),
        ("asn: 65000\nasn: 65001\n", "evpnd.yaml:2: asn: given twice (first on line 1)"),
        ("asn: 65000\nrouter_id: 0.0.0.0\n", "evpnd.yaml:2: router_id: 0.0.0.0 is no BGP"),
        (
            "asn: 65000\ngraceful_restart: {stale_path_time: .nan}\n",
            "graceful_restart.stale_path_time: expected seconds",
        ),
        (
            "asn: 65000\nneighbors:\n  - {address: 192.0.2.2, remote_as: 1, connect_retry: .inf}\n",
            "neighbors[0].connect_retry: expected seconds",
        ),
        (
            "asn: 65000\nneighbors:\n"
            f"  - {{address: 192.0.2.2, remote_as: 1, password: {'x' * 81}}}\n",
            "neighbors[0].password: 81 bytes; TCP MD5 keys are 80 at most",
        ),
        (
            "asn: 65000\nrouter_id: 192.0.2.1\n"
            "neighbors:\n  - {address: 192.0.2.1, remote_as: 1}\n",
            "evpnd.yaml:4: neighbors[0].address: is this speaker's own address",
        ),
    ],
)
def test_broken_files_get_a_file_line_error(text: str, wanted: str) -> None:
    found = problems(text)
    assert any(wanted in p for p in found), found


def test_an_alias_bomb_is_refused_quickly() -> None:
    """ "Billion laughs": nine levels of ten aliases each would be a billion nodes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        below = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([below] * 10)}]")
    lines.append("asn: 65000")
    found = problems("\n".join(lines) + "\n")
    assert found == ["evpnd.yaml:1: aliases expand to more than 2,000,000 nodes; refused"]


def test_a_binary_or_huge_file_is_refused_with_a_reason(tmp_path) -> None:
    from evpnd.config import MAX_CONFIG_BYTES, load

    binary = tmp_path / "evpnd.yaml"
    binary.write_bytes(b"asn: 65000\nhostname: \xff\xfe\n")
    with pytest.raises(ConfigError) as caught:
        load(binary)
    assert caught.value.problems == ["evpnd.yaml:2: not UTF-8 text (byte 21)"]
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError) as caught:
        load(huge)
    assert "larger than 16 MiB" in caught.value.problems[0]


def test_every_problem_names_its_line() -> None:
    found = problems(
        "asn: 65000\nhold_time: 2\nneighbors:\n"
        "  - {address: 192.0.2.2, remote_as: 1}\n  - {address: 192.0.2.2, remote_as: 1}\n"
    )
    assert "evpnd.yaml:2: hold_time: must be 0 or at least 3 (RFC 4271)" in found
    assert (
        "evpnd.yaml:5: neighbors[1].address: 192.0.2.2 is listed twice (first on line 4)" in found
    )
    assert all(p.split(":")[1].isdigit() and p.split(":")[1] != "0" for p in found), found


def test_update_source_is_an_address_or_an_interface() -> None:
    """`update_source: lo` as FRR's `update-source lo`: the interface's address is looked up
    when the session connects (daemon/sockets.interface_address)."""
    for value, kept in (("lo", "lo"), ("wg0", "wg0"), ("2001:db8::1", "2001:db8::1")):
        text = GOOD.replace("multihop: 2}", f"multihop: 2, update_source: {value}}}")
        assert parse(text).neighbors[0].update_source == kept
    for bad in ("a/b", "sixteen-chars-xx", '"a b"'):
        text = GOOD.replace("multihop: 2}", f"multihop: 2, update_source: {bad}}}")
        assert problems(text) == [
            f"evpnd.yaml:4: neighbors[0].update_source: expected an IP address or an interface "
            f'name, got "{bad.strip(chr(34))}"'
        ]


def test_an_interface_gives_its_global_address_first() -> None:
    import socket

    from evpnd.daemon.sockets import interface_address

    assert interface_address("lo", socket.AF_INET) is not None  # (127.0.0.1 here: host scope)
    assert interface_address("no-such-if", socket.AF_INET) is None


def test_evpnctl_says_what_is_wrong_with_the_socket_path(tmp_path) -> None:
    """A folder for -s is named as such; `watch` without a daemon is exit code 3 too."""
    for args in (["-s", str(tmp_path), "show", "peers"], ["-s", str(tmp_path / "x"), "watch"]):
        result = subprocess.run(
            [sys.executable, "-m", "evpnd.control.cli", *args], capture_output=True, text=True
        )
        assert result.returncode == 3, result.stderr
        assert "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "evpnd.control.cli", "-s", str(tmp_path), "show", "peers"],
        capture_output=True,
        text=True,
    )
    assert f"{tmp_path} is not a socket" in result.stderr


def test_evpnctl_into_a_closed_pipe_ends_quietly(tmp_path) -> None:
    """`evpnctl show routes --json | head -1`: no BrokenPipeError traceback, exit code 0."""
    import json
    import socket
    import threading

    path = str(tmp_path / "sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    routes = [
        {"route": f"[2]:[0]:[48]:[02:00:00:00:{n >> 8:02x}:{n & 255:02x}]"} for n in range(20000)
    ]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.makefile("rb").readline()
            conn.sendall(json.dumps({"ok": True, "result": routes}).encode() + b"\n")

    threading.Thread(target=answer, daemon=True).start()
    command = f"{sys.executable} -m evpnd.control.cli -s {path} show routes --json | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=30
    )
    server.close()
    assert result.stdout == "[\n" and "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0


def test_a_router_id_picked_for_the_operator_is_a_note(tmp_path) -> None:
    config = parse("asn: 65000\n", "x.yaml")
    (note,) = config.notes
    assert note.startswith("x.yaml: router_id is not set") and config.router_id in note
    assert not parse("asn: 65000\nrouter_id: 192.0.2.1\n", "x.yaml").notes
    path = tmp_path / "x.yaml"
    path.write_text("asn: 65000\nevpn: {advertise_all_vni: false}\n")
    checked = subprocess.run(
        [sys.executable, "-m", "evpnd.cli", "--check", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0 and "(0 neighbors, 0 VNIs)" in checked.stdout
    assert "note: " in checked.stdout and "router_id is not set" in checked.stdout
