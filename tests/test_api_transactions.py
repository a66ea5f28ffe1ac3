import time
import uuid

import pytest

from tests.conftest import assert_sound, snapshot


@pytest.fixture
def pair(register):
    return register("alice", 100), register("bob", 0)


def balance(app, uid):
    return app.get(f"/users/{uid}").json["data"]["balance"]


def test_phase_one_records_initial_and_moves_nothing(app, pair):
    a, b = pair
    res = app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 30}, status=201)
    txn = res.json["data"]
    assert res.json["status"] == "success"
    assert txn["state"] == "initial" and txn["amount"] == 30 and len(txn["id"]) == 32
    assert (balance(app, a), balance(app, b)) == (100, 0)
    shown = app.get(f"/transactions/{txn['id']}").json["data"]
    assert shown["state"] == "initial" and shown["sender"] == a and shown["recipient"] == b


def test_a_drawn_id_is_a_uuid7_of_its_creation_time(app, pair):
    a, b = pair
    ids = []
    for _ in range(3):
        before = time.time_ns() // 10 ** 6
        txn = app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 1}).json["data"]
        after = time.time_ns() // 10 ** 6
        drawn = uuid.UUID(txn["id"])
        assert drawn.hex == txn["id"] and drawn.version == 7 and drawn.variant == uuid.RFC_4122
        assert before <= drawn.int >> 80 <= after  # its first 48 bits: milliseconds
        ids.append(txn["id"])
        time.sleep(0.002)
    assert sorted(ids) == ids and len(set(ids)) == 3  # creation order


def test_process_finishes_queued_and_both_paths_work(app, store, pair):
    a, b = pair
    ids = [app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 10}).json["data"]["id"]
           for _ in range(3)]
    res = app.post("/process").json
    assert res == {"status": "success", "processed": 3, "more": False, "failed_transactions": []}
    assert all(app.get(f"/transactions/{i}").json["data"]["state"] == "finished" for i in ids)
    assert app.post("/transactions/process").json["processed"] == 0  # the alias; nothing left
    assert (balance(app, a), balance(app, b)) == (70, 30)
    assert_sound(store)


def test_immediately_finishes(app, store, pair):
    a, b = pair
    txn = app.post_json("/transactions/immediately",
                        {"sender": a, "recipient": b, "amount": 99.99}, status=201).json["data"]
    assert txn["state"] == "finished"
    assert (balance(app, a), balance(app, b)) == (0.01, 99.99)
    assert_sound(store)


def test_queued_transfers_beyond_the_balance_fail_at_processing(app, store, pair):
    """Each passes phase 1's check alone; together they would overdraw."""
    a, b = pair
    for _ in range(5):
        app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 30}, status=201)
    res = app.post("/process").json
    assert res["processed"] == 5
    assert [f["reason"] for f in res["failed_transactions"]] == ["insufficient funds"] * 2
    assert (balance(app, a), balance(app, b)) == (10, 90)
    failed = app.get("/transactions?state=failed").json["data"]
    assert len(failed) == 2 and all(t["reason"] == "insufficient funds" for t in failed)
    assert_sound(store)


def test_thousand_cent_transfers_move_exactly_ten(app, store, register):
    a, b = register("payer", 10), register("payee", 0)
    for _ in range(1000):
        app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 0.01})
    processed, more = 0, True
    while more:  # each call has a time budget: call again while it says more
        answer = app.post("/process").json
        processed, more = processed + answer["processed"], answer["more"]
    assert processed == 1000
    assert balance(app, a) == 0 and balance(app, b) == 10
    assert_sound(store)


def test_list_transactions_newest_first_with_filters(app, pair):
    a, b = pair
    first = app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 1}).json["data"]
    time.sleep(0.005)  # timestamps are milliseconds: keep the order unambiguous
    second = app.post_json("/transactions/immediately", {"sender": a, "recipient": b, "amount": 2}).json["data"]
    listed = app.get("/transactions").json["data"]
    assert [t["id"] for t in listed][:2] == [second["id"], first["id"]]
    assert [t["id"] for t in app.get("/transactions?state=initial").json["data"]] == [first["id"]]
    assert len(app.get("/transactions?limit=1").json["data"]) == 1
    for bad in ("state=bogus", "limit=0", "limit=-1", "limit=abc"):
        assert app.get(f"/transactions?{bad}", status=400).json["status"] == "failed"
    assert app.get("/transactions/" + "f" * 32, status=404).json["status"] == "failed"


TRANSFER_ERRORS = [
    ({"recipient": "B", "amount": 1}, 400, "missing"),
    ({"sender": "A", "amount": 1}, 400, "missing"),
    ({"sender": "A", "recipient": "B"}, 400, "missing"),
    ({"sender": "A", "recipient": "A", "amount": 1}, 400, "differ"),
    ({"sender": "A", "recipient": "B", "amount": 0}, 400, "> 0"),
    ({"sender": "A", "recipient": "B", "amount": -5}, 400, "> 0"),
    ({"sender": "A", "recipient": "B", "amount": "5"}, 400, "number"),
    ({"sender": "A", "recipient": "B", "amount": True}, 400, "number"),
    ({"sender": "A", "recipient": "B", "amount": None}, 400, "number"),
    ({"sender": "A", "recipient": "B", "amount": 0.001}, 400, "decimal places"),
    ({"sender": "A", "recipient": "B", "amount": 1e300}, 400, "exceed"),
    ({"sender": "A", "recipient": "B", "amount": 101}, 422, "insufficient funds"),
    ({"sender": "nobody", "recipient": "B", "amount": 1}, 404, "unknown user"),
    ({"sender": "A", "recipient": "nobody", "amount": 1}, 404, "unknown user"),
    ({"sender": 5, "recipient": "B", "amount": 1}, 400, "user id"),
    ({"sender": "A", "recipient": ["B"], "amount": 1}, 400, "user id"),
    ({"sender": "A", "recipient": "B", "amount": 1, "memo": "x"}, 400, "unknown field"),
]


@pytest.mark.parametrize("path", ["/transactions", "/transactions/immediately"])
@pytest.mark.parametrize("body, status, msg", TRANSFER_ERRORS)
def test_bad_transfer_is_4xx_and_writes_nothing(app, store, pair, path, body, status, msg):
    a, b = pair
    body = {k: {"A": a, "B": b}.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = snapshot(store)
    err = app.post_json(path, body, status=status).json
    assert err["status"] == "failed" and msg in err["msg"]
    assert snapshot(store) == before


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b'{"amount": NaN}', b"\xff"])
def test_malformed_transfer_body_is_400(app, store, raw):
    before = snapshot(store)
    assert app.post("/transactions", raw, content_type="application/json",
                    status=400).json["status"] == "failed"
    assert snapshot(store) == before


def test_process_limit(app, pair):
    a, b = pair
    for _ in range(3):
        app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 1})
    assert app.post("/process?limit=2").json["processed"] == 2
    assert app.post("/process").json["processed"] == 1
    assert app.post("/process?limit=x", status=400).json["status"] == "failed"


def test_process_says_there_is_more_past_its_limit(app, register):
    a, b = register("limited", 100), register("other", 0)
    for _ in range(3):
        app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 1}, status=201)
    first = app.post("/process?limit=2").json
    assert (first["processed"], first["more"]) == (2, True)
    rest = app.post("/process?limit=2").json
    assert (rest["processed"], rest["more"]) == (1, False)


def test_process_starts_nothing_after_its_time_budget(store, monkeypatch):
    from timpe.transactions import services
    from timpe.users.services import UserService

    users = UserService(store)
    a, b = users.register("budget_a", 1000)["id"], users.register("budget_b", 0)["id"]
    service = services.TransactionService(store)
    for _ in range(3):
        service.create(a, b, 1)
    monkeypatch.setattr(services, "PROCESS_SECONDS", -1)  # spent before it starts
    done, failed, more = service.process()
    assert (done, failed, more) == ([], [], True)
    monkeypatch.setattr(services, "PROCESS_SECONDS", 10)
    assert [t["state"] for t in service.process()[0]] == ["finished"] * 3


def test_list_transactions_pages_by_cursor_with_every_filter(app, register):
    a, b, c = register("pa", 100), register("pb", 100), register("pc", 100)
    made = []
    for sender, recipient in [(a, b), (b, c), (a, c), (c, a), (a, b)]:
        made.append(app.post_json("/transactions", {"sender": sender, "recipient": recipient,
                                                    "amount": 1}).json["data"]["id"])
        time.sleep(0.002)
    newest_first = made[::-1]

    def walk(**query):
        seen, before = [], None
        while True:
            body = app.get("/transactions", params={**query, "limit": 2,
                                                   **({"before": before} if before else {})}).json
            seen += [t["id"] for t in body["data"]]
            before = body["next"]
            if before is None:
                return seen

    assert walk() == newest_first
    assert walk(sender=a) == [newest_first[i] for i in (0, 2, 4)]
    assert walk(recipient=c) == [made[2], made[1]]
    assert walk(sender=a, recipient=b) == [made[4], made[0]]
    assert walk(state="initial", sender=c) == [made[3]]
    assert walk(sender="nobody") == []
    last = app.get("/transactions", params={"limit": 5}).json
    assert len(last["data"]) == 5 and last["next"] is None  # exactly the rest: no next page
    err = app.get("/transactions?before=no-such-transaction", status=404).json
    assert err["status"] == "failed" and "'before'" in err["msg"]
