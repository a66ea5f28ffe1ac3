"""GET /metrics on real nodes: each node's workers added up, the directory
of their files emptied on start; HAProxy's own exporter for local clients."""
import os
import shutil
import subprocess
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from timpe.paths import APP_INI, BIN
from timpe.topology.instance import prepare_store
from timpe.topology.private import free_ports
from tests.processes import stop_gently


def samples(text, name):
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name}


def test_each_node_and_haproxy_serve_their_metrics(topology):
    for url in topology.node_urls.values():
        deadline = time.monotonic() + 10  # a node just started: its first pass
        while True:
            text = requests.get(f"{url}/metrics", timeout=10).text
            if samples(text, "timpe_recovery_passes_total") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        probes = samples(text, "timpe_http_requests_total")
        # HAProxy's health checks reach every node.
        assert probes[(("method", "GET"), ("route", "probe_status"), ("status", "200"))] > 0
        assert samples(text, "timpe_recovery_passes_total")[(("outcome", "ok"),)] > 0
        # The worker settled its collector once its app was loaded (timpe.heap):
        # that full collection, timed.
        assert samples(text, "timpe_gc_pause_seconds_count")[(("generation", "2"),)] >= 1
        assert set(dict(k)["state"] for k in samples(text, "timpe_transfers_pending")) \
            == {"initial", "in progress", "committed", "posting", "voiding", "held"}
    haproxy = requests.get(f"{topology.url}/__haproxy_stats/metrics", timeout=10)
    assert haproxy.status_code == 200
    assert samples(haproxy.text, "haproxy_backend_http_responses_total")


def test_a_node_with_several_workers_counts_them_all(tmp_path):
    (tmp_path / "etc").mkdir()
    ini = tmp_path / "etc" / "app.ini"
    shutil.copy(APP_INI, ini)
    prepare_store(ini)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"from an earlier run")
    port = free_ports(1)[0]
    node = subprocess.Popen([str(BIN / "app"), "--config", str(ini), "--port", str(port),
                             "--workers", "3"],
                            env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, attempts = time.monotonic() + 30, 0
        while time.monotonic() < deadline:
            attempts += 1
            try:
                requests.get(f"{url}/probe_status", timeout=5)
                break
            except requests.RequestException:  # refused, or workers still booting
                time.sleep(0.2)
        time.sleep(1)  # every worker up
        for _ in range(60):  # a connection each: the workers take turns
            assert requests.get(f"{url}/probe_status", timeout=5).status_code == 200
        # Each worker adds its counts at least every 1.5 intervals x 3 workers.
        time.sleep(5.5)
        writers = {name.rsplit("_", 1)[-1] for name in os.listdir(metrics_dir)}
        assert "999999.db" not in writers and len(writers) >= 2, writers
        text = requests.get(f"{url}/metrics", timeout=10).text
        probes = samples(text, "timpe_http_requests_total")
        # The 60, and those of the attempts above that a worker answered.
        answered = probes[(("method", "GET"), ("route", "probe_status"), ("status", "200"))]
        assert 60 < answered <= 60 + attempts, (answered, attempts)
    finally:
        stop_gently(node, 30)
