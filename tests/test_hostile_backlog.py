"""A peer that never reads, against a real evpnd whose send buffers are small (tcp_wmem set in
its namespace, so the kernel cannot take the table off its hands): evpnd's queue for it
passes max_output_bytes and the peer is dropped with Cease / Out of Resources (RFC 4486),
while a 9 s-hold neighbour beside it keeps its session and the loop keeps up (issue #23).
On plain loopback the kernel's buffers take about 4 MB first (test_hostile_loopback.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.netns import LAB, ROOT, lab, wait_for

pytestmark = LAB

MACS = 50_000  # about 1.7 MB of UPDATEs: past the smallest bound, 1 MiB
SCRAPE = (
    "import urllib.request; "
    "print(urllib.request.urlopen('http://127.0.0.1:9179/metrics', timeout=10).read().decode())"
)


def config(me: str, neighbors: str, macs: str = "") -> str:
    return f"""asn: 65000
router_id: {me}
listen: {{address: "{me}", port: 179}}
metrics: {{address: "{me}", port: 9179}}
hold_time: 9
evpn: {{program_kernel: false, vnis: [{{vni: 100{macs}}}]}}
neighbors:
{neighbors}"""


def test_a_peer_that_never_reads_is_dropped_past_the_bound() -> None:
    with lab() as the_lab:
        ns = the_lab.ns("v")
        # evpnd's sockets get at most 64 KB of kernel buffer: the rest waits in evpnd
        the_lab.run(ns, "sysctl", "-qw", "net.ipv4.tcp_wmem=4096 16384 65536")
        the_lab.run(ns, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 16384 65536")
        statics = ", ".join(
            f'{{mac: "02:00:00:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"}}'
            for i in range(1, MACS + 1)
        )
        a = the_lab.evpnd(
            ns,
            "a",
            config(
                "127.0.0.1",
                "  - {address: 127.0.0.2, remote_as: 65000, update_source: 127.0.0.1,"
                " connect_retry: 1}\n"
                "  - {address: 127.0.0.3, remote_as: 65099, passive: true,"
                " max_output_bytes: 1048576}\n",
                f", macs: [{statics}]",
            ),
        )
        the_lab.evpnd(
            ns,
            "b",
            config("127.0.0.2", "  - {address: 127.0.0.1, remote_as: 65000, passive: true}\n"),
        )
        wait_for("A and B up", lambda: a.peer_state("127.0.0.2") == "Established", 60)
        (b_before,) = [p for p in a.ctl("show", "peers") if p["address"] == "127.0.0.2"]

        def loop_lag() -> float:
            """The loop's largest delay since the last scrape (evpnd_loop_lag_seconds)."""
            text = the_lab.run(ns, sys.executable, "-c", SCRAPE)
            (line,) = [x for x in text.splitlines() if x.startswith("evpnd_loop_lag_seconds ")]
            return float(line.split()[1])

        loop_lag()  # (from here on)
        silent = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-m",
                "tests.silent_peer",
                "127.0.0.1",
                "179",
                "127.0.0.3",
                "65099",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        the_lab.processes.append(silent)  # type: ignore[arg-type]
        assert silent.stdout is not None and silent.stdin is not None
        assert json.loads(silent.stdout.readline()) == {"established": True}
        wait_for(
            "the silent peer dropped",
            lambda: "peer dropped: not reading" in a.log.read_text(),
            60,
        )
        silent.stdin.write("read now\n")
        silent.stdin.flush()
        answer = json.loads(silent.stdout.readline())
        silent.wait(30)
        assert answer == {"notification": {"code": 6, "subcode": 8}}, answer
        # the 9 s-hold neighbour never noticed, and the loop kept up meanwhile
        (b_after,) = [p for p in a.ctl("show", "peers") if p["address"] == "127.0.0.2"]
        assert b_after["state"] == "Established"
        assert b_after["sessions_established"] == b_before["sessions_established"]
        assert loop_lag() < 0.2
