"""Safe retries: a client's id or an Idempotency-Key never transfers twice."""
import pytest

from tests.conftest import assert_sound, snapshot
from tests.processes import race
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.services import TransactionService, transaction_id

@pytest.fixture
def pair(register):
    return register("alice", 100), register("bob", 0)


def balances(app, *ids):
    return tuple(app.get(f"/users/{i}").json["data"]["balance"] for i in ids)


@pytest.mark.parametrize("path", ["/transactions", "/transactions/immediately"])
def test_retry_with_key_returns_the_first_outcome(app, store, pair, path):
    a, b = pair
    body, headers = {"sender": a, "recipient": b, "amount": 10}, {"Idempotency-Key": "order-17"}
    first = app.post_json(path, body, headers=headers, status=201)
    again = app.post_json(path, body, headers=headers, status=200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json["data"]["id"] == first.json["data"]["id"]
    app.post("/process")
    assert balances(app, a, b) == (90, 10)
    assert_sound(store)


def test_client_id_is_the_transaction_id(app, pair):
    a, b = pair
    body = {"sender": a, "recipient": b, "amount": 10, "id": "invoice-2026-0001"}
    made = app.post_json("/transactions/immediately", body, status=201).json["data"]
    assert made["id"] == "invoice-2026-0001" and made["state"] == "finished"
    assert app.post_json("/transactions/immediately", body, status=200).json["data"]["state"] == "finished"
    assert app.get("/transactions/invoice-2026-0001").json["data"]["amount"] == 10
    assert balances(app, a, b) == (90, 10)


def test_same_key_other_body_is_409_and_writes_nothing(app, store, pair):
    a, b = pair
    headers = {"Idempotency-Key": "k1"}
    app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 10}, headers=headers)
    before = snapshot(store)
    err = app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 11},
                        headers=headers, status=409).json
    assert err["status"] == "failed" and "different" in err["msg"]
    assert snapshot(store) == before


def test_replay_resumes_a_transfer_whose_node_died(app, store, pair):
    """The first attempt got as far as phase 1; its retry finishes it."""
    a, b = pair
    service = TransactionService(store)
    txn, _ = service.create(a, b, 2500, txn_id=transaction_id(idempotency_key="k2"))
    assert txn["state"] == "initial"
    res = app.post_json("/transactions/immediately", {"sender": a, "recipient": b, "amount": 25},
                        headers={"Idempotency-Key": "k2"}, status=200).json
    assert res["data"]["state"] == "finished"
    assert balances(app, a, b) == (75, 25)


@pytest.mark.parametrize("path", ["/transactions", "/transactions/immediately"])
def test_an_id_with_a_key_names_the_transfer_and_a_retry_repeats_both(app, store, pair, path):
    a, b = pair
    body = {"sender": a, "recipient": b, "amount": 10, "id": "order-18"}
    first = app.post_json(path, body, headers={"Idempotency-Key": "k18"}, status=201).json
    assert first["data"]["id"] == "order-18"
    again = app.post_json(path, body, headers={"Idempotency-Key": "k18"}, status=200)
    assert again.headers["Idempotent-Replayed"] == "true"
    before = snapshot(store)
    for headers in ({"Idempotency-Key": "another"}, {}):  # the id, not the same request
        err = app.post_json(path, body, headers=headers, status=409).json
        assert err["status"] == "failed" and "different" in err["msg"]
    assert snapshot(store) == before
    app.post("/process")
    assert balances(app, a, b) == (90, 10)


@pytest.mark.parametrize("body_id, key", [
    ("", None), ("has space", None), ("x" * 65, None), (7, None), ("bad id", "good-key"),
    ("good-id", "tab\tkey"),
    (None, ""), (None, "tab\tkey"), (None, "k" * 201), (None, "ünïcode"),
])
def test_bad_ids_and_keys_are_400(app, store, pair, body_id, key):
    a, b = pair
    body = {"sender": a, "recipient": b, "amount": 1}
    if body_id is not None:
        body["id"] = body_id
    headers = {"Idempotency-Key": key} if key is not None else {}
    before = snapshot(store)
    err = app.post_json("/transactions", body, headers=headers, status=400).json
    assert err["status"] == "failed" and err["msg"]
    assert snapshot(store) == before


def _submit(barrier, results, path, sender, recipient):
    service = TransactionService(SQLiteStore(path))
    barrier.wait()
    outcome = []
    for n in range(20):
        txn, replayed = service.create(sender, recipient, 100,
                                       txn_id=transaction_id(idempotency_key=f"dup-{n}"))
        outcome.append((txn["id"], replayed, service.complete(txn)["state"]))
    results.put(outcome)


@pytest.mark.timeout(120)
def test_concurrent_duplicates_from_many_processes_transfer_once(store, db_path, register):
    a, b = register("payer", 1000), register("payee", 0)
    outcomes = race(_submit, [(db_path, a, b)] * 4)
    for n in range(20):
        attempts = [o[n] for o in outcomes]
        assert len({tid for tid, _, _ in attempts}) == 1
        assert sum(not replayed for _, replayed, _ in attempts) == 1  # one creator
        assert {state for _, _, state in attempts} == {"finished"}
    service = TransactionService(store)
    assert service.users.find(a)["balance"] == 980 and service.users.find(b)["balance"] == 20
    assert_sound(store)


@pytest.mark.parametrize("mode", ["before", "after"])
def test_retry_after_the_first_node_died_at_any_step_transfers_once(store, register, mode):
    from tests.faults import Crash, FaultyStore

    a, b = register("payer", 1000), register("payee", 0)
    healthy = TransactionService(store)
    steps = 24  # more primitive calls than one immediate transfer makes
    for k in range(1, steps + 1):
        txn_id = transaction_id(idempotency_key=f"retry-{k}")
        dying = TransactionService(FaultyStore(store, crash_at=k, mode=mode))
        try:
            dying.complete(dying.create(a, b, 100, txn_id=txn_id)[0])
        except Crash:
            pass
        txn, _ = healthy.create(a, b, 100, txn_id=txn_id)  # the client's retry
        assert healthy.complete(txn)["state"] == "finished"
    assert healthy.users.find(a)["balance"] == 1000 - steps
    assert healthy.users.find(b)["balance"] == steps
    assert_sound(store)
