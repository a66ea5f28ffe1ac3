"""CPU of processes and of a JVM's JIT compilers, read from /proc
(timpe.bench.cpu), and the share the benchmark's warm-up waits on."""
import os
import subprocess
import sys
import time

import pytest

from timpe.bench import cpu
from timpe.bench.workloads import SETTLED, jit_share, settled


def test_a_process_without_compilers_has_none():
    assert cpu.compiler_seconds(os.getpid()) == 0.0
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    assert cpu.compiler_seconds(int(gone)) == 0.0
    assert cpu.cpu_seconds(os.getpid()) > 0


def test_the_store_s_jvm_has_compilers_that_spent_cpu(request):
    running = request.getfixturevalue("crate_topology")
    pid = running.topology.pid("crate")
    assert 0 < cpu.compiler_seconds(pid) < cpu.cpu_seconds(pid)


def test_the_share_counts_only_the_jvms():
    before = ({}, {"crate": 10.0, "app": 5.0, "client": 1.0}, {"crate": 4.0})
    after = ({}, {"crate": 20.0, "app": 9.0, "client": 2.0}, {"crate": 6.5})
    assert jit_share(before, after) == pytest.approx(0.25)
    assert jit_share(({}, {"app": 1.0}, {}), ({}, {"app": 2.0}, {})) is None
    assert jit_share(before, ({}, before[1], before[2])) == 0.0


def test_the_compilers_settle_only_after_two_low_rounds_running():
    low, high = SETTLED, SETTLED + 0.01
    assert not settled([])
    assert not settled([low])  # one low round is not enough
    assert not settled([0.6, 0.3, low, high])
    assert not settled([low, high, low])
    assert settled([0.6, high, low, low / 2])


def test_supervisord_counts_its_own_cpu_and_other_programs_their_trees():
    # A parent that idles while its child burns CPU: as a program (a
    # gunicorn master and its worker) the child's CPU is the program's; as
    # supervisord, whose children are programs of their own, it is not.
    burn = "import time\nend = time.process_time() + 5\nwhile time.process_time() < end: pass"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"])
    try:
        deadline = time.monotonic() + 30
        while cpu.tree_cpu_seconds(parent.pid) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = cpu.snapshot({"app": parent.pid, cpu.SUPERVISOR: parent.pid})
    finally:
        for pid in cpu.children(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
    assert spent["app"] >= 0.5
    assert spent[cpu.SUPERVISOR] < 0.25
    assert spent["client"] > 0
