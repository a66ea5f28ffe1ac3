"""A store destroyed and set up again under running app nodes (what
bin/crate_cleanup then bin/crate_setup do): the nodes write nothing after a
row they kept of the old store. Their first insert is refused; the worker
answers 503, ends what it had under way and starts over, and the nodes
serve the new store as it is (timpe.store.identity)."""
import time
import uuid
from collections import Counter

import pytest

from tests.e2e.api import Api, nick
from tests.topologies import Running
from timpe.audit import audit
from timpe.auth import client
from timpe.topology import private

#: Seconds within which both nodes serve the new store.
STARTED_OVER = 60


@pytest.fixture(params=["sqlite", "crate"])
def running(request, tmp_path):
    settings = None
    if request.param == "crate":
        # The session's cluster, in a schema of this test's own.
        cluster = request.getfixturevalue("crate_topology").cluster
        settings = {"timpe.store": "timpe.store.crate.CrateStore",
                    "crate.hosts": " ".join(node.host for node in cluster),
                    "crate.schema": f"timpe_again_{uuid.uuid4().hex[:12]}"}
    prepared = private.prepare(tmp_path / "home", identifier="timpe-e2e-again",
                               settings=settings, check_inter="300ms",
                               check_fastinter="200ms", startsecs=1)
    with private.running(prepared):
        yield Running(prepared)
    if settings is not None:
        store = Running(prepared).store()
        store.drop()
        store.close()


def test_nodes_write_nothing_after_rows_of_a_store_made_again(running):
    api = running.api
    alice, bob = nick("again-a"), nick("again-b")
    ids = [api.register(alice, 1000), api.register(bob, 0)]
    for _ in range(20):  # both nodes keep both users' rows and heads
        status, body = api.transfer(*ids, 10, immediately=True)
        assert status == 201, body
    node_apis = [Api(url, key=client.operator_key(running.ini))
                 for url in running.node_urls.values()]
    for node in node_apis:  # each node keeps them, whichever HAProxy picked
        assert node.balance(ids[0]) == 800

    store = running.store()  # another process: the operator's
    store.drop()
    store.setup()
    store.close()

    answers = Counter()
    deadline = time.monotonic() + STARTED_OVER
    registered = set()
    while len(registered) < 2 and time.monotonic() < deadline:
        for nickname, balance in ((alice, 500), (bob, 0)):
            if nickname not in registered:
                status, body = api.call("POST", "/users",
                                        json={"nickname": nickname, "balance": balance})
                answers[status] += 1
                if status in (201, 409):  # 409: an answer lost, then sent again
                    registered.add(nickname)
        time.sleep(0.2)
    assert len(registered) == 2, answers
    paid = 0
    for node in node_apis * 10:  # each node, until it pays from the new store
        while time.monotonic() < deadline:
            status, body = node.transfer(*ids, 1, immediately=True)
            answers[status] += 1
            if status == 201:
                paid += 1
                break
            assert status == 503, body
            time.sleep(0.2)
    assert paid == 20, answers
    # The new store alone decides: the old heads (seq 20) wrote no row.
    assert [api.balance(uid) for uid in ids] == [480, 20]
    store = running.store(fresh=True)
    try:
        assert audit(store)["problems"] == []
        assert max(row["seq"] for row in store.scan("user_transactions")) == 20
    finally:
        store.close()
    logs = "".join(path.read_text() for path in (running.home / "var" / "log").glob("app*.log"))
    assert "the store was made again under this worker" in logs, answers
