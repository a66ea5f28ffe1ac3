"""CrateDB's disks past the flood stage: CrateDB makes the tables read-only,
and the API answers every write 503 at once with CrateDB's reason while
reads go on; once CrateDB lifts the block (its next look at the disks),
writes go on, and every transfer ends with the money where it was.

The disk is not filled: the watermarks are set below what it already
uses, and CrateDB then acts on it as on a full one."""
import time

from tests.e2e.api import nick, process_all
from timpe.audit import audit

#: CrateDB's check of its disks: 10 s is the least it takes.
INTERVAL = '"cluster.info.update.interval"'
WATERMARKS = tuple(f'"cluster.routing.allocation.disk.watermark.{level}"'
                   for level in ("low", "high", "flood_stage"))
#: A 503 comes within this many seconds (the store's timeout, per host).
QUICK_503 = 10


def until(status, send, timeout=90):
    """Send until the answer's status is ``status``; return that answer.
    Meanwhile every answer must be the other of 201 and 503."""
    deadline = time.monotonic() + timeout
    while True:
        got, body = send()
        if got == status:
            return body
        assert got in (201, 503), body
        assert time.monotonic() < deadline, f"still {got} after {timeout}s: {body}"
        time.sleep(0.5)


def test_writes_answer_503_while_the_disks_are_past_the_flood_stage(crate_topology):
    running = crate_topology
    api = running.api
    sender, recipient = api.register(nick("s"), 100), api.register(nick("r"), 0)
    send = lambda: api.transfer(sender, recipient, 1, immediately=True)  # noqa: E731
    assert send()[0] == 201
    store = running.store()
    try:
        store.sql(f"SET GLOBAL TRANSIENT {INTERVAL} = '10s', "
                  + ", ".join(f"{name} = '1%'" for name in WATERMARKS))
        refused = until(503, send)
        assert refused["status"] == "failed"
        assert "ClusterBlockException" in refused["msg"] and "read-only" in refused["msg"]
        for _ in range(5):
            started = time.monotonic()
            status, body = send()
            assert status == 503 and "read-only" in body["msg"], body
            assert time.monotonic() - started < QUICK_503
        status, body = api.call("POST", "/users", json={"nickname": nick("n"), "balance": 1})
        assert status == 503, body
        assert api.balance(recipient) >= 1  # reads go on
    finally:
        store.sql("RESET GLOBAL " + ", ".join((INTERVAL,) + WATERMARKS))
    until(201, send)
    process_all(api)
    moved = api.balance(recipient)
    assert moved >= 2 and api.balance(sender) == 100 - moved
    assert audit(running.store(fresh=True))["problems"] == []
    store.close()
