"""Acknowledged means on disk: no write is answered before it is synced.

On SQLite, strace watches a real node's worker while registrations and
transfers go to it one at a time: between one acknowledgement and the next,
the node must have synced the WAL at least once (a write that was answered
before its sync would be lost on power loss). The same count run at
synchronous NORMAL finds answers with no sync before them, so the check
tells the two apart. On CrateDB, the tables keep the per-request translog.
"""
import os
import re
import shutil
import subprocess
import time

import pytest

from timpe.bench.rss import children
from timpe.topology import private

from tests.e2e.api import Api, nick

WRITES = 12  # registrations and transfers, each acknowledged with a 201
_LINE = re.compile(r"^(?P<tid>\d+) +(?P<call>.*)$")


def strace():
    found = shutil.which("strace") or ("/usr/bin/strace" if os.path.exists("/usr/bin/strace") else None)
    if found is None:
        pytest.fail("strace is not installed: `make test` installs it (apt-get install strace)")
    return found


@pytest.fixture(scope="module", params=["default", "NORMAL"])
def node(request, tmp_path_factory):
    settings = {} if request.param == "default" else {"sqlite.synchronous": request.param}
    prepared = private.prepare(tmp_path_factory.mktemp(f"durability-{request.param}"),
                               identifier="timpe-durability", settings=settings)
    with private.running(prepared):
        yield request.param, prepared


def traced_writes(prepared, log):
    """Send WRITES acknowledged writes, one at a time, to one node's worker
    under strace; return strace's lines."""
    worker, = children(prepared.topology.pid("app"))
    command = [strace(), "-f", "-qq", "-y", "-s", "12", "-o", str(log),
               "-e", "trace=fsync,fdatasync,sendto,sendmsg,write,writev"]
    for tid in os.listdir(f"/proc/{worker}/task"):
        command += ["-p", tid]
    tracer = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        api = Api(f"http://127.0.0.1:{prepared.ports.app}")
        deadline = time.monotonic() + 10
        while not log.exists() or not log.read_text():  # attached once it logs
            assert tracer.poll() is None, tracer.stderr.read().decode()
            assert time.monotonic() < deadline, "strace did not attach"
            api.session.get(api.url + "/probe_status", timeout=5)
        # strace keeps writing at its own offset: count from here on.
        start = len(log.read_bytes())
        users = [api.register(nick("d"), 1000) for _ in range(WRITES // 3)]
        for n in range(WRITES - len(users)):
            assert api.transfer(users[n % len(users)], users[(n + 1) % len(users)], 1,
                                immediately=n % 2 == 0)[0] == 201
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    return log.read_bytes()[start:].decode(errors="replace").splitlines()


def syncs_before_each_answer(lines):
    """For each 201 the worker sent, how many WAL syncs ended since the
    previous one (a sync another thread's line interrupts is counted when it
    resumes)."""
    counts, synced, pending = [], 0, {}
    for line in lines:
        match = _LINE.match(line)
        if not match:
            continue
        tid, call = match["tid"], match["call"]
        if call.startswith(("fsync(", "fdatasync(")) and "-wal>" in call:
            if call.endswith("<unfinished ...>"):
                pending[tid] = True
            elif call.endswith("= 0"):
                synced += 1
        elif "sync resumed>" in call and pending.pop(tid, False) and call.endswith("= 0"):
            synced += 1
        elif call.startswith(("sendto(", "write(", "writev(", "sendmsg(")) and '"HTTP/1.1 201' in call:
            counts.append(synced)
            synced = 0
    return counts


def test_no_write_is_acknowledged_before_it_is_synced(node, tmp_path):
    setting, prepared = node
    counts = syncs_before_each_answer(traced_writes(prepared, tmp_path / "strace.log"))
    assert len(counts) == WRITES, counts
    if setting == "default":
        assert all(count >= 1 for count in counts), counts
    else:  # NORMAL syncs only at checkpoints: the count sees the difference
        assert counts.count(0) >= WRITES // 2, counts


def test_crate_tables_keep_the_per_request_translog(crate_topology):
    store = crate_topology.store()
    columns, rows = store.sql(
        "SELECT table_name, settings['translog']['durability'] FROM information_schema.tables "
        "WHERE table_schema = ?", [store.schema or "doc"])
    durability = dict(rows)
    assert {"users", "transactions", "user_transactions"} <= set(durability)
    assert set(durability.values()) == {"REQUEST"}, durability
