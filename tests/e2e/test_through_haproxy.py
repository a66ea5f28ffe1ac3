"""The invariants, proven through HAProxy on the running topology."""
import random
import threading
import time
from collections import Counter

from tests.e2e.api import join_all, nick, process_all, run_threads
from timpe.audit import audit
from timpe.ledger import legs


def ledger_rows(running, txn_ids):
    """How many legs (debits and credits) each transaction wrote."""
    counts = Counter(leg.transaction_id for row in running.store(fresh=True).scan(
        "user_transactions") for leg in legs(row) if leg.kind in ("debit", "credit"))
    return {t: counts.get(t, 0) for t in txn_ids}


def negative_ledger_rows(running):
    return running.store(fresh=True).sql(
        "SELECT count(*) FROM user_transactions WHERE balance < 0")[1][0][0]


def test_seed_scenario(topology):
    api = topology.api
    a, b, c = (api.register(nick(n), 10000) for n in "abc")
    assert api.transfer(a, c, 100)[0] == 201
    assert api.transfer(b, c, 400)[0] == 201
    # Phase 1 only: nothing moved yet.
    assert [api.balance(u) for u in (a, b, c)] == [10000, 10000, 10000]
    process_all(api)
    assert [api.balance(u) for u in (a, b, c)] == [9900, 9600, 10500]


def test_concurrent_transfers_through_both_nodes(topology):
    api = topology.api
    hot = api.register(nick("hot"), 500)
    others = [api.register(nick("other"), 1000) for _ in range(4)]
    routed = {"one": "one_node", "sender": "by_sender"}.get(topology.affinity)
    before, by_affinity = topology.served(), routed and topology.served(routed)
    answers = Counter()
    lock = threading.Lock()

    def load(index):
        rnd = random.Random(index)
        for n in range(30):
            if n % 2 == 0:  # the hot sender, from every thread at once
                status, body = api.transfer(hot, rnd.choice(others), 7, immediately=True)
                key = ("hot", status)
            else:
                sender, recipient = rnd.sample(others, 2)
                status, body = api.transfer(sender, recipient, rnd.randint(1, 60),
                                            immediately=bool(n % 3))
                key = ("others", status)
            with lock:
                answers[key] += 1

    join_all(run_threads(12, load))
    after = routed and topology.served(routed)
    process_all(api)

    assert set(s for _, s in answers) <= {201, 422}, answers
    hot_finished = answers[("hot", 201)]
    assert hot_finished == 71 and answers[("hot", 422)] == 180 - 71, answers
    assert api.balance(hot) == 500 - 7 * 71 == 3
    balances = [api.balance(u) for u in others]
    assert sum(balances) == 4000 + 7 * 71
    assert min(balances) >= 0
    assert negative_ledger_rows(topology) == 0
    served = topology.served()
    if topology.affinity == "none":
        assert all(served[n] > before[n] + 50 for n in ("app", "app2")), (before, served)
    else:  # every transfer as the store asks (tests/e2e/test_routing.py)
        assert sum(after.values()) - sum(by_affinity.values()) == 360, (by_affinity, after)


def test_sigkill_of_a_node_during_load(topology):
    api = topology.api
    users = [api.register(nick("k"), 10000) for _ in range(6)]
    acknowledged, answers = [], Counter()
    lock = threading.Lock()
    stop = threading.Event()
    ok_while_down = threading.Event()
    down = threading.Event()

    def load(index):
        rnd = random.Random(100 + index)
        for n in range(2000):  # bounded; normally ended by ``stop``
            if stop.is_set():
                return
            sender, recipient = rnd.sample(users, 2)
            try:
                status, body = api.transfer(sender, recipient, rnd.randint(1, 100),
                                            immediately=n % 2 == 0)
            except Exception as exc:  # a reset connection: outcome unknown
                status, body = type(exc).__name__, {}
            with lock:
                answers[status] += 1
                if status == 201:
                    acknowledged.append(body["data"]["id"])
                    if down.is_set():
                        ok_while_down.set()

    threads = run_threads(8, load)
    time.sleep(1.5)
    old = topology.topology.kill_node("app")
    down.set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid = topology.topology.pid("app")
        if pid and pid != old:
            break
        time.sleep(0.1)
    assert pid and pid != old, "supervisor did not restart the killed node"
    topology.topology.wait_http(f"{topology.node_urls['app']}/probe_status")
    time.sleep(1.5)  # load on the restarted node too
    stop.set()
    join_all(threads)

    process_all(api)
    assert ok_while_down.is_set(), "no transfer succeeded after the kill"
    # Only requests in flight on the killed node may have lost their answer.
    lost = sum(n for status, n in answers.items() if status not in (201, 422))
    assert lost <= 8 * 2, answers
    states = Counter(api.state(t) for t in acknowledged)
    assert set(states) <= {"finished", "failed"}, states
    assert states["finished"] > 100, states
    balances = [api.balance(u) for u in users]
    assert sum(balances) == 6 * 10000 and min(balances) >= 0
    rows = ledger_rows(topology, acknowledged)
    assert all(rows[t] in (0, 2) for t in acknowledged)
    # Also what was cut off mid-request: every row in the store adds up.
    assert audit(topology.store())["problems"] == []


def test_concurrent_process_on_both_nodes(topology):
    api = topology.api
    hot = api.register(nick("hot"), 1000)
    others = [api.register(nick("p"), 1000) for _ in range(3)]
    queued = []
    for n in range(30):  # phase 1 only: 3000 queued against a balance of 1000
        status, body = api.transfer(hot, others[n % 3], 100)
        assert status == 201, body
        queued.append(body["data"]["id"])
    rnd = random.Random(7)
    for _ in range(30):
        sender, recipient = rnd.sample(others, 2)
        status, body = api.transfer(sender, recipient, rnd.randint(1, 50))
        assert status == 201, body
        queued.append(body["data"]["id"])

    # Both nodes directly, several /process calls each, released together.
    from tests.e2e.api import Api
    barrier = threading.Barrier(6)
    results = []

    def process(index):
        node = Api(topology.node_urls["app" if index % 2 else "app2"], key=topology.operator_key)
        barrier.wait(10)
        results.append(node.process())

    join_all(run_threads(6, process))
    assert len(results) == 6
    process_all(api)

    states = {t: api.state(t) for t in queued}
    assert set(states.values()) <= {"finished", "failed"}
    hot_states = Counter(states[t] for t in queued[:30])
    assert hot_states == {"finished": 10, "failed": 20}, hot_states
    assert api.balance(hot) == 0
    assert sum(api.balance(u) for u in others) == 3000 + 1000
    # Never applied twice: a finished transfer wrote exactly its debit and
    # its credit, a failed one nothing.
    rows = ledger_rows(topology, queued)
    assert all(rows[t] == (2 if states[t] == "finished" else 0) for t in queued), rows
    assert negative_ledger_rows(topology) == 0
