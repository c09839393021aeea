"""Imports point one way (docs/architecture.md): each part of evpnd may import only the parts
below it, never one beside or above it — so the protocol cores never reach into the kernel
shell or the daemon, and there are no cycles. Walks the source with `ast`, so an import inside
a function or under TYPE_CHECKING counts too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "evpnd"

#: lowest first; a part may import itself and anything on an earlier line
LAYERS = [
    # version; BGP numbers and decode errors; typed events; rate limits
    {"__init__", "wire", "events", "ratelimit"},
    {"evpn"},  # RDs, RTs, ESIs, the EVPN routes
    {"bgp"},  # the BGP codec and state machines
    {"rib", "config"},  # Adj-RIB-In, Loc-RIB, Adj-RIB-Out; the configuration
    {"config_changes"},  # what a reload changes, and what it cannot
    {"local"},  # what this VTEP originates, local MACs and their mobility
    {"kernel"},  # the netlink shell around the desired state and the reconciler
    {"control"},  # the control socket, evpnctl, the watch stream
    {"daemon"},  # the asyncio shell that wires all of the above
    {"demo"},  # the namespace fabric (runs evpnd and evpnctl)
    {"multisite"},  # the two-site demo, built on the demo
    {"cli"},  # `evpnd`: the entry point
    {"manpages"},  # evpnd(8) and evpnctl(8), from the entry point's parser and evpnctl's table
]
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """`evpnd.kernel.dataplane` -> `kernel`; `evpnd.events` -> `events`; `evpnd` -> root."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def imports(path: Path) -> list[tuple[int, str]]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.append((node.lineno, target))
    return [(line, name) for line, name in out if name == "evpnd" or name.startswith("evpnd.")]


def test_every_part_is_placed() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts = {p for p in parts if not p.startswith(("_", ".")) or p == "__init__"}
    parts -= {"__pycache__", "default"}  # default.yaml is data
    assert parts <= set(LEVEL), f"place these in LAYERS: {sorted(parts - set(LEVEL))}"


def test_imports_point_down() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = part_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for line, name in imports(path):
            target = part_of(name)
            if target == own:
                continue
            if LEVEL[target] >= LEVEL[own]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} imports {name}")
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path) -> None:
    """The walker finds imports inside functions and under TYPE_CHECKING."""
    source = tmp_path / "evpnd" / "rib" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from evpnd.daemon import d\n"
        "def f():\n    import evpnd.kernel.dataplane\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "evpnd"
    try:
        found = imports(source)
    finally:
        PACKAGE = saved
    assert [name for _, name in found] == ["evpnd.daemon", "evpnd.kernel.dataplane"]
