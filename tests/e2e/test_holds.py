"""Holds on the running topology, on each store: a post and a void sent at
once through both nodes, expiry without an operator, and a node SIGKILLed
under a load of holds, posts and voids."""
import random
import threading
import time
from collections import Counter
from decimal import Decimal

from tests.e2e.api import (SLACK, Api, emptied, in_phase_2, join_all, kill_under_load, nick,
                           run_threads)
from timpe.audit import audit
from timpe.cli import load_settings
from timpe.transactions.protocol import HELD


def test_a_post_and_a_void_through_both_nodes_at_once_one_wins(topology):
    api = topology.api
    buyer, shop = api.register(nick("buy"), 1000), api.register(nick("shop"), 0)
    holds = []
    for _ in range(12):
        status, body = api.hold(buyer, shop, 10)
        assert status == 201 and body["data"]["state"] == "held", body
        holds.append(body["data"]["id"])
    nodes = [Api(topology.node_urls[name], key=topology.operator_key) for name in ("app", "app2")]
    answers = {}
    for txn_id in holds:
        barrier, said = threading.Barrier(2), {}

        def decide(index, txn_id=txn_id, barrier=barrier, said=said):
            barrier.wait(10)
            node = nodes[index]
            said[index] = node.post(txn_id) if index == 0 else node.void(txn_id)

        join_all(run_threads(2, decide))
        answers[txn_id] = said
    posted = 0
    for txn_id, said in answers.items():
        codes = sorted(status for status, _ in said.values())
        assert codes == [200, 409], said  # exactly one won
        final = api.state(txn_id)
        winner = said[0] if said[0][0] == 200 else said[1]
        assert winner[1]["data"]["state"] == final
        assert final == ("finished" if said[0][0] == 200 else "voided")
        posted += final == "finished"
        # A retry of the winner answers the same, through either node.
        retry = nodes[1].post(txn_id) if final == "finished" else nodes[0].void(txn_id)
        assert retry == winner
    assert api.user(buyer) == {**api.user(buyer), "balance": 1000 - 10 * posted, "held": 0}
    assert api.balance(shop) == 10 * posted
    assert audit(topology.store(), require_terminal=False)["problems"] == []


def test_an_expired_hold_is_voided_without_an_operator(topology):
    api = topology.api
    interval = float(load_settings(topology.ini)["recovery.interval"])
    buyer, shop = api.register(nick("exp"), 500), api.register(nick("exp"), 0)
    status, body = api.hold(buyer, shop, 200, expires_in=1)
    assert status == 201, body
    txn_id = body["data"]["id"]
    assert api.user(buyer)["held"] == 200
    deadline = time.monotonic() + 1 + 4 * interval + SLACK
    while time.monotonic() < deadline and api.state(txn_id) != "voided":
        time.sleep(0.3)
    status, body = api.call("GET", f"/transactions/{txn_id}")
    assert (body["data"]["state"], body["data"].get("reason")) == ("voided", "expired")
    assert (api.balance(buyer), api.user(buyer)["held"]) == (500, 0)
    status, body = api.post(txn_id)
    assert status == 409 and body["status"] == "failed"


def test_a_node_killed_under_holds_posts_and_voids_settles_each_once(topology):
    api, store = topology.api, topology.store()
    grace = float(load_settings(topology.ini)["recovery.grace"])
    users = [api.register(nick("hk"), 5000) for _ in range(4)]
    lock, stop = threading.Lock(), threading.Event()
    answers, decided = Counter(), {}  # txn id -> (what a 200 said it did, its body)
    holds = []

    def load(index):
        rnd = random.Random(700 + index)
        mine = []
        for _ in range(2000):  # bounded; normally ended by ``stop``
            if stop.is_set():
                return
            try:
                if mine and rnd.random() < 0.5:
                    txn_id = mine.pop(rnd.randrange(len(mine)))
                    if rnd.random() < 0.5:
                        amount = rnd.choice([None, 1])
                        status, body = api.post(txn_id, amount)
                        what = ("post", Decimal(body["data"]["posted"])) if status == 200 else None
                    else:
                        status, body = api.void(txn_id)
                        what = ("void",) if status == 200 else None
                    with lock:
                        answers[f"decide {status}"] += 1
                        if what is not None:
                            decided[txn_id] = what
                    continue
                sender, recipient = rnd.sample(users, 2)
                status, body = api.hold(sender, recipient, rnd.randint(1, 5))
            except Exception as exc:  # noqa: BLE001 - a cut connection: outcome unknown
                status, body = type(exc).__name__, {}
            with lock:
                answers[f"hold {status}"] += 1
                if status == 201:
                    holds.append(body["data"]["id"])
                    mine.append(body["data"]["id"])

    threads = run_threads(8, load)
    time.sleep(3)
    killed = kill_under_load(topology, stop, threads)
    assert answers["hold 201"] > 20 and answers["decide 200"] > 10, answers

    # Nobody calls /process: the background passes finish what the kill cut.
    settled = emptied(lambda: in_phase_2(store), killed + grace + SLACK)
    assert settled is not None, [(t["id"], t["state"]) for t in in_phase_2(store)[:5]]
    print(f"{topology.store_name}: holds settled {settled - killed:.1f} s after the SIGKILL; "
          f"answers {dict(answers)}")
    # Every acknowledged decision is the outcome; every other hold has one.
    states = Counter()
    for txn_id in holds:
        status, body = api.call("GET", f"/transactions/{txn_id}")
        txn = body["data"]
        states[txn["state"]] += 1
        what = decided.get(txn_id)
        if what is not None and what[0] == "post":
            assert (txn["state"], Decimal(txn["posted"])) == ("finished", what[1]), txn
        elif what is not None:
            assert txn["state"] == "voided", txn
        else:
            assert txn["state"] in ("held", "finished", "voided", "failed"), txn
    assert audit(store, require_terminal=False)["problems"] == []
    # Money is what is spendable and what is held; the holds left void back.
    assert sum(api.balance(u) + api.user(u)["held"] for u in users) == 4 * 5000
    # Those whose answer the kill cut too: found by the listing.
    for sender in users:
        status, body = api.call("GET", "/transactions",
                                params={"state": HELD, "sender": sender, "limit": 1000})
        for txn in body["data"]:
            assert api.void(txn["id"])[0] == 200
    assert sum(api.balance(u) for u in users) == 4 * 5000
    assert all(api.user(u)["held"] == 0 for u in users)
    assert audit(store, require_terminal=False)["problems"] == []
    print(f"{topology.store_name}: hold outcomes {dict(states)}")
