"""bin/benchmark runs on a topology of its own and prints every figure.
Benchmarks print; this checks what is printed, never how fast it was."""
import os
import re
import subprocess

from timpe.paths import BIN
from timpe.topology.private import processes_under

TINY = ["--quick", "--probe", "300", "--immediate", "200", "--phase1", "300",
        "--reads", "20", "--history", "100", "--soak", "200", "-c", "8"]


def test_benchmark_prints_the_figures_and_stops_everything():
    done = subprocess.run([str(BIN / "benchmark"), *TINY], capture_output=True, text=True,
                          timeout=120)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    home = re.search(r"benchmark in (\S+):", out).group(1)
    for figure in (r"GET /probe_status: \d+/s",
                   r"POST /transactions/immediately: \d+ transfers/s",
                   r"transfers/probe = \d+\.\d+",
                   r"POST /transactions \(phase 1 only\): \d+ transfers/s",
                   r"drained 300 queued transfers in [\d.]+ s = \d+ transfers/s",
                   r"GET /users/\{id\}, 10 ledger rows: p50 [\d.]+ ms, p99",
                   r"GET /users/\{id\}, 100 ledger rows: p50 [\d.]+ ms, p99",
                   r"read long/short \(p50\) = \d+\.\d+",
                   r"RSS app \(gunicorn master \+ workers\): cold [\d.]+ MB, before [\d.]+ MB, "
                   r"after [\d.]+ MB",
                   r"RSS app2 ",
                   r"largest RSS growth = -?[\d.]+ MB",
                   r"audit: 0 problems"):
        assert re.search(figure, out), f"{figure!r} not in:\n{out}"
    assert "http 5" not in out
    # Its topology is stopped and its directory removed.
    assert processes_under(home) == []
    assert not os.path.exists(home)
