"""bin/benchmark runs on a topology of its own, or on one already running,
and prints every figure. Benchmarks print; this checks what is printed,
never how fast it was."""
import os
import re
import subprocess

import pytest

from timpe.paths import BIN
from timpe.topology.private import free_ports, processes_under

TINY = ["--quick", "--probe", "300", "--immediate", "200", "--phase1", "300", "--holds", "100",
        "--reads", "20", "--history", "100", "--soak", "200", "-c", "8", "--rounds", "2",
        "--ceiling-seconds", "0.5"]
FIGURES = (r"round 2/2: GET /probe_status \d+/s, POST /transactions/immediately \d+/s, "
           r"ratio \d+\.\d+",
           r"GET /probe_status: \d+/s",
           r"POST /transactions/immediately: \d+ transfers/s",
           r"transfers/probe = \d+\.\d+, the median of 2 rounds",
           r"POST /transactions \(phase 1 only\): \d+ transfers/s",
           r"drained \d+ queued transfers in [\d.]+ s = \d+ transfers/s",
           r"POST /transactions \(hold\): \d+ holds/s, p50 [\d.]+ ms, .*http 201 x100",
           r"POST /transactions/\{id\}/post: \d+ posts/s, p50 [\d.]+ ms, .*http 200 x100",
           r"transfers/s \d+ \(immediate\), holds/s \d+, posts/s \d+",
           r"GET /users/\{id\}, 10 ledger rows: p50 [\d.]+ ms, p99",
           r"GET /users/\{id\}, 100 ledger rows: p50 [\d.]+ ms, p99",
           r"read long/short \(p50\) = \d+\.\d+",
           r"store ceiling, 16 threads: primary-key gets/s, one key a statement: \d+",
           r"store ceiling, 16 threads: single-row inserts/s: \d+")


def test_benchmark_prints_the_figures_and_stops_everything():
    done = subprocess.run([str(BIN / "benchmark"), *TINY], capture_output=True, text=True,
                          timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    home = re.search(r"benchmark in (\S+):", out).group(1)
    for figure in FIGURES + (
            r"drained 300 queued transfers",
            r"RSS app \(gunicorn master \+ workers\): cold [\d.]+ MB, before [\d.]+ MB, "
            r"after [\d.]+ MB",
            r"RSS app2 ",
            r"largest RSS growth = -?[\d.]+ MB",
            r"CPU per GET /probe_status: supervisord \d+ us, app \d+ us, app2 \d+ us, "
            r"haproxy \d+ us, "
            r"client \d+ us \(sum \d+ us\)",
            r"CPU per immediate transfer: supervisord \d+ us, app \d+ us, app2 \d+ us, "
            r"haproxy \d+ us, "
            r"client \d+ us \(sum \d+ us\)",
            r"CPU per phase-1 transfer: supervisord \d+ us, app \d+ us, app2 \d+ us, "
            r"haproxy \d+ us, client \d+ us \(sum \d+ us\)",
            r"audit: 0 problems, .* in flight 0"):
        assert re.search(figure, out), f"{figure!r} not in:\n{out}"
    # A transfer (a store read, writes, a sync) costs more than a probe.
    assert float(re.search(r"CPU transfer/probe = (\d+\.\d+)", out).group(1)) > 1, out
    # Phase 1 alone writes one row and no ledger row: both parts cost something.
    worth = re.search(r"CPU in probes' worth: phase 1 (\d+\.\d+), phase 2 (-?\d+\.\d+) "
                      r"\(an immediate transfer (\d+\.\d+); transfers/probe >= 0.4 needs it "
                      r"at 2.50 at most\)", out)
    assert worth, out
    first, second, whole = map(float, worth.groups())
    assert first > 1 and second > 0 and abs(first + second - whole) < 0.02, out
    assert "http 5" not in out
    # Its topology is stopped and its directory removed.
    assert processes_under(home) == []
    assert not os.path.exists(home)


def test_benchmark_routes_its_own_topology_as_told():
    """--routing one: every transfer goes to app, which alone spends CPU on them."""
    done = subprocess.run([str(BIN / "benchmark"), "--routing", "one", *TINY],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"benchmark in \S+: .*, routing one$", out, re.M), out
    spent = re.search(r"CPU per immediate transfer: supervisord \d+ us, app (\d+) us, "
                      r"app2 (\d+) us", out)
    assert int(spent.group(2)) * 5 < int(spent.group(1)), out
    assert "audit: 0 problems" in out and "http 5" not in out


def test_routing_is_only_for_a_topology_of_its_own():
    for other in (["--url", "http://127.0.0.1:9"], ["--durability"], ["--overhead"]):
        done = subprocess.run([str(BIN / "benchmark"), "--routing", "one", *other],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "--routing is for" in done.stderr, done.stderr


def test_in_process_benchmark_holds_one_process_against_the_stack():
    """--in-process: the app called without HTTP in a process of its own,
    every answer 2xx and its store sound, against probes through a stack."""
    done = subprocess.run([str(BIN / "benchmark"), "--in-process", "--probe", "600",
                           "--immediate", "200", "--rounds", "2", "-c", "8"],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"round 2/2: GET /probe_status through the stack \d+/s; in one process "
                     r"without HTTP, transfers \d+/s, probes \d+/s", out), out
    cpu = {name: int(us) for name, us in re.findall(
        r"in one process without HTTP, an? (immediate transfer|probe): \d+/s \(median\), "
        r"CPU (\d+) us \(\d+ us of it the kernel's\)", out)}
    # A transfer writes rows and syncs the WAL; a probe answers from memory.
    assert cpu["immediate transfer"] > 3 * cpu["probe"] > 0, out
    assert re.search(r"one process doing every transfer's work reaches transfers/probe "
                     r"\d+\.\d+ at most, before any HTTP \(the median of 2 rounds; the target "
                     r">= 0.4 is (within|beyond) it\)", out), out
    # Warm-up 20 transfers, then 2 rounds of 100: each one finished.
    assert "audit of the in-process store: 0 problems, 220 transfers finished" in out, out
    home = re.search(r"in-process benchmark in (\S+):", out).group(1)
    assert processes_under(home) == [] and not os.path.exists(home)


def test_in_process_benchmark_in_two_processes_on_one_file():
    """--processes 2: both children's transfers land in the one file, at
    the same time, and their figures are added up."""
    done = subprocess.run([str(BIN / "benchmark"), "--in-process", "--processes", "2",
                           "--probe", "600", "--immediate", "200", "--rounds", "2", "-c", "8"],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "concurrency 8, 2 processes" in out, out
    assert re.search(r"round 2/2: GET /probe_status through the stack \d+/s; in 2 processes on "
                     r"one file without HTTP, transfers \d+/s, probes \d+/s", out), out
    assert re.search(r"2 processes on one file doing every transfer's work reach "
                     r"transfers/probe \d+\.\d+ at most, before any HTTP", out), out
    # Each child's warm-up of 20 and 2 rounds of 100, audited in the one file.
    assert "audit of the in-process store: 0 problems, 440 transfers finished" in out, out
    home = re.search(r"in-process benchmark in (\S+):", out).group(1)
    assert processes_under(home) == [] and not os.path.exists(home)


def test_processes_is_for_in_process():
    done = subprocess.run([str(BIN / "benchmark"), "--processes", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--processes is for --in-process" in done.stderr, done.stderr


def test_in_process_is_for_sqlite_on_a_topology_of_its_own():
    for other in (["--url", "http://127.0.0.1:9"], ["--store", "crate"], ["--workloads"]):
        done = subprocess.run([str(BIN / "benchmark"), "--in-process", *other],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "--in-process measures SQLite" in done.stderr, done.stderr


def test_benchmark_of_a_running_topology_adds_and_deletes_nothing(topology):
    """--url: the topology is the one already running; its data stays."""
    api = topology.api
    api.register("not_a_bench_user", 12.5)
    done = subprocess.run([str(BIN / "benchmark"), "--url", topology.url,
                           "--config", str(topology.ini), *TINY],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"benchmark of the topology at {topology.url}" in out
    assert "built a 100-row history" in out
    for figure in FIGURES + (r"RSS: not measured", r"audit: 0 problems"):
        assert re.search(figure, out), f"{figure!r} not in:\n{out}"
    assert "http 5" not in out
    status, body = api.call("GET", "/users")
    users = {u["nickname"]: u["balance"] for u in body["data"]}
    assert users["not_a_bench_user"] == 12.5
    assert "bench_0063" in users and "bench_long" in users
    # A second run reuses the users and the history it built.
    again = subprocess.run([str(BIN / "benchmark"), "--url", topology.url,
                            "--config", str(topology.ini), *TINY],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "built a" not in again.stdout


@pytest.mark.parametrize("subject, name", [("metrics", "metrics and recovery"),
                                           ("auth", "checking API keys")])
def test_benchmark_overhead_alternates_on_and_off(subject, name):
    done = subprocess.run([str(BIN / "benchmark"), "--overhead", subject, "--quick", "--probe", "300",
                           "--immediate", "200", "-c", "8", "--rounds", "2"],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for figure in (r"round 1/2: on \d+ probes/s, \d+ transfers/s, ratio \d\.\d+, \d+ us CPU; "
                   r"off \d+ probes/s, \d+ transfers/s, ratio \d\.\d+, \d+ us CPU",
                   r"round 2/2: on .*; off ",
                   rf"transfers/probe with {name} on \d\.\d+, off \d\.\d+",
                   r"on/off = \d\.\d+, the median of the rounds' on/off \d\.\d+",
                   r"app nodes' CPU per transfer: on \d+ us, off \d+ us \([+-]\d+\.\d %"):
        assert re.search(figure, out), f"{figure!r} not in:\n{out}"
    homes = re.findall(r"(?:on|off): haproxy :\d+", out)
    assert len(homes) == 2
    assert processes_under("timpe-bench-on-") == [] and processes_under("timpe-bench-off-") == []


def test_durability_benchmark_prints_each_level_against_normal():
    done = subprocess.run([str(BIN / "benchmark"), "--durability", *TINY], capture_output=True,
                          text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    figures = [r"round 2/2: GET /probe_status \d+/s, immediate at ANSWER \d+/s, at FULL \d+/s, "
               r"at NORMAL \d+/s",
               r"ANSWER/NORMAL = \d+\.\d+  \(target >= 0.85: (met|MISSED)\)",
               r"FULL/NORMAL = \d+\.\d+", r"transfers/probe at ANSWER = \d+\.\d+",
               r"audit: 0 problems(.|\n)*audit: 0 problems(.|\n)*audit: 0 problems"]
    for level in ("ANSWER", "FULL", "NORMAL"):
        figures += [rf"synchronous {level}: phase 1 \d+ transfers/s, /process drained 300 at \d+/s",
                    rf"synchronous {level}: immediate \d+ transfers/s .* p99"]
    for figure in figures:
        assert re.search(figure, out), f"{figure!r} not in:\n{out}"
    assert "http 5" not in out
    home = re.search(r"durability benchmark in (\S+) and (\S+) and (\S+):", out)
    for directory in home.groups():
        assert processes_under(directory) == [] and not os.path.exists(directory)


def test_the_workloads_print_each_shape_side_by_side():
    done = subprocess.run([str(BIN / "benchmark"), "--workloads", "--quick", "--probe", "200",
                           "--immediate", "200", "--phase1", "100", "-c", "8",
                           "--ceiling-seconds", "0.5"],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for shape in ("uniform", "hot", "zipf"):
        line = re.search(rf"^{shape}: (\d+) transfers/s, p50 [\d.]+ ms, p99 [\d.]+ ms, "
                         r"([\d.]+) store requests and ([\d.]+) lost races per transfer, "
                         r"([\d.]+) rows per request, CPU per transfer app [\d.]+ ms, "
                         r"app2 [\d.]+ ms, client [\d.]+ ms, haproxy [\d.]+ ms, "
                         r"supervisord [\d.]+ ms", out, re.M)
        assert line, f"{shape} not in:\n{out}"
        # The nodes' /metrics were read: a transfer made store requests.
        assert float(line.group(2)) > 0 and float(line.group(4)) >= 1
        whole = re.search(rf"^{shape}: .*$", out, re.M).group(0)
        assert "answers {'http 201': 200}" in whole, whole
    assert "10000 zipf users ready" in out
    assert "bulk ceiling beside it" not in out  # SQLite sends no bulk request
    assert re.search(r"drained 100 queued transfers", out)
    assert re.search(r"hot/uniform = \d+\.\d+", out)
    assert "audit: 0 problems" in out and "http 5" not in out


def test_the_workloads_on_crate_wait_for_the_store_s_compilers():
    """On a JVM the shapes are measured once its JIT compilers have had their
    rounds of warm-up, and each shape says the share they took."""
    from tests.topologies import skip_without_crate
    skip_without_crate()
    done = subprocess.run([str(BIN / "benchmark"), "--workloads", "--store", "crate", "--quick",
                           "--probe", "200", "--immediate", "200", "--phase1", "100", "-c", "8",
                           "--ceiling-seconds", "0.5", "--warm-up", "0"],
                          capture_output=True, text=True, timeout=900)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # --warm-up 0: one round, however much the compilers took
    rounds = re.findall(r"^warm-up round (\d+): the store's JIT compilers took (\d+)% of its "
                        r"CPU", out, re.M)
    assert [r[0] for r in rounds] == ["1"], out
    for shape in ("uniform", "hot", "zipf"):
        line = re.search(rf"^{shape}: .*CPU per transfer .*crate [\d.]+ ms, crate2 [\d.]+ ms, "
                         r".*the store's JIT compilers (\d+)% of its CPU", out, re.M)
        assert line, f"{shape} not in:\n{out}"
        assert 0 <= int(line.group(1)) <= 100
        # The store's bulk ceiling, measured right after the shape, and the
        # shape's rate as a share of it.
        beside = re.search(rf"^{shape}: (\d+) transfers/s, .*; bulk ceiling beside it (\d+) "
                           r"rows/s \((\d+\.\d+) of it\)", out, re.M)
        assert beside, f"{shape} not in:\n{out}"
        rate, rows, share = int(beside.group(1)), int(beside.group(2)), float(beside.group(3))
        assert rows > 0 and share == pytest.approx(rate / rows, abs=0.01)
    for shape in ("uniform", "zipf"):
        assert re.search(rf"^{shape}/bulk ceiling beside it = \d+\.\d+  \(target >= 0.065: "
                         r"(met|MISSED)\)", out, re.M), out
    assert "audit: 0 problems" in out and "http 5" not in out


def test_benchmark_of_no_topology_says_so_and_writes_nothing(tmp_path):
    # Its store: tmp_path/var/timpe.sqlite, as etc/app.ini's path makes it.
    (tmp_path / "etc").mkdir()
    ini = tmp_path / "etc" / "app.ini"
    ini.write_text((BIN.parent / "etc" / "app.ini").read_text())
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    done = subprocess.run([str(BIN / "benchmark"), "--url", url, "--config", str(ini), *TINY],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"nothing answers GET {url}/probe_status" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()
