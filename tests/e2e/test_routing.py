"""HAProxy routes the writes of legs as the store asks (timpe.topology.routing),
through the real HAProxy and nodes: ``one`` sends every one to the first
node up, ``sender`` each sender's transfers to one node, ``none`` round
robin; a node down moves only what it had, and routing never decides an
answer."""
import time

import pytest

from timpe.audit import audit
from timpe.topology import private, routing
from timpe.topology.instance import haproxy_stats

from tests.e2e.api import nick
from tests.topologies import Running


def routed(tmp_path_factory, affinity):
    """A SQLite topology told to route as ``affinity`` says."""
    prepared = private.prepare(
        tmp_path_factory.mktemp(f"routing-{affinity}"), identifier=f"timpe-e2e-{affinity}",
        settings={"routing.affinity": affinity},
        check_inter="300ms", check_fastinter="200ms", connect_timeout="500ms", startsecs=1)
    return prepared


@pytest.fixture(scope="module")
def by_sender(tmp_path_factory):
    prepared = routed(tmp_path_factory, "sender")
    with private.running(prepared):
        yield every_node_up(Running(prepared), "by_sender")


@pytest.fixture(scope="module")
def one_node(tmp_path_factory):
    prepared = routed(tmp_path_factory, "one")
    with private.running(prepared):
        yield every_node_up(Running(prepared), "one_node")


def every_node_up(running, backend):
    """``running`` once HAProxy has every node up in ``backend``: a topology
    is ready when one is (Topology.wait_routed), and these tests count
    which node takes what from the start."""
    for node in running.node_urls:
        wait_for_state(running, backend, node, "UP")
    return running


def took(running, backend, send):
    """Run ``send()``; return the requests each node took through
    ``backend`` meanwhile."""
    before = running.served(backend)
    send()
    after = running.served(backend)
    return {node: after[node] - before[node] for node in after}


def transfers(running, sender, recipient, count=5):
    def send():
        for _ in range(count):
            status, body = running.api.transfer(sender, recipient, 1, immediately=True)
            assert status == 201, body
    return send


def wait_for_state(running, backend, node, state, timeout=10):
    """Until HAProxy's stats show ``node`` in ``state`` in ``backend``."""
    deadline = time.monotonic() + timeout
    while True:
        now = next(r["status"] for r in haproxy_stats(running.url)
                   if r["pxname"] == backend and r["svname"] == node)
        if now == state:
            return
        assert time.monotonic() < deadline, f"{node} is {now}, not {state}"
        time.sleep(0.1)


def down_then_up(running, backend, node, then):
    """Stop ``node``; once HAProxy sees it down run ``then()``; start it
    again and wait until HAProxy sees it up."""
    running.topology.supervisorctl("stop", node)
    try:
        wait_for_state(running, backend, node, "DOWN")
        then()
    finally:
        running.topology.supervisorctl("start", node)
    running.topology.wait_http(f"{running.node_urls[node]}/probe_status")
    wait_for_state(running, backend, node, "UP")


def test_transfers_follow_the_store_s_affinity(topology):
    api = topology.api
    sender, recipient = api.register(nick("s"), 100), api.register(nick("r"), 0)
    before = topology.served()
    backend = {"crate": "one_node", "sqlite": "apps"}[topology.store_name]
    moved = took(topology, backend, transfers(topology, sender, recipient, count=20))
    after = topology.served()
    if topology.store_name == "crate":
        assert topology.affinity == "one"
        assert moved == {"app": 20, "app2": 0}
    else:
        assert topology.affinity == "none"
        assert all(after[n] - before[n] >= 10 for n in after), (before, after)  # round robin
    assert api.balance(sender) == 80 and api.balance(recipient) == 20


def test_one_node_takes_every_write_of_legs_until_it_is_down(one_node):
    api = one_node.api
    senders = [api.register(nick("s"), 100) for _ in range(4)]
    recipient = api.register(nick("r"), 0)

    def writes():
        for sender in senders:
            transfers(one_node, sender, recipient, count=2)()
            assert api.transfer(sender, recipient, 1)[0] == 201  # queued
            status, held = api.hold(sender, recipient, 3)
            assert status == 201, held
            assert api.post(held["data"]["id"], 1)[0] == 200
            status, held = api.hold(sender, recipient, 2)
            assert api.void(held["data"]["id"])[0] == 200
        api.process()

    # 4 senders x (2 immediate, 1 queued, 2 holds, a post, a void) and /process
    assert took(one_node, "one_node", writes) == {"app": 29, "app2": 0}
    reads = took(one_node, "apps", lambda: [api.balance(s) for s in senders * 3])
    assert reads["app"] >= 1 and reads["app2"] >= 1, reads  # the rest: round robin

    moved = {}
    down_then_up(one_node, "one_node", "app",
                 lambda: moved.update(took(one_node, "one_node", writes)))
    assert moved == {"app": 0, "app2": 29}
    assert took(one_node, "one_node", writes) == {"app": 29, "app2": 0}  # back

    assert api.balance(recipient) == 3 * 4 * (2 + 1 + 1)
    assert audit(one_node.store())["problems"] == []


def test_each_sender_on_one_node_and_a_node_down_moves_only_its_own(by_sender):
    api = by_sender.api
    recipient = api.register(nick("r"), 0)
    senders = [api.register(nick("s"), 100) for _ in range(12)]
    home = {}
    for sender in senders:
        moved = took(by_sender, "by_sender", transfers(by_sender, sender, recipient))
        assert sorted(moved.values()) == [0, 5], (sender, moved)
        home[sender] = max(moved, key=moved.get)
    assert set(home.values()) == {"app", "app2"}, home  # 12 senders: both nodes have some

    def app_s_senders_move():  # app's senders now on app2; app2's stay
        for sender in senders:
            assert took(by_sender, "by_sender", transfers(by_sender, sender, recipient, 2)) \
                == {"app": 0, "app2": 2}

    down_then_up(by_sender, "by_sender", "app", app_s_senders_move)
    for sender in senders:  # back home once app is up again
        assert took(by_sender, "by_sender",
                    transfers(by_sender, sender, recipient, 1))[home[sender]] == 1

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
    assert routing.affinity(crate) == "one"
    assert routing.affinity({**crate, "routing.affinity": "none"}) == "none"
    assert routing.affinity({"routing.affinity": "sender"}) == "sender"
    with pytest.raises(ValueError, match="routing.affinity must be one of one, sender, none"):
        routing.affinity({"routing.affinity": "recipient"})
