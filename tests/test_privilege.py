"""Least privilege, against the real kernel: evpnd as an unprivileged user holding only the
capabilities the unit grants (CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_NET_RAW) binds port
179, takes a peer's routes and programs them into the FDB."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from tests.as_user import readable_runtime
from tests.netns import LAB, ROOT, lab, wait_for
from tests.test_kernel_truth import PEER, PEER_SCRIPT, SPEAKER

pytestmark = LAB

CAPS = "+net_admin,+net_bind_service,+net_raw"


def test_evpnd_programs_the_kernel_as_an_unprivileged_user_with_three_capabilities() -> None:
    user = pwd.getpwnam("nobody")
    with lab() as the_lab:
        # the checkout and the venv may be closed to nobody (a clone in /root): a copy
        runtime = readable_runtime(the_lab.dir / "runtime")
        ns = the_lab.ns("v")
        for address in (f"{SPEAKER}/32", f"{PEER}/32"):
            the_lab.run(ns, "ip", "addr", "add", address, "dev", "lo")
        the_lab.vxlan_bridge(ns, 100, SPEAKER)
        home = the_lab.dir / "unprivileged"
        home.mkdir()
        shutil.chown(home, user.pw_uid, user.pw_gid)
        config = home / "evpnd.yaml"
        config.write_text(
            f"""asn: 65000
router_id: {SPEAKER}
listen: {{address: {SPEAKER}, port: 179}}
listen_ranges: [{{prefix: 192.168.72.0/24, remote_as: 65000}}]
control_socket: {home}/evpnd.sock
state_dir: {home}
"""
        )
        os.chmod(config, 0o644)
        log = (home / "evpnd.log").open("wb")
        process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "setpriv", f"--reuid={user.pw_uid}",
             f"--regid={user.pw_gid}", "--clear-groups", f"--inh-caps={CAPS}",
             f"--ambient-caps={CAPS}", f"--bounding-set=-all,{CAPS}", runtime.python, "-m",
             "evpnd.cli", "--config", str(config)],
            stdout=log, stderr=log, cwd=runtime.folder, env=runtime.env,
        )  # fmt: skip
        the_lab.processes.append(process)
        wait_for("evpnd", lambda: (home / "evpnd.sock").exists(), 20)
        status = Path(f"/proc/{process.pid}/status").read_text()
        assert f"Uid:\t{user.pw_uid}" in status
        held = int(next(x for x in status.splitlines() if x.startswith("CapEff")).split()[1], 16)
        assert held == (1 << 12) | (1 << 10) | (1 << 13)  # NET_ADMIN, NET_BIND_SERVICE, NET_RAW
        peer = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", PEER_SCRIPT, "100"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        the_lab.processes.append(peer)  # type: ignore[arg-type]

        def programmed() -> int:
            table = the_lab.run(ns, "bridge", "fdb", "show", "dev", "vxlan100")
            return sum(1 for line in table.splitlines() if "extern_learn" in line)

        wait_for("100 MACs in the FDB, both halves", lambda: programmed() == 200, 30)
        assert "Traceback" not in (home / "evpnd.log").read_text()
