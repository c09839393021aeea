"""evpnctl's command line without a daemon: vtysh's prefixes, options anywhere, per-command
help, usage errors with exit 2, completion and the man page from the same table."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from evpnd.control.grammar import COMMANDS, UsageError, complete, help_text, man_page, parse
from tests.loopback import ROOT


def evpnctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evpnd.control.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def test_unique_prefixes_pick_the_command() -> None:
    assert parse(["sho", "peer"]).command.name == "show peers"  # type: ignore[union-attr]
    assert parse(["sh", "b", "sum"]).command.name == "show bgp summary"  # type: ignore[union-attr]
    parsed = parse(["sh", "bgp", "l2", "e", "r", "ty", "macip", "det"])
    assert parsed.command is not None and parsed.command.name == "show bgp l2vpn evpn route"
    assert parsed.values == {"type": 2, "detail": True}
    with pytest.raises(
        UsageError, match="'r' is ambiguous after evpnctl show: routes, rmac, running-config"
    ):
        parse(["show", "r"])


def test_the_daily_vtysh_commands_parse() -> None:
    def values(*words: str) -> tuple[str, dict[str, object]]:
        parsed = parse(list(words))
        assert parsed.command is not None
        return parsed.command.name, parsed.values

    assert values("sh", "bgp", "l2", "ev", "sum") == ("show bgp l2vpn evpn summary", {})
    route = "show bgp l2vpn evpn route"
    assert values("sh", "bgp", "l2vpn", "evpn", "route", "vni", "100", "type", "macip") == (
        route, {"vni": 100, "type": 2}
    )  # fmt: skip
    assert values("show", "bgp", "l2vpn", "evpn", "route", "rd", "192.0.2.1:3", "mac",
                  "02-00-00-00-00-0A") == (
        route, {"rd": "192.0.2.1:3", "mac": "02:00:00:00:00:0a"}
    )  # fmt: skip
    assert values("show", "bgp", "l2vpn", "evpn", "vni") == ("show bgp l2vpn evpn vni", {})
    assert values("show", "bgp", "l2vpn", "evpn", "vni", "100")[1] == {"vni": 100}
    assert values("show", "bgp", "neighbors", "192.0.2.2", "routes") == (
        "show bgp neighbors", {"address": "192.0.2.2", "routes": True}
    )  # fmt: skip
    assert values("sh", "bgp", "nei", "192.0.2.2", "adv")[1] == {
        "address": "192.0.2.2", "advertised-routes": True
    }  # fmt: skip
    assert values("sh", "bgp", "l2", "ev", "nei", "192.0.2.2", "routes")[0] == (
        "show bgp l2vpn evpn neighbors"
    )
    assert values("show", "evpn", "mac", "vni", "all", "vtep", "192.0.2.2", "detail")[1] == {
        "vni": None, "vtep": "192.0.2.2", "detail": True
    }  # fmt: skip
    assert values("show", "evpn", "mac", "vni", "100", "mac", "02:00:00:00:00:01")[1] == {
        "vni": 100, "mac": "02:00:00:00:00:01"
    }  # fmt: skip
    assert values("show", "evpn", "arp-cache", "vni", "100", "ip", "10.0.0.1")[1] == {
        "vni": 100, "ip": "10.0.0.1"
    }  # fmt: skip
    assert values("sh", "run")[0] == "show running-config"
    assert values("sh", "vers")[0] == "show version"
    assert values("show", "peers", "192.0.2.2")[1] == {"address": "192.0.2.2"}


def test_options_anywhere_with_or_without_dashes() -> None:
    a = parse(["--json", "show", "routes", "-s", "/run/x.sock", "--vni", "100"])
    b = parse(["show", "routes", "vni", "100", "--json", "--socket=/run/x.sock"])
    assert a.values == b.values == {"vni": 100}
    assert a.json and b.json and a.socket == b.socket == "/run/x.sock"
    mac = parse(["show", "routes", "mac", "02-00-00-00-00-0A"])
    assert mac.values == {"mac": "02:00:00:00:00:0a"}
    evpn = parse(["show", "evpn", "mac", "vni", "all"])
    assert evpn.values == {"vni": None}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "routes", "--mac", "zz"], "MAC address 'zz'"),
        (["show", "routes", "--rd", "bogus"], "route distinguisher"),
        (["show", "routes", "--type", "9"], "route type '9'"),
        (["show", "peers", "--vni", "999"], "unknown option '--vni'"),
        (["show", "bogus"], "unknown command 'bogus'"),
        (["show"], "incomplete"),
        (["clear", "peer"], "ADDRESS is needed"),
        (["debug", "peer", "192.0.2.1", "maybe"], "on or off"),
        (["show", "evpn", "mac"], "--vni VNI|all is needed"),
        (["show", "evpn", "vni", "100", "200"], "unexpected '200'"),
        (["show", "bgp", "neighbors", "routes"], "which neighbour's routes"),
        (["show", "bgp", "nei", "192.0.2.2", "routes", "adv"], "not both"),
        (["show", "evpn", "mac", "vni", "all", "vtep", "zz"], "'zz' is no IP address"),
        (["show", "bgp", "l2vpn", "evpn", "route", "vni", "0"], "VNI 0"),
    ],
)
def test_usage_errors_say_what_and_exit_2(args: list[str], says: str) -> None:
    result = evpnctl("-s", "/nonexistent.sock", *args)
    assert result.returncode == 2, result
    assert says in result.stderr and "Traceback" not in result.stderr


def test_each_command_has_its_own_help() -> None:
    routes = evpnctl("show", "routes", "--help")
    assert routes.returncode == 0
    assert routes.stdout.startswith("usage: evpnctl show routes [--type TYPE] [--vni VNI]")
    assert "--detail" in routes.stdout and "--soft" not in routes.stdout
    clear = evpnctl("clear", "peer", "-h").stdout
    assert "usage: evpnctl clear peer ADDRESS [--soft]" in clear
    assert clear != routes.stdout
    group = evpnctl("show", "evpn", "--help").stdout
    assert "show evpn mac" in group and "show peers" not in group
    config = evpnctl("show", "running-config", "--help").stdout
    assert "as YAML" in config and "passwords masked" in config and "FRR has none" in config
    table = evpnctl("show", "bgp", "l2vpn", "evpn", "route", "--help").stdout
    assert "[--vni VNI] [--rd RD] [--mac MAC]" in table and "FRR 8.4's JSON keys" in table
    top = evpnctl("--help").stdout
    assert "exit codes:" in top and all(c.name in top for c in COMMANDS)


def test_completion_offers_the_next_words() -> None:
    assert complete([], "sh") == ["show"]
    assert complete(["show"], "n") == ["neigh"]
    assert "neighbors" in complete(["show", "bgp"], "")
    assert complete(["show", "routes"], "--v") == ["--vni"]
    assert complete(["debug", "peer", "192.0.2.1"], "o") == ["on", "off"]
    assert "all" in complete(["show", "evpn", "mac", "vni"], "")
    after_evpn = complete(["show", "bgp", "l2vpn", "evpn"], "")
    assert after_evpn[:4] == ["route", "summary", "vni", "neighbors"]
    assert "--vtep" in complete(["show", "evpn", "mac", "vni", "all"], "--")
    assert complete(["show", "bgp", "neighbors", "192.0.2.2"], "--a") == ["--advertised-routes"]
    printed = evpnctl("__complete", "show", "b").stdout.split()
    assert printed == ["bgp"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_completion_script_asks_evpnctl(tmp_path) -> None:
    shim = tmp_path / "evpnctl"
    shim.write_text(f'#!/bin/sh\ncd {ROOT} && exec {sys.executable} -m evpnd.control.cli "$@"\n')
    shim.chmod(0o755)
    script = ROOT / "contrib" / "bash-completion" / "evpnctl"
    probe = (
        f"source {script}; COMP_WORDS=(evpnctl show bgp n); COMP_CWORD=3; "
        "_evpnctl; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["neighbors"], out.stderr


def test_the_man_page_comes_from_the_same_table() -> None:
    page = man_page("1.0", "2026-12-01")
    assert page.startswith(".TH EVPNCTL 8")
    for command in COMMANDS:
        assert command.name.replace("-", "\\-") in page
    assert help_text((), None).count("\n") > len(COMMANDS)


def test_the_daemons_man_page_lists_its_options() -> None:
    from evpnd.cli import build_parser
    from evpnd.manpages import from_parser

    page = from_parser(build_parser(), "evpnd", "a BGP EVPN speaker for Linux VTEPs", "1.0", "x")
    for flag in ("\\-\\-config", "\\-\\-check", "\\-\\-log\\-level", "demo", "decode"):
        assert flag in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed (man-db has it)")
def test_the_man_pages_render_without_warnings(tmp_path) -> None:
    from evpnd.manpages import main

    assert main([str(tmp_path)]) == 0
    for page in ("evpnd.8", "evpnctl.8"):
        rendered = subprocess.run(
            ["groff", "-man", "-ww", "-Tutf8", str(tmp_path / page)], capture_output=True, text=True
        )
        assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
        text = re.sub(".\b", "", rendered.stdout)  # (bold is overstruck on a terminal)
        assert "SYNOPSIS" in text and "SEE ALSO" in text
