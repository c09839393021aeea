"""A real Prometheus (Debian's 2.42) scraping evpnd in a live fabric: every query of the
Grafana dashboard evaluated through /api/v1/query returns data, the alert rules load and
evaluate, and `promtool check metrics` finds nothing to say about /metrics."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.netns import LAB, ROOT, lab, wait_for
from tests.test_dataplane import two_vteps, vtep_config

PROMETHEUS = ROOT / "contrib" / "prometheus"
DASHBOARD = ROOT / "contrib" / "grafana" / "evpnd-dashboard.json"
UNDERLAY = "192.168.61"


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


ASK = """
import json, sys, urllib.parse, urllib.request
url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[1]})
print(urllib.request.urlopen(url, timeout=5).read().decode())
"""


pytestmark = [*LAB, pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus")]


def test_a_real_prometheus_scrapes_a_live_fabric() -> None:
    with lab() as the_lab, tempfile.TemporaryDirectory(prefix="evpnd-prom-") as folder:
        v1, v2, _, h2 = two_vteps(the_lab, UNDERLAY)
        me, other = f"{UNDERLAY}.1", f"{UNDERLAY}.2"
        l3 = "evpn:\n  l3vni: {vni: 4001}\n"  # (not in the kernel here: counted all the same)
        e1 = the_lab.evpnd(v1, "e1", vtep_config(me, other) + l3)
        the_lab.evpnd(v2, "e2", vtep_config(other, me))
        wait_for("Established", lambda: e1.peer_state(other) == "Established", 30)

        config = Path(folder) / "prometheus.yml"
        config.write_text(
            f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{PROMETHEUS / "evpnd-alerts.yml"}"]
scrape_configs:
  - job_name: evpnd
    static_configs: [{{targets: ["{me}:9179"]}}]
"""
        )
        log = (Path(folder) / "prometheus.log").open("wb")
        command = ["ip", "netns", "exec", v1, "prometheus", f"--config.file={config}"]
        command += [f"--storage.tsdb.path={folder}/data", "--web.listen-address=127.0.0.1:9090"]
        process = subprocess.Popen(command, stdout=log, stderr=log)
        the_lab.processes.append(process)

        def ask(expr: str) -> list[dict[str, Any]]:
            answer = json.loads(the_lab.run(v1, sys.executable, "-c", ASK, expr))
            assert answer["status"] == "success", answer
            return list(answer["data"]["result"])

        wait_for("a first scrape", lambda: ask('up{job="evpnd"} == 1'), 60)
        # an UPDATE while Prometheus watches: the latency histogram moves
        port = f"p{the_lab.tag}{h2[-2:]}"
        mac = "02:00:00:00:61:61"
        the_lab.run(v2, "bridge", "fdb", "add", mac, "dev", port, "master", "static")
        wait_for("the MAC at e1", lambda: e1.routes(mac=mac), 15)
        for expr in dashboard_queries():
            query = expr.replace("$instance", ".*")
            wait_for(f"data for {query}", functools.partial(ask, query), 60)
        rate = "rate(evpnd_update_to_kernel_seconds_bucket[5m])"
        p99 = f"histogram_quantile(0.99, sum by (le) ({rate}))"

        wait_for("a p99 latency", lambda: [r for r in ask(p99) if r["value"][1] != "NaN"], 60)
        # (an empty description is no label at all in Prometheus)
        assert [r["metric"]["peer"] for r in ask("evpnd_peer_info")] == [other]
        assert ask("evpnd_build_info")[0]["metric"]["version"]
        # the alert rules load and evaluate against the live data without errors
        rules = json.loads(
            the_lab.run(v1, sys.executable, "-c", ASK.replace("query?", "rules?"), "")
        )
        loaded = [r for group in rules["data"]["groups"] for r in group["rules"]]
        assert len(loaded) == 14 and all(r["health"] == "ok" for r in loaded), rules

        url = f"http://{me}:9179/metrics"
        fetch = f"import urllib.request; print(urllib.request.urlopen({url!r}).read().decode())"
        metrics = the_lab.run(v1, sys.executable, "-c", fetch)
        lint = subprocess.run(
            ["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
