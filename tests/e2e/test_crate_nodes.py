"""CrateDB nodes killed under load: nothing acknowledged is lost, no balance
goes negative, money is conserved, and while the cluster cannot serve, the
API answers 503 within seconds (never another 5xx).

The seed's two nodes cannot elect a master once the elected one is gone:
then writes wait until supervisor has it back. Three nodes keep a master
and keep taking transfers while any one of them is down (docs/crate.rst).
"""
import random
import threading
import time
from collections import Counter

import pytest

from tests.e2e.api import join_all, nick, process_all, run_threads
from tests.topologies import Running, start
from timpe.audit import audit

#: A 503 comes within this many seconds (the store's timeout, per host).
QUICK_503 = 10


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory):
    running, prepared = start(tmp_path_factory, "crate", crate_nodes=3)
    with running:
        yield Running(prepared)


def cluster_state(running):
    """({node name: is it the master}, shards not started), or None when
    the cluster cannot answer."""
    store = running.store()
    try:
        nodes = store.sql("SELECT id, name FROM sys.nodes")[1]
        master = store.sql("SELECT master_node FROM sys.cluster")[1][0][0]
        pending = store.sql("SELECT count(*) FROM sys.shards WHERE state <> 'STARTED'")[1][0][0]
        return {name: node_id == master for node_id, name in nodes}, pending
    except Exception:  # noqa: BLE001 - a cluster without a master raises anything
        return None
    finally:
        store.close()


def wait_healthy(running, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = cluster_state(running)
        if state and len(state[0]) == len(running.cluster) and state[1] == 0 \
                and any(state[0].values()):
            return state[0]
        time.sleep(1)
    raise AssertionError(f"the cluster did not recover within {timeout}s: {cluster_state(running)}")


class Load:
    """Transfers through HAProxy from ``threads`` clients until stopped:
    every answer's status and time, and the ids of those acknowledged."""

    def __init__(self, running, users, threads=8):
        self.api, self.users = running.api, users
        self.answers, self.acknowledged, self.timeline = Counter(), [], []
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.threads = run_threads(threads, self.client)

    def client(self, index):
        rnd = random.Random(500 + index)
        for n in range(100_000):  # bounded; normally ended by ``stop``
            if self.stop.is_set():
                return
            sender, recipient = rnd.sample(self.users, 2)
            started = time.monotonic()
            try:
                status, body = self.api.transfer(sender, recipient, rnd.randint(1, 100),
                                                 immediately=n % 2 == 0)
            except Exception as exc:  # noqa: BLE001 - a cut connection: outcome unknown
                status, body = type(exc).__name__, {}
            with self.lock:
                self.answers[status] += 1
                self.timeline.append((started, time.monotonic() - started, status))
                if status == 201:
                    self.acknowledged.append(body["data"]["id"])

    def since(self, moment):
        with self.lock:
            return Counter(status for started, _, status in self.timeline if started >= moment)

    def finish(self):
        self.stop.set()
        join_all(self.threads, timeout=120)


def fresh_store_answer(running):
    """What a store a new process opens makes of the cluster now: "ok",
    or the name of the error its first call raised."""
    store = running.store()
    try:
        store.get("users", ("nobody",))
        return "ok"
    except Exception as exc:  # noqa: BLE001 - the answer is the error's kind
        return type(exc).__name__
    finally:
        store.close()


def kill_each_node_in_turn(running, users):
    """SIGKILL every CrateDB node once, the master last, under load; return
    the load, per node killed what was answered until it was back, and what
    a store opened 5 s after the kill made of the cluster."""
    order = sorted(wait_healthy(running).items(), key=lambda item: item[1])
    load = Load(running, users)
    deadline = time.monotonic() + 60
    while not load.since(0)[201]:  # a cluster just started may be slow at first
        assert time.monotonic() < deadline, load.answers
        time.sleep(0.5)
    time.sleep(3)
    windows, fresh = {}, {}
    for name, was_master in order:
        killed = time.monotonic()
        running.topology.kill_node(name)
        time.sleep(5)
        fresh[name] = fresh_store_answer(running)
        time.sleep(10)  # the cluster without the node, under load
        windows[name] = load.since(killed)
        wait_healthy(running)
        # The figures docs/crate.rst reports (shown with pytest -rA).
        print(f"{len(running.cluster)} nodes, {name} SIGKILLed "
              f"({'master' if was_master else 'not master'}):"
              f" answers in the 15 s after: {dict(windows[name])}; back after "
              f"{time.monotonic() - killed:.0f} s; a new store: {fresh[name]}")
    time.sleep(3)  # load on the whole cluster again
    recovered = time.monotonic()
    time.sleep(3)
    load.finish()
    return load, windows, load.since(recovered), fresh


def check_outcome(running, load, users, total):
    # Only 503 (cannot serve now) may come from the server while nodes are
    # missing; no 500, and connections are never cut (the app nodes live).
    assert set(load.answers) <= {201, 422, 503}, load.answers
    slow = [(took, status) for _, took, status in load.timeline
            if status == 503 and took > QUICK_503]
    assert not slow, f"503 answers slower than {QUICK_503}s: {slow[:5]}"
    process_all(running.api, rounds=20)
    states = Counter(running.api.state(t) for t in load.acknowledged)
    assert set(states) <= {"finished", "failed"}, states
    balances = [running.api.balance(u) for u in users]
    assert min(balances) >= 0 and sum(balances) == total
    assert audit(running.store())["problems"] == []


@pytest.mark.timeout(900)  # each node back and healthy can take a minute
def test_sigkill_of_each_crate_node_under_load(topology):
    if topology.store_name != "crate":
        pytest.skip("kills CrateDB nodes: runs on the CrateDB topology")
    users = [topology.api.register(nick("kn"), 100000) for _ in range(8)]
    load, windows, after, fresh = kill_each_node_in_turn(topology, users)
    check_outcome(topology, load, users, 8 * 100000)
    assert after[201] > 0 and after[503] == 0, after
    # Two nodes: the one that was not master goes without a pause for long;
    # without the master no write is taken until it is back (and says so),
    # even by a process that connects only then: unless supervisor had it
    # back within the 5 s before that process connects, as a lightly loaded
    # machine does.
    first, master = list(windows)
    assert windows[first][201] > 0, windows
    assert set(fresh.values()) <= {"ok", "StoreUnavailable"}, fresh


@pytest.mark.timeout(900)
def test_three_nodes_keep_taking_transfers_while_any_one_is_killed(three_nodes):
    api = three_nodes.api
    users = [api.register(nick("k3"), 100000) for _ in range(8)]
    load, windows, after, fresh = kill_each_node_in_turn(three_nodes, users)
    check_outcome(three_nodes, load, users, 8 * 100000)
    assert after[201] > 0 and after[503] == 0, after
    for name, answered in windows.items():
        assert answered[201] > 0, (name, windows)
    assert set(fresh.values()) <= {"ok", "StoreUnavailable"}, fresh
