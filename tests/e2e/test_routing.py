"""HAProxy routes transfers by sender where the store asks for it
(timpe.topology.routing), through the real HAProxy and nodes: each sender's
on one node, a node down moves only its senders, and routing never decides
an answer."""
import time

import pytest
import requests

from timpe.audit import audit
from timpe.topology import private, routing

from tests.e2e.api import nick
from tests.topologies import Running


@pytest.fixture(scope="module")
def by_sender(tmp_path_factory):
    """A SQLite topology told to route by sender (CrateDB's default)."""
    prepared = private.prepare(
        tmp_path_factory.mktemp("routing"), identifier="timpe-e2e-routing",
        settings={"routing.affinity": "sender"},
        check_inter="300ms", check_fastinter="200ms", connect_timeout="500ms", startsecs=1)
    with private.running(prepared):
        yield Running(prepared)


def sent_by(running, sender, recipient, count=5):
    """Send ``count`` immediate transfers from ``sender``; return the
    requests each node took through the by_sender backend meanwhile."""
    before = running.served("by_sender")
    for _ in range(count):
        status, body = running.api.transfer(sender, recipient, 1, immediately=True)
        assert status == 201, body
    after = running.served("by_sender")
    return {node: after[node] - before[node] for node in after}


def wait_for_state(running, node, state, timeout=10):
    """Until HAProxy's stats show ``node`` in ``state`` in by_sender."""
    deadline = time.monotonic() + timeout
    while True:
        text = requests.get(f"{running.url}/__haproxy_stats;csv", timeout=5).text
        header, *rows = [line.split(",") for line in text.splitlines() if line]
        column = header.index("status")
        now = next(r[column] for r in rows if r[0] == "by_sender" and r[1] == node)
        if now == state:
            return
        assert time.monotonic() < deadline, f"{node} is {now}, not {state}"
        time.sleep(0.1)


def test_transfers_follow_the_store_s_affinity(topology):
    api = topology.api
    sender, recipient = api.register(nick("s"), 100), api.register(nick("r"), 0)
    before = topology.served()
    took = sent_by(topology, sender, recipient, count=20)
    after = topology.served()
    if topology.store_name == "crate":
        assert topology.affinity == "sender"
        assert sorted(took.values()) == [0, 20], took
    else:
        assert topology.affinity == "none"
        assert took == {"app": 0, "app2": 0}
        assert all(after[n] - before[n] >= 10 for n in after), (before, after)  # round robin
    assert api.balance(sender) == 80 and api.balance(recipient) == 20


def test_each_sender_on_one_node_and_a_node_down_moves_only_its_own(by_sender):
    api = by_sender.api
    recipient = api.register(nick("r"), 0)
    senders = [api.register(nick("s"), 100) for _ in range(12)]
    home = {}
    for sender in senders:
        took = sent_by(by_sender, sender, recipient)
        assert sorted(took.values()) == [0, 5], (sender, took)
        home[sender] = max(took, key=took.get)
    assert set(home.values()) == {"app", "app2"}, home  # 12 senders: both nodes have some

    by_sender.topology.supervisorctl("stop", "app")
    try:
        wait_for_state(by_sender, "app", "DOWN")
        for sender in senders:  # app's senders now on app2; app2's stay
            assert sent_by(by_sender, sender, recipient, count=2) == {"app": 0, "app2": 2}
    finally:
        by_sender.topology.supervisorctl("start", "app")
    by_sender.topology.wait_http(f"{by_sender.node_urls['app']}/probe_status")
    wait_for_state(by_sender, "app", "UP")
    for sender in senders:  # back home once app is up again
        assert sent_by(by_sender, sender, recipient, count=1)[home[sender]] == 1

    assert api.balance(recipient) == 12 * (5 + 2 + 1)
    assert all(api.balance(s) == 100 - 8 for s in senders)
    assert audit(by_sender.store())["problems"] == []


def test_a_body_naming_no_sender_is_answered_by_a_node(by_sender):
    before = by_sender.served()
    for body in (b"garbage", b'{"sender": 5}', b"{}"):
        status, answer = by_sender.api.call("POST", "/transactions", data=body,
                                            headers={"Content-Type": "application/json"})
        assert status == 400 and answer["status"] == "failed", (body, answer)
    assert sum(by_sender.served().values()) == sum(before.values()) + 3


def test_the_store_chooses_unless_the_ini_does():
    crate = {"timpe.store": "timpe.store.crate.CrateStore"}
    assert routing.affinity({}) == "none"
    assert routing.affinity(crate) == "sender"
    assert routing.affinity({**crate, "routing.affinity": "none"}) == "none"
    assert routing.affinity({"routing.affinity": "sender"}) == "sender"
    with pytest.raises(ValueError, match="routing.affinity must be one of sender, none"):
        routing.affinity({"routing.affinity": "recipient"})
