"""Everything is in pyproject.toml but what setuptools cannot say there: the man pages evpnd(8)
and evpnctl(8) are made when a wheel or an sdist is built, from the same parser and command
table as --help (evpnd/manpages.py), and go in the wheel as data files with evpnctl's bash
completion — `pip install` puts them under PREFIX/share, the Debian package under /usr/share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import setuptools
from setuptools import setup

MAN = "build/man"  # relative: setuptools wants data files relative to this folder

subprocess.run(
    [sys.executable, "-m", "evpnd.manpages", MAN], cwd=Path(__file__).resolve().parent, check=True
)
# Apache-2.0 as an SPDX expression (PEP 639) where setuptools knows it (77 and later); Debian
# 12's setuptools 66 knows only the old License field, and newer ones refuse that form in
# pyproject.toml from 2027
LICENSE = (
    {"license_expression": "Apache-2.0", "license_files": ["LICENSE"]}
    if int(setuptools.__version__.split(".")[0]) >= 77
    else {"license": "Apache-2.0", "license_files": ["LICENSE"]}
)

setup(
    **LICENSE,
    data_files=[
        ("share/man/man8", [f"{MAN}/evpnd.8", f"{MAN}/evpnctl.8"]),
        ("share/bash-completion/completions", ["contrib/bash-completion/evpnctl"]),
    ],
)
