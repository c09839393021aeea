"""Man pages evpnd(8) and evpnctl(8), made from what --help is made of: evpnd's argparse
parser and evpnctl's command table (control/grammar.py). `python -m evpnd.manpages DIR`
writes both; building a wheel or the Debian package runs it (setup.py), so they are dated
SOURCE_DATE_EPOCH when it is set (reproducible builds: the package's changelog date)."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from evpnd import __version__
from evpnd.control.grammar import man_page as evpnctl_page


def _roff(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    text = ", ".join(action.option_strings)
    if action.nargs != 0:
        if action.choices:
            text += " {" + ",".join(str(c) for c in action.choices) + "}"
        else:
            text += " " + (
                action.metavar if isinstance(action.metavar, str) else action.dest.upper()
            )
    return text


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        lines += [".TP", ".B " + _roff(_flags(action)), _roff(action.help or "")]
    return lines


def from_parser(
    parser: argparse.ArgumentParser, name: str, summary: str, version: str, date: str
) -> str:
    lines = [
        f'.TH {name.upper()} 8 "{date}" "evpnd {version}" "System Administration"',
        ".SH NAME",
        f"{name} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        _roff(" ".join(parser.format_usage().removeprefix("usage: ").split())),
        ".SH DESCRIPTION",
        _roff(parser.description or summary),
        ".SH OPTIONS",
        *_options(parser),
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines.append(".SH COMMANDS")
            helps = {a.dest: a.help for a in action._choices_actions}
            for command, sub in action.choices.items():
                lines += [".SS " + _roff(command), _roff(helps.get(command) or "")]
                lines += _options(sub)
    lines += [
        ".SH FILES",
        ".TP",
        ".B /etc/evpnd/evpnd.yaml",
        "the configuration (evpnd default\\-config prints a commented one)",
        ".TP",
        ".B /run/evpnd/evpnd.sock",
        "the control socket evpnctl talks to",
        ".SH SEE ALSO",
        "evpnctl(8)",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    from evpnd.cli import build_parser

    if len(argv) != 1:
        print("usage: python -m evpnd.manpages DIRECTORY", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.UTC) if epoch else None
    date = (when.date() if when else datetime.date.today()).isoformat()
    summary = "a BGP EVPN speaker for Linux VTEPs"
    daemon = from_parser(build_parser(), "evpnd", summary, __version__, date)
    (folder / "evpnd.8").write_text(daemon)
    (folder / "evpnctl.8").write_text(evpnctl_page(__version__, date))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
