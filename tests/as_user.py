"""Running evpnd or evpnctl as another user (nobody) from any clone. The checkout, the
virtualenv and its interpreter may be where that user cannot go (a clone in /root, mode 0700;
a pyenv interpreter under /root): `readable_runtime(folder)` copies what the programs import —
the evpnd package and the distributions it requires, from this interpreter's site-packages —
into a folder anyone can read, to run with the system's /usr/bin/python3."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Runtime:
    python: str
    folder: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.folder)}


def _required(requirements: list[str], seen: set[str]) -> None:
    """The distributions these requirements name for this platform, and theirs, recursively
    (no extras)."""
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        key = requirement.name.lower().replace("_", "-")
        if key not in seen:
            seen.add(key)
            _required(metadata.requires(requirement.name) or [], seen)


def readable_runtime(folder: Path) -> Runtime:
    """evpnd and its dependencies copied into `folder` (made readable by all)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"no {SYSTEM_PYTHON} for another user to run")
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if version != str(sys.version_info[:2]):
        pytest.skip(f"{SYSTEM_PYTHON} is {version}, the test's packages are built for another")
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "evpnd", folder / "evpnd", ignore=shutil.ignore_patterns("__pycache__"))
    needed: set[str] = set()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    _required(project["dependencies"], needed)
    for name in sorted(needed):
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            if ".." in file.parts or "__pycache__" in file.parts:
                continue
            source = Path(str(distribution.locate_file(file)))
            if source.is_file():
                (folder / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / file)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    for parent in folder.parents:
        if not os.access(parent, os.X_OK) or parent.stat().st_mode & 0o001 == 0:
            raise AssertionError(f"{folder}: {parent} is not open to other users")
        if parent == Path("/"):
            break
    return Runtime(SYSTEM_PYTHON, folder)
