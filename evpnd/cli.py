"""The evpnd command: the daemon, `--check` for a configuration, and `decode` for BGP bytes."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import gc
import multiprocessing
import os
import signal
import sys
import time
from importlib import resources
from typing import TYPE_CHECKING

from evpnd import __version__
from evpnd.config import Config, ConfigError, load, parse
from evpnd.daemon.sdnotify import notify

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon


#: The cyclic collector's thresholds. A RIB is millions of small long-lived objects that never
#: form cycles: the defaults (700, 10, 10) make the collector rescan them over and over while
#: a table arrives (a third of the time for 1,000,000 routes, measured with
#: benchmarks/receive.py). The middle one bounds the pause of a generation-1 collection, which
#: walks up to threshold0 x threshold1 surviving objects: (100,000, 50) stopped the loop for
#: 0.86 s while a million routes arrived, (20,000, 10) for at most 0.05 s, for the same total
#: (measured: a million routes through the stages of benchmarks/stages.py). The last one keeps
#: full collections as rare as before (one per 500 million allocations, and the collector's
#: own rule of 25 % growth).
GC_THRESHOLDS = (20_000, 10, 2_500)


def _decode(hex_text: str) -> int:
    from evpnd.bgp.framing import MessageReader
    from evpnd.bgp.messages import decode_message, message_text
    from evpnd.bgp.update import Update
    from evpnd.wire.errors import DecodeError

    try:
        data = bytes.fromhex("".join(hex_text.split()))
    except ValueError as exc:
        print(f"evpnd decode: not hex: {exc}", file=sys.stderr)
        return 2
    reader = MessageReader(max_message_len=65535)
    reader.feed(data)
    status = 0
    for raw in reader.messages():
        if isinstance(raw, DecodeError):
            print(f"stream error: {raw}")
            return 1
        message = decode_message(raw)
        if isinstance(message, DecodeError):
            print(f"error: {message}")
            status = 1
            continue
        if not isinstance(message, Update):
            print(message_text(message))
            continue
        print("UPDATE")
        for route in message.announced:
            print(f"  + {route.rd} {route.text}")
        for route in message.withdrawn:
            print(f"  - {route.rd} {route.text}")
        print(f"  attributes: {message.attributes.text}")
        for error in message.errors:
            print(f"  {error}")
    if reader.buffered:
        print(f"{reader.buffered} bytes left over: a message cut short")
        status = 1
    return status


def _vnis_checked(config: Config) -> str:
    """What `--check` says of the VNIs: with advertise_all_vni they come from the kernel, so
    it names the vxlan devices it finds now rather than printing "0 VNIs"."""
    configured = len(config.evpn.vnis)
    if not config.evpn.advertise_all_vni:
        return f"{configured} VNIs"
    try:
        from evpnd.kernel.links import discover

        ports, _ = discover()
    except Exception as exc:  # no netlink here (a container without it): say so, no more
        return f"VNIs from the kernel's vxlan devices (advertise_all_vni); cannot list them: {exc}"
    found = ", ".join(f"{p.name} (VNI {vni})" for vni, p in sorted(ports.items())) or "none yet"
    return (
        f"{configured} VNIs configured, and every vxlan device in a bridge (advertise_all_vni):"
        f" {found}"
    )


def default_config_text() -> str:
    return resources.files("evpnd").joinpath("default.yaml").read_text()


#: the file evpnd reads without `--config`, when it exists (scripts/install puts it there);
#: EVPND_CONFIG names another one (the tests: none of them may read the host's /etc)
DEFAULT_CONFIG = "/etc/evpnd/evpnd.yaml"


def default_config_path() -> str:
    return os.environ.get("EVPND_CONFIG") or DEFAULT_CONFIG


def config_path(given: str | None) -> str | None:
    """The file to read: `--config`, else the default file when it exists; None: none, the
    embedded default."""
    if given is not None:
        return given
    path = default_config_path()
    return path if os.path.exists(path) else None


def config_name(path: str | None) -> str:
    """Which configuration that is, in words (`--check`, the start's log line)."""
    if path is not None:
        return path
    return f"the embedded default (no {default_config_path()})"


def _load(path: str | None) -> Config:
    if path is None:
        return parse(default_config_text(), "default.yaml")
    return load(path)


async def _watchdog(every: float) -> None:
    while True:  # only a live event loop gets here: that is what the watchdog checks
        notify("WATCHDOG=1")
        await asyncio.sleep(every)


#: how often `systemctl status` gets a new STATUS= line
STATUS_EVERY = 5.0


async def _status(daemon: Daemon) -> None:
    last = ""
    while True:
        line = daemon.status_line()
        if line != last:
            notify(f"STATUS={line}")
            last = line
        await asyncio.sleep(STATUS_EVERY)


async def _read_elsewhere(loop: asyncio.AbstractEventLoop, path: str) -> Config:
    """The configuration file, read and checked in a process of its own: YAML parsing holds
    the interpreter's lock for seconds on a large file (libyaml's too), and the loop must keep
    the sessions' keepalives going meanwhile. A new process each time: reloads are rare."""
    context = multiprocessing.get_context("spawn")  # not fork: this process has threads
    pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
    try:
        return await loop.run_in_executor(pool, load, path)
    finally:
        pool.shutdown(wait=False)  # (waiting would hold the loop until the process is gone)


async def _run(config: Config, path: str | None, debug_all: bool = False) -> None:
    import structlog

    from evpnd.control.server import ControlServer
    from evpnd.daemon import commands
    from evpnd.daemon.daemon import Daemon, ReloadRefused

    log = structlog.get_logger("evpnd")
    loop = asyncio.get_running_loop()
    daemon = Daemon(config, loop)
    daemon.debugging.everything = debug_all  # --log-level debug: every peer and VNI
    await daemon.start()

    reloading = asyncio.Lock()

    async def reload() -> dict[str, object]:
        """SIGHUP and `evpnctl reload`: re-read the file; a broken one changes nothing. The
        file is read and checked in a worker thread (a large or hostile file takes seconds, and
        the loop must keep the sessions' keepalives going meanwhile); only a whole, valid
        configuration is applied, on the loop, at once."""
        if path is None:
            log.warning("reload: running on the embedded default; nothing to re-read")
            return {"reloaded": False, "problems": ["running on the embedded default"]}
        async with reloading:  # one at a time, in the order asked
            notify("RELOADING=1")  # systemctl shows "reloading" until READY=1
            try:
                try:
                    config = await _read_elsewhere(loop, path)
                except ConfigError as exc:
                    # The old configuration stays in force: a typo must not take a VTEP down.
                    log.error(
                        "reload refused; keeping the running configuration", problems=exc.problems
                    )
                    daemon.reloads.refused(time.time())
                    return {"reloaded": False, "problems": exc.problems}
                try:
                    done, failed = await daemon.reload(config)
                except ReloadRefused as exc:
                    # all or nothing: a file applied in part would run as no file says
                    log.warning(
                        "reload refused; keeping the running configuration",
                        problems=exc.problems,
                    )
                    daemon.reloads.refused(time.time())
                    return {"reloaded": False, "problems": exc.problems}
                daemon.reloads.done(time.time())
            finally:
                notify("READY=1")  # (applied, or refused: running either way)
                notify(f"STATUS={daemon.status_line()}")
        return {"reloaded": True, "problems": failed, "changes": done}

    pending: set[asyncio.Task[dict[str, object]]] = set()

    def reload_on_signal() -> None:
        task = loop.create_task(reload())
        pending.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(pending.discard)

    daemon.reload_file = reload if path else None
    control = ControlServer(
        config.control_socket,
        functools.partial(commands.handle, daemon),
        daemon.events.follow,
        config.control_group,
        config.control_write_group,
    )
    await control.start()
    if config.metrics is not None:
        from evpnd.daemon.metrics import serve

        serve(daemon, *config.metrics, control)
    notify("READY=1")
    watchdog = int(os.environ.get("WATCHDOG_USEC", "0")) / 1e6
    pinger = loop.create_task(_watchdog(watchdog / 2)) if watchdog else None
    status = loop.create_task(_status(daemon)) if os.environ.get("NOTIFY_SOCKET") else None
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_on_signal)
    await stop.wait()
    notify("STOPPING=1")
    for task in (pinger, status):
        if task is not None:
            task.cancel()
    await daemon.stop()
    await control.stop()


def build_parser() -> argparse.ArgumentParser:
    """The command line (also the source of the man page, evpnd/manpages.py)."""
    parser = argparse.ArgumentParser(prog="evpnd", description="BGP EVPN speaker for Linux VTEPs")
    parser.add_argument("--version", action="version", version=f"evpnd {__version__}")
    parser.add_argument(
        "--config",
        help=f"YAML configuration (default: {DEFAULT_CONFIG} when it exists, else the embedded"
        " one)",
    )
    parser.add_argument("--check", action="store_true", help="validate the configuration, exit")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning"],
        help="the least a line must be to be logged; debug also debugs every peer and VNI",
    )
    sub = parser.add_subparsers(dest="command")
    decode = sub.add_parser("decode", help="decode BGP messages given as hex")
    decode.add_argument("hex", nargs="?", help="hex bytes (default: read standard input)")
    sub.add_parser("default-config", help="print the embedded default configuration")
    demo = sub.add_parser(
        "demo", help="build a throw-away EVPN fabric in network namespaces, ping, tear down"
    )
    demo.add_argument("--vteps", type=int, default=3, help="evpnd VTEPs (default 3)")
    frr = demo.add_mutually_exclusive_group()
    frr.add_argument("--frr", dest="frr", action="store_true", default=None,
                     help="add an FRR VTEP (default: when FRR is installed)")  # fmt: skip
    frr.add_argument("--no-frr", dest="frr", action="store_false")
    demo.add_argument("--keep", action="store_true", help="leave it up until Ctrl-C")
    demo.add_argument(
        "--irb", action="store_true", help="a subnet per VTEP, routed through an L3VNI"
    )
    demo.add_argument(
        "--multisite",
        action="store_true",
        help="two sites (AS 65000, 65001) joined by WireGuard; shows doctor's MTU finding",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from evpnd.demo import run as run_demo

        if not 1 <= args.vteps <= 20:
            parser.error("--vteps: 1 to 20")
        if args.multisite:
            from evpnd.multisite import run as run_sites

            return run_sites(args.keep)
        return run_demo(args.vteps, args.frr, args.keep, args.irb)
    if args.command == "decode":
        return _decode(args.hex if args.hex is not None else sys.stdin.read())
    if args.command == "default-config":
        print(default_config_text(), end="")
        return 0
    path = config_path(args.config)
    try:
        config = _load(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        print(
            f"{config_name(path)}: configuration is valid "
            f"({len(config.neighbors)} neighbors, {_vnis_checked(config)})"
        )
        for note in config.notes:
            print(f"note: {note}")
        return 0
    import structlog

    from evpnd.daemon.logs import configure

    configure(args.log_level)
    structlog.get_logger("evpnd").info("configuration", file=config_name(path))
    gc.set_threshold(*GC_THRESHOLDS)
    # uvloop for our loop only: pyroute2 runs asyncio loops of its own in worker threads, and
    # uvloop cannot open netlink sockets, so it must not become the global policy.
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    profile = os.environ.get("EVPND_PROFILE")  # a file: cProfile the event loop's thread
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_run(config, path, args.log_level == "debug"))
    except OSError as exc:
        print(f"evpnd: {exc}", file=sys.stderr)
        return 1
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
