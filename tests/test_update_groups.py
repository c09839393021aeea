"""evpnd as a route reflector, with raw clients (benchmarks/reflect.py's) in one update group:
a member that stops reading neither stalls the others nor loses anything when it reads again,
KEEPALIVEs keep reaching the others meanwhile, and a member that joins late gets the whole
table and End-of-RIB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from benchmarks import reflect
from tests.netns import LAB, ROOT, lab, wait_for

pytestmark = LAB

SCENARIO = textwrap.dedent(
    """
    import json, threading, time
    from benchmarks.converge import ATTRS, routes
    from benchmarks.reflect import ANNOUNCER, Session, client_address
    from evpnd.bgp.messages import Keepalive
    from evpnd.bgp.update import pack_announcements

    N = 40_000  # about 1.4 MB of UPDATEs: far more than the stalled client's window

    def read_until(session, done, seconds=60, keepalive=False):
        session.sock.settimeout(0.2)
        end = time.monotonic() + seconds
        while not done() and time.monotonic() < end:
            try:
                if not session.read(time.perf_counter()):
                    raise SystemExit(f"the reflector closed {session.sock.getsockname()}")
            except TimeoutError:
                pass
            if keepalive:
                session.sock.sendall(Keepalive().encode())
        return done()

    fast = Session(client_address(0), hold_time=3)
    stalled = Session(client_address(1), receive_buffer=4096)
    source = Session(ANNOUNCER)
    for s in (fast, stalled):
        assert read_until(s, lambda s=s: s.end_of_rib, keepalive=s is fast)
    threading.Thread(target=lambda: [None for _ in iter(lambda: source.sock.recv(1 << 20), b"")],
                     daemon=True).start()
    source.sock.sendall(b"".join(pack_announcements(routes(N), ATTRS)))
    # the stalled client reads nothing from now on
    fast_all = read_until(fast, lambda: fast.announced >= N, keepalive=True)
    # then a few hold times with a large queue for the stalled one: KEEPALIVEs still come
    before = fast.keepalives
    read_until(fast, lambda: False, seconds=4, keepalive=True)
    late = Session(client_address(2))
    late_all = read_until(late, lambda: late.end_of_rib)
    stalled_all = read_until(stalled, lambda: stalled.announced >= N)
    print(json.dumps({
        "fast": fast.announced, "fast_all": fast_all,
        "keepalives_while_stalled": fast.keepalives - before,
        "late": late.announced, "late_all": late_all,
        "stalled": stalled.announced, "stalled_all": stalled_all,
    }))
    """
)


def test_a_stalled_member_stalls_no_one_and_a_late_one_gets_the_table() -> None:
    with lab() as the_lab:
        rr, clients = reflect.setup(the_lab, "g", 3)
        daemon = the_lab.evpnd(
            rr,
            "rr",
            f"""asn: 65000
router_id: {reflect.REFLECTOR}
listen: {{address: {reflect.REFLECTOR}, port: 179}}
listen_ranges: [{{prefix: 10.77.0.0/16, remote_as: 65000, route_reflector_client: true}}]
evpn: {{program_kernel: false}}
""",
        )
        out = subprocess.run(
            ["ip", "netns", "exec", clients, sys.executable, "-c", SCENARIO],
            capture_output=True, text=True, cwd=ROOT, timeout=180,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["fast_all"] and result["fast"] == 40_000, result
        # hold time 3 s: a KEEPALIVE a second, and none held back by the stalled member's queue
        assert result["keepalives_while_stalled"] >= 3, result
        assert result["late_all"] and result["late"] == 40_000, result
        assert result["stalled_all"] and result["stalled"] == 40_000, result
        # (a session the reflector closed would have ended the scenario: SystemExit)
        # the clients gone, their group goes too, and its table with it
        wait_for(
            "the group removed",
            lambda: daemon.ctl("show", "summary")["update_groups"] == [],
            10,
        )
