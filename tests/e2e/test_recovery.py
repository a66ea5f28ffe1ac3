"""Nothing waits for an operator: a node SIGKILLed under load, and nobody
calls POST /process. Within the grace period and a few seconds the nodes
have finished or failed every transfer that was in phase 2, and the
balances add up."""
import random
import threading
import time
from collections import Counter

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.api import SLACK, emptied, in_phase_2, kill_under_load, nick, run_threads
from timpe.audit import audit
from timpe.cli import load_settings
from timpe.transactions.services import TransactionService


def resumed_by(running):
    """{node: its timpe_recovery_resumed_total}."""
    counts = {}
    for name, url in running.node_urls.items():
        text = requests.get(f"{url}/metrics", timeout=10).text
        counts[name] = sum(s.value for family in text_string_to_metric_families(text)
                           for s in family.samples if s.name == "timpe_recovery_resumed_total")
    return counts


def test_a_node_killed_under_load_settles_without_process(topology):
    api, store = topology.api, topology.store()
    grace = float(load_settings(topology.ini)["recovery.grace"])
    users = [api.register(nick("rec"), 10000) for _ in range(6)]
    before = resumed_by(topology)
    # What a node killed right after phase 1 leaves, for certain: recorded
    # with both legs claimed, and no node working on them.
    left = [TransactionService(store).create(users[i], users[(i + 1) % 6], 10 + i,
                                             claimed=True)[0]["id"] for i in range(6)]
    acknowledged, answers = [], Counter()
    lock, stop = threading.Lock(), threading.Event()

    def load(index):
        rnd = random.Random(300 + index)
        for _ in range(3000):  # bounded; normally ended by ``stop``
            if stop.is_set():
                return
            sender, recipient = rnd.sample(users, 2)
            try:  # immediate only: a queued transfer waits for /process
                status, body = api.transfer(sender, recipient, rnd.randint(1, 100),
                                            immediately=True)
            except Exception as exc:  # noqa: BLE001 - a cut connection: outcome unknown
                status, body = type(exc).__name__, {}
            with lock:
                answers[status] += 1
                if status == 201:
                    acknowledged.append(body["data"]["id"])

    threads = run_threads(8, load)
    time.sleep(3)
    killed = kill_under_load(topology, stop, threads)
    assert answers[201] > 20, answers  # under load, also on a busy CrateDB
    cut = len([t for t in in_phase_2(store) if t["id"] not in left])

    # Nobody calls /process: the nodes' background passes must settle it all.
    settled = emptied(lambda: in_phase_2(store), killed + grace + SLACK)
    stuck = in_phase_2(store)
    assert settled is not None, f"{len(stuck)} transfers still in phase 2 " \
        f"{grace + SLACK:.0f} s after the kill: {[(t['id'], t['state']) for t in stuck[:5]]}"
    print(f"{topology.store_name}: everything settled {settled - killed:.1f} s after the SIGKILL "
          f"(grace {grace:.0f} s); {cut} transfers cut off in phase 2 by the kill besides "
          f"the {len(left)} left there before; answers {dict(answers)}")

    states = Counter(api.state(t) for t in acknowledged + left)
    assert set(states) <= {"finished", "failed"}, states
    assert {api.state(t) for t in left} == {"finished"}
    balances = [api.balance(u) for u in users]
    assert sum(balances) == 6 * 10000 and min(balances) >= 0
    assert audit(store, require_terminal=False)["problems"] == []
    # The background passes did it: app counts from its restart on.
    after = resumed_by(topology)
    assert after["app"] + after["app2"] - before["app2"] >= len(left) + cut, (before, after)
