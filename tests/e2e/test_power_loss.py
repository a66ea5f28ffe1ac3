"""Acknowledged means on disk, proven by cutting the power.

The SQLite file lives on LazyFS, a FUSE file system that keeps every write
in a cache of its own until it is synced and drops whatever is not synced
when told to: a power loss without a machine to reboot. A private topology
(HAProxy and both nodes) runs on it while client threads register users
and send transfers, immediate and phase-1, and read their states back; then
the power goes: every process of the topology is killed, LazyFS's cache is
cleared, LazyFS is mounted afresh and the topology restarted on what is
left. Every transfer acknowledged before the cut must be there, in a state
no earlier than any answer reported, and settle with /process with money
conserved and no balance below zero. Then the same again on the recovered
file, and a last check.

At the default (ANSWER) and at FULL nothing may be lost; at NORMAL the cuts
must lose acknowledged transfers, or the test could not tell a durable level
from one that is not.

LazyFS is found through LAZYFS_HOME (its bin/lazyfs) or a lazyfs on PATH;
the project never builds it, and without it this skips.
"""
import contextlib
import os
import random
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import requests

from timpe.audit import audit
from timpe.auth.client import operator_key
from timpe.cli import open_store
from timpe.topology import private

from tests.e2e.api import Api, join_all, nick, process_all, run_threads

CUTS = 2  # two, so that NORMAL's loss does not hang on where one cut lands
USERS = 8  # registered before each load
BALANCE = 1000
CLIENTS = 6
LOAD_SECONDS = 3  # under load when the power goes
# A checkpoint (a sync of both files; then the WAL may start over) every
# 200 writes of a process, not 2000: a few a second, so the cut lands among
# them as it would in a long run, and at NORMAL loses what came since the last.
CHECKPOINT_EVERY = 200
# What a state may have become after a cut, given one an answer reported.
AFTER = {"initial": {"initial", "in progress", "committed", "finished", "failed"},
         "in progress": {"in progress", "committed", "finished", "failed"},
         "committed": {"committed", "finished"},
         "finished": {"finished"},
         "failed": {"failed"}}


def find_lazyfs():
    """LazyFS's executable, or skip saying why there is none."""
    home = os.environ.get("LAZYFS_HOME")
    found = str(Path(home) / "bin" / "lazyfs") if home else shutil.which("lazyfs")
    if found is None or not os.access(found, os.X_OK):
        pytest.skip(f"LAZYFS_HOME is {home}, but it has no executable bin/lazyfs" if home else
                    "LazyFS is not installed here (LAZYFS_HOME unset and no lazyfs on PATH): "
                    "the power-loss test needs a real one")
    return found


class LazyFS:
    """One LazyFS process serving ``root`` (the "disk") at ``mount``."""

    def __init__(self, binary, root, mount, work):
        self.mount, self.fifo, self.done = mount, work / "faults.fifo", work / "done.fifo"
        config = work / "lazyfs.toml"
        config.write_text(
            f'[faults]\nfifo_path="{self.fifo}"\nfifo_path_completed="{self.done}"\n'
            '[cache]\napply_eviction=false\n'
            '[cache.simple]\ncustom_size="256mb"\nblocks_per_page=1\n'
            f'[filesystem]\nlog_all_operations=false\nlogfile="{work / "lazyfs.log"}"\n')
        for fifo in (self.fifo, self.done):  # LazyFS makes them; not the last mount's
            fifo.unlink(missing_ok=True)
        self.output = open(work / "lazyfs.out", "ab")
        # Relative: LazyFS ignores a config path with "-o" in it (/tmp/pytest-of-root).
        self.process = subprocess.Popen(
            [binary, str(mount), "--config-path", config.name, "-f",
             "-o", "modules=subdir", "-o", f"subdir={root}"],
            cwd=work, stdout=self.output, stderr=subprocess.STDOUT)
        self._done_fd = None
        deadline = time.monotonic() + 30
        while not (os.path.ismount(mount) and self.done.exists()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.unmount()
                pytest.fail(f"LazyFS did not mount {mount}; see {work / 'lazyfs.out'}")
            time.sleep(0.05)
        # Its fault worker blocks opening this fifo until a reader has it open.
        self._done_fd = os.open(self.done, os.O_RDONLY | os.O_NONBLOCK)

    def clear_cache(self, timeout=30):
        """Drop every write not synced; return once LazyFS says it has."""
        with open(self.fifo, "w") as fifo:
            fifo.write("lazyfs::clear-cache\n")
        said, deadline = b"", time.monotonic() + timeout
        while b"finished::clear-cache" not in said:
            left = deadline - time.monotonic()
            assert left > 0, "LazyFS did not confirm clear-cache"
            if select.select([self._done_fd], [], [], left)[0]:
                said += os.read(self._done_fd, 100)

    def unmount(self):
        # Listed, not ismount(): a mount whose LazyFS died cannot even be stat'ed.
        if f" {self.mount} " in Path("/proc/mounts").read_text():
            fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
            command = [fusermount, "-u"] if fusermount else ["umount"]
            if subprocess.run(command + [str(self.mount)], capture_output=True).returncode:
                lazily = [fusermount, "-uz"] if fusermount else ["umount", "-l"]
                subprocess.run(lazily + [str(self.mount)], capture_output=True)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._done_fd is not None:
            os.close(self._done_fd)
        self.output.close()


@contextlib.contextmanager
def mounted(*args):
    fs = LazyFS(*args)
    try:
        yield fs
    finally:
        fs.unmount()


def cut_power(prepared, fs):
    """SIGKILL every process of the topology, supervisord first so that it
    restarts nothing, then clear LazyFS's cache. In this order the cut is
    one instant: what was synced before the kill is on "disk", and nothing
    is written or acknowledged after it. (Cleared first, the nodes would go
    on writing and syncing over files LazyFS has just cut back under them,
    which no power loss does: a checkpoint could copy vanished WAL frames
    into the database.)"""
    pids = [prepared.topology.supervisord_pid()] + private.processes_under(prepared.home)
    for pid in dict.fromkeys(p for p in pids if p):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while private.processes_under(prepared.home):  # until they let go of the files
        assert time.monotonic() < deadline, "the topology's processes did not die"
        time.sleep(0.05)
    fs.clear_cache()


def client(_n, api, users, stop, answers):
    """Transfers (4 in 5 immediate) and reads of their states until ``stop``;
    every state an answer reported goes to ``answers`` (id -> [states])."""
    rng, mine = random.Random(), []
    while not stop.is_set():
        try:
            if mine and rng.random() < 0.2:
                status, body = api.call("GET", f"/transactions/{rng.choice(mine)}")
            else:
                sender, recipient = rng.sample(users, 2)
                status, body = api.transfer(sender, recipient, rng.randint(1, 5),
                                            immediately=rng.random() < 0.8)
        except (requests.RequestException, ValueError):  # the nodes are gone: no answer
            time.sleep(0.05)
            continue
        # A 422 with data is a transfer recorded, then failed for lack of funds.
        if status in (200, 201) or (status == 422 and "data" in body):
            data = body["data"]
            if status != 200:
                mine.append(data["id"])
            answers[data["id"]].append(data["state"])


def load_and_cut(prepared, fs, api, answers):
    """Register USERS users, load them, cut the power; return the users."""
    users = [api.register(nick("p"), BALANCE) for _ in range(USERS)]
    stop = threading.Event()
    threads = run_threads(CLIENTS, client, api, users, stop, answers)
    try:
        time.sleep(LOAD_SECONDS)
        cut_power(prepared, fs)
    finally:
        stop.set()
        join_all(threads, timeout=30)
    return users


def check_after_cut(api, store, expected, answers):
    """What a cut kept of the ``expected`` transfers: return (gone, behind),
    those missing and those in a state earlier than an answer reported.
    Then settle everything with /process and check the invariants."""
    gone, behind = [], []
    for tid in expected:
        status, body = api.call("GET", f"/transactions/{tid}")
        if status == 404:
            gone.append(tid)
            continue
        assert status == 200, body
        state = body["data"]["state"]
        if any(state not in AFTER[reported] for reported in answers[tid]):
            behind.append((tid, answers[tid], state))
    process_all(api, rounds=20)
    for tid in set(expected) - set(gone):
        state = api.state(tid)
        assert state in ("finished", "failed"), (tid, state)
        answers[tid] = [state]  # what the next cut must keep
    status, body = api.call("GET", "/users")
    balances = [u["balance"] for u in body["data"]]
    assert min(balances, default=0) >= 0, balances
    # Each user came with BALANCE: whatever a cut kept, no money appeared or vanished.
    assert sum(balances) == BALANCE * len(balances), balances
    assert audit(store)["problems"] == []
    return gone, behind


@pytest.mark.parametrize("level", ["default", "FULL", "NORMAL"])
def test_power_loss_keeps_what_was_acknowledged(level, tmp_path):
    binary = find_lazyfs()
    root, mount, work = tmp_path / "disk", tmp_path / "mnt", tmp_path / "lazyfs"
    for directory in (root, mount, work):
        directory.mkdir()
    settings = {"sqlite.path": mount / "timpe.sqlite", "sqlite.checkpoint_every": CHECKPOINT_EVERY}
    if level != "default":
        settings["sqlite.synchronous"] = level
    prepared = private.prepare(tmp_path / "home", identifier="timpe-power-loss",
                               settings=settings)
    api = Api(prepared.url, timeout=10, key=operator_key(prepared.ini))
    answers = defaultdict(list)  # transfer id -> every state answered for it
    registered, expected, lost, seen = [], [], [], set()
    acknowledged_before = 0  # len(expected) when the last load began

    for cut in range(CUTS + 1):  # each start after a cut checks what it kept
        with mounted(binary, root, mount, work) as fs, private.running(prepared):
            if cut:
                present = {u["id"] for u in api.call("GET", "/users")[1]["data"]}
                new = expected[acknowledged_before:]
                finished = sum("finished" in answers[tid] for tid in new)
                store = open_store(prepared.ini)
                try:
                    gone, behind = check_after_cut(api, store, expected, answers)
                finally:
                    store.close()
                print(f"\n{level}, cut {cut}: {len(new)} transfers acknowledged in the load before "
                      f"it ({finished} answered finished); of all {len(expected)} so far "
                      f"{len(gone)} lost, {len(behind)} in an earlier state; "
                      f"{len(set(registered) - present)} of {len(registered)} users lost")
                if level != "NORMAL":
                    assert set(registered) <= present, "acknowledged registrations lost"
                    assert gone == [], f"{len(gone)} acknowledged transfers lost: {gone[:5]}"
                    assert behind == [], f"{len(behind)} came back earlier: {behind[:5]}"
                lost += gone + [tid for tid, _, _ in behind]
                dropped = set(gone)
                expected = [tid for tid in expected if tid not in dropped]
            if cut < CUTS:
                acknowledged_before = len(expected)
                registered += load_and_cut(prepared, fs, api, answers)
                expected += [tid for tid in answers if tid not in seen]
                seen.update(answers)
                assert len(expected) - acknowledged_before >= 50, "too few transfers answered"

    if level == "NORMAL":  # the counter-check: the same cuts lose acknowledged writes
        assert lost, f"NORMAL lost nothing in {CUTS} cuts: this test would not see a loss"
