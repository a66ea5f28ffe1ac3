"""Network partitions under load, on a CrateDB cluster of 2 nodes and of 3
whose nodes, and both app nodes, are each in a network namespace of their
own (tests/partitioned.py): a node cut off, the elected master cut off,
packets lost one way, an app node cut from the store.

Clients send transfers and read balances and states throughout, and every
request and answer goes in a history (tests/history.py). After the links
are healed and the cluster is whole again, /process runs on both app nodes
and then: every acknowledged transfer is finished or failed, the history
is explained (nothing acknowledged lost, every balance read explained by
some order of the transfers, states only move forward), the ledger passes
the audit (no row missing or doubled, no negative balance, money
conserved), and no answer was a 5xx other than 503. What each fault got
is printed (pytest -rA); docs/crate.rst reports it.

Beside them, the store guarantee those rest on, apart from the protocol:
under the same faults, every insert and compare-and-set CrateDB
acknowledged is there as written after the heal.
"""
import os
import random
import subprocess
import threading
import time
from collections import Counter

import pytest
import requests

from tests import netns
from tests.e2e.api import Api, join_all, run_threads
from tests.e2e.test_crate_nodes import cluster_state, wait_healthy
from tests.history import Client, History, answers, check, slowest
from tests.partitioned import APP, Partitioned
from tests.topologies import skip_without_crate
from timpe.audit import audit
from timpe.errors import StoreUnavailable
from timpe.store.schema import USER_TRANSACTIONS
from timpe.topology import routing
from timpe.topology.instance import Topology, haproxy_stats
from timpe.topology.private import free_ports
from timpe.topology.render import Ports, find_haproxy, parameters, render

#: Seconds each fault lasts, under load: longer than CrateDB takes to notice
#: a node it cannot reach (follower checks: 3 misses of 10 s each).
FAULT = 40
CLIENTS = 6
START = 100_00  # each account's cents


@pytest.fixture(scope="module", params=[2, 3], ids=["2_nodes", "3_nodes"])
def partitioned(request, tmp_path_factory):
    why = netns.missing()
    if why:
        pytest.skip(f"no network namespaces: {why}")
    skip_without_crate()
    with Partitioned(tmp_path_factory.mktemp("partitions"), request.param) as running:
        yield running


class Load:
    """``CLIENTS`` clients, half on each app node, each sending transfers
    (every other one immediate) under ids of their own, and reading a
    balance after each and, now and then, a transfer's state."""

    def __init__(self, running, users, history, tag):
        self.running, self.users, self.history, self.tag = running, users, history, tag
        self.stop = threading.Event()
        self.threads = run_threads(CLIENTS, self.client)

    def client(self, index):
        app = self.running.apps[index % len(self.running.apps)]
        client = Client(self.running.api(app), self.history)
        rnd = random.Random(f"{self.tag}-{index}")
        for n in range(100_000):  # bounded; normally ended by ``stop``
            if self.stop.is_set():
                return
            sender, recipient = rnd.sample(self.users, 2)
            op = client.transfer(f"{self.tag}-{index}-{n}", sender, recipient,
                                 rnd.randint(1, 300), immediately=n % 2 == 0)
            client.read(rnd.choice(self.users))
            if n % 5 == 0:
                client.state(op["id"])

    def finish(self):
        self.stop.set()
        join_all(self.threads, timeout=120)


def master_and_others(running):
    state = wait_healthy(running)
    master = next(name for name, is_master in state.items() if is_master)
    return master, [name for name in state if name != master]


def faults():
    """name: (what it does to the network of ``running``, given the
    elected master and the others)."""
    return {
        "a node cut off": lambda net, master, others: net.isolate(others[0]),
        "the master cut off": lambda net, master, others: net.isolate(master),
        "the master's packets to the others lost":
            lambda net, master, others: net.drop(master, others),
        "a node's packets to the master lost":
            lambda net, master, others: net.drop(others[0], [master]),
        "an app node cut from the store":
            lambda net, master, others: net.drop("a1", [master, *others]),
        "the master's link slow and lossy": lambda net, master, others: net.degrade(master),
    }


#: A transfer's states once it has ended; None: never recorded.
ENDED = {"finished", "failed", None}


def settle(running, ids=(), deadline=120):
    """/process on both app nodes until neither finds work and each
    transfer of ``ids`` reads as ended; return {id: state}. A cluster just
    whole again may answer 503 for a moment; and a request an app node cut
    from the store sent before the heal may reach the cluster after it (the
    kernel resends what the node's timed-out connection left unsent): the
    insert of a transfer that node answered 503 for, in progress, which a
    later /process ends."""
    clients = [Client(running.api(app), History()) for app in running.apps]
    end, states = time.monotonic() + deadline, dict.fromkeys(ids, "unread")
    while time.monotonic() < end:
        done = []
        for one in clients:
            status, body = one.api.call("POST", "/process")
            done.append(status == 200 and body["processed"] == 0)
        if all(done):
            states.update((i, clients[0].state(i)["state"])
                          for i, state in states.items() if state not in ENDED)
            if set(states.values()) <= ENDED:
                return states
        time.sleep(1)
    raise AssertionError(f"/process still had work after {deadline}s: "
                         f"{Counter(states.values())}")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("fault", list(faults()))
def test_partition_under_load(partitioned, fault):
    running, net = partitioned, partitioned.net
    if "slow" in fault and netns.netem_missing():
        pytest.skip(f"no delay or random loss on a link: {netns.netem_missing()}")
    tag = f"p{random.Random().randrange(10**6)}"
    setup = Client(running.api("a2"), History())
    users = []
    for i in range(6):
        status, body = setup.api.call("POST", "/users",
                                      json={"nickname": f"{tag}-{i}", "balance": START / 100})
        assert status == 201, body
        users.append(body["data"]["id"])
    master, others = master_and_others(running)
    history = History(running.home / f"history-{tag}.jsonl")
    load = Load(running, users, history, tag)
    try:
        time.sleep(5)  # the load under way on a whole cluster
        cut = time.monotonic()
        faults()[fault](net, master, others)
        time.sleep(FAULT)
        healed = time.monotonic()
        net.heal()
        state = wait_healthy(running, timeout=300)
        whole = time.monotonic()
        time.sleep(5)  # load on the whole cluster again
    finally:
        net.heal()
        load.finish()
    final_states = settle(running, [op["id"] for op in history.ops if op["f"] == "transfer"])
    final_balances = {u: setup.read(u)["balance"] for u in users}

    during = history.between(cut, healed)
    after = answers(history.between(whole))
    # The figures docs/crate.rst reports (pytest -rA shows them).
    print(f"{len(running.nodes)} nodes, {fault} (master {master}) for {FAULT} s: "
          f"answers during: {dict(sorted(answers(during).items()))}, the slowest after "
          f"{slowest(during):.1f} s; whole again "
          f"{whole - healed:.0f} s after the heal (master {_master(state)}); "
          f"answers after: {dict(sorted(after.items()))}")

    statuses = Counter(op["answer"] for op in history.ops)
    server_errors = {s: n for s, n in statuses.items()
                     if not isinstance(s, int) or (s >= 500 and s != 503)}
    assert not server_errors, f"answers other than a 2xx, a 4xx or a 503: {server_errors}"
    assert {op["f"] for op in history.ops if op["type"] == "ok"} >= {"transfer", "read"}
    assert set(final_states.values()) <= ENDED, Counter(final_states.values())
    problems = check(history.ops, dict.fromkeys(users, START), final_states, final_balances)
    assert problems == [], problems[:20]
    store = running.store()
    try:
        assert audit(store)["problems"] == []
    finally:
        store.close()
    assert after["transfer 201"] > 0, after


def _master(state):
    return next((name for name, is_master in state.items() if is_master), None)


@pytest.fixture
def haproxy_in_front(partitioned, tmp_path):
    """HAProxy from the project's template, in this namespace, in front of
    the two app nodes, routing writes as CrateDB asks (one node)."""
    port = free_ports(1)[0]
    net = partitioned.net
    config = tmp_path / "haproxy.cfg"
    config.write_text(render("haproxy.cfg", parameters(
        Ports(port, APP, APP), app_host=net.address["a1"], app2_host=net.address["a2"],
        bind="127.0.0.1", check_inter="300ms", check_fastinter="200ms",
        connect_timeout="500ms")))
    process = subprocess.Popen([find_haproxy(), "-db", "-f", str(config)],
                               env={**os.environ, routing.ENV: "one"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        Topology.wait_http(f"{url}/probe_status")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def one_node(url, server):
    """(status, requests taken) of ``server`` in HAProxy's one_node backend."""
    row = next(r for r in haproxy_stats(url) if r["pxname"] == "one_node"
               and r["svname"] == server)
    return row["status"], int(row["req_tot"] or 0)


def wait_state(url, server, state, timeout=60):
    deadline = time.monotonic() + timeout
    while one_node(url, server)[0] != state:
        assert time.monotonic() < deadline, f"{server} is not {state} in one_node"
        time.sleep(0.2)


@pytest.mark.timeout(600)
def test_an_app_node_cut_from_the_store_takes_no_writes(partitioned, haproxy_in_front):
    """The node HAProxy sends every write to is cut from the cluster, and
    answers its health check still: its store check (/probe_store) moves the
    writes to the other node, and back once the link is healed."""
    running, net, url = partitioned, partitioned.net, haproxy_in_front
    api = Api(url, key=running.operator_key)
    tag = f"r{random.Random().randrange(10**6)}"
    sender = api.register(f"{tag}-s", 1000)
    recipient = api.register(f"{tag}-r", 0)
    wait_state(url, "app", "UP")

    def sent(count):
        before = {s: one_node(url, s)[1] for s in ("app", "app2")}
        for _ in range(count):
            status, body = api.transfer(sender, recipient, 1, immediately=True)
            assert status == 201, body
        return {s: one_node(url, s)[1] - before[s] for s in ("app", "app2")}

    assert sent(10) == {"app": 10, "app2": 0}
    master, others = master_and_others(running)
    try:
        net.drop("a1", [master, *others])
        wait_state(url, "app", "DOWN")
        # up, but cut off: only its store check tells
        assert requests.get(f"{running.url('a1')}/probe_status", timeout=5).status_code == 200
        assert sent(10) == {"app": 0, "app2": 10}
    finally:
        net.heal()
    wait_state(url, "app", "UP")
    assert sent(10) == {"app": 10, "app2": 0}
    assert api.balance(sender) == 1000 - 30 and api.balance(recipient) == 30
    settle(running)
    store = running.store()
    try:
        assert audit(store)["problems"] == []
    finally:
        store.close()


#: Threads writing ledger rows straight to the store in the test below.
WRITERS = 12


class Writes:
    """``WRITERS`` threads inserting rows of a few users' ledgers if absent
    (racing for each seq, as both app nodes do) and confirming half of the
    rows that beat them, as the protocol does; what the store acknowledged:
    {key: the transaction id written there}."""

    def __init__(self, store, tag):
        self.store, self.acked, self.counts, self.replaced = store, {}, Counter(), {}
        self.users = [f"{tag}-{i}" for i in range(4)]
        self.next_seq = dict.fromkeys(self.users, 0)
        self.stop = threading.Event()
        self.threads = run_threads(WRITERS, self.writer)

    def writer(self, index):
        rnd = random.Random(index)
        for n in range(10**7):  # bounded; normally ended by ``stop``
            if self.stop.is_set():
                return
            user = rnd.choice(self.users)
            seq, written = self.next_seq[user], f"{index}-{n}"
            row = {"user_id": user, "seq": seq, "transaction_id": written, "kind": "debit",
                   "amount": 0, "balance": 0, "timestamp": n, "legs": "[]", "held": 0}
            try:
                if self.store.insert(USER_TRANSACTIONS.name, row):
                    self._acked(user, seq, written, "insert")
                else:
                    found = self.store.get(USER_TRANSACTIONS.name, (user, seq))
                    if found is None:
                        continue
                    if n % 2 and self.store.cas(USER_TRANSACTIONS.name, (user, seq),
                                                found["_version"],
                                                {"timestamp": found["timestamp"]}):
                        self._acked(user, seq, found["transaction_id"], "compare-and-set")
                self.next_seq[user] = max(self.next_seq[user], seq + 1)
            except StoreUnavailable:
                self.counts["unavailable"] += 1
                time.sleep(0.2)

    def _acked(self, user, seq, written, how):
        earlier = self.acked.setdefault((user, seq), written)
        if earlier != written:  # an acknowledged write gone, another in its place
            self.replaced[user, seq] = (earlier, written)
        self.counts[how] += 1

    def finish(self):
        self.stop.set()
        join_all(self.threads, timeout=120)

    def lost(self):
        """The acknowledged writes the store does not hold as written."""
        keys = list(self.acked)
        held = {}
        for start in range(0, len(keys), 500):
            for row in self.store.get_many(USER_TRANSACTIONS.name, keys[start:start + 500]):
                held[row["user_id"], row["seq"]] = row["transaction_id"]
        return self.replaced | {key: (written, held.get(key))
                                for key, written in self.acked.items() if held.get(key) != written}

    def remove(self):
        """The rows of these users, which are no transfers' (other tests
        audit the store)."""
        self.store.refresh(USER_TRANSACTIONS.name)  # a delete finds rows by a search
        for user in self.users:
            self.store.sql(f"DELETE FROM {USER_TRANSACTIONS.name} WHERE user_id = ?", [user])


@pytest.mark.timeout(1200)
def test_every_acknowledged_write_is_kept_through_the_faults(partitioned):
    """The store guarantee the protocol builds on, apart from it: while
    each fault takes its turn under writes to the ledger table, every
    insert and compare-and-set the store acknowledged is there as written
    after the heal (the protocol's confirmations depend on it)."""
    running, net = partitioned, partitioned.net
    store = running.store()
    try:
        for fault, cut in faults().items():
            if "slow" in fault or "app node" in fault:
                continue  # no link to slow here; no app node writes here
            master, others = master_and_others(running)
            writes = Writes(store, f"w{random.Random().randrange(10**6)}")
            try:
                time.sleep(5)
                cut(net, master, others)
                time.sleep(FAULT)
                net.heal()
                wait_healthy(running, timeout=300)
                time.sleep(5)
            finally:
                net.heal()
                writes.finish()
            lost = writes.lost()
            writes.remove()
            print(f"{len(running.nodes)} nodes, {fault} (master {master}): acknowledged "
                  f"{dict(writes.counts)}")
            assert writes.counts["insert"] > 0
            assert lost == {}, fault
    finally:
        store.close()
