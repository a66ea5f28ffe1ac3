"""Holds through the API: reserve, post (all or part), void, expiry, and
the answers to retries and to decisions that lost."""
import time

import pytest

from tests.conftest import assert_sound, snapshot
from timpe.ledger import now_ms
from timpe.store.schema import TRANSACTIONS
from timpe.transactions.recovery import Recovery
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService


@pytest.fixture
def pair(register):
    return register("alice", 100), register("bob", 0)


def user(app, uid):
    data = app.get(f"/users/{uid}").json["data"]
    return data["balance"], data["held"]


def hold(app, a, b, amount, status=201, **extra):
    return app.post_json("/transactions", {"sender": a, "recipient": b, "amount": amount,
                                           "hold": True, **extra}, status=status).json


def test_a_hold_reserves_the_amount_and_a_post_moves_it(app, store, pair):
    a, b = pair
    held = hold(app, a, b, 30)["data"]
    assert held["state"] == "held" and held["amount"] == 30
    assert held["expires"] - held["timestamp"] == pytest.approx(3600_000, abs=1000)
    assert user(app, a) == (70, 30) and user(app, b) == (0, 0)
    assert_sound(store)  # conservation counts the hold
    posted = app.post_json(f"/transactions/{held['id']}/post", {}, status=200).json["data"]
    assert (posted["state"], posted["posted"]) == ("finished", 30)
    assert user(app, a) == (70, 0) and user(app, b) == (30, 0)
    assert_sound(store)


def test_a_post_of_less_returns_the_rest_and_statements_show_each_leg(app, store, pair):
    a, b = pair
    held = hold(app, a, b, 30)["data"]
    app.post_json(f"/transactions/{held['id']}/post", {"amount": 12.5}, status=200)
    assert user(app, a) == (87.5, 0) and user(app, b) == (12.5, 0)
    entries = app.get(f"/users/{a}/transactions").json["data"]
    assert [(e["kind"], e["amount"], e["balance"], e["held"], e["state"]) for e in entries] == [
        ("post", 17.5, 87.5, 0, "finished"), ("hold", -30, 70, 30, "finished"),
        ("deposit", 100, 100, 0, None)]
    assert [(e["kind"], e["amount"], e["counterparty"])
            for e in app.get(f"/users/{b}/transactions").json["data"]] == [
        ("credit", 12.5, a), ("deposit", 0, None)]
    assert_sound(store)


def test_a_void_returns_the_hold(app, store, pair):
    a, b = pair
    held = hold(app, a, b, 40)["data"]
    voided = app.post(f"/transactions/{held['id']}/void", status=200).json["data"]
    assert voided["state"] == "voided" and "reason" not in voided
    assert user(app, a) == (100, 0) and user(app, b) == (0, 0)
    assert [e["kind"] for e in app.get(f"/users/{a}/transactions").json["data"]] == [
        "void", "hold", "deposit"]
    assert_sound(store)


@pytest.mark.parametrize("body", ["garbage", "{", '{"amount": 1}', "[]"])
def test_a_void_with_a_body_that_is_not_an_empty_object_is_refused_and_voids_nothing(
        app, store, pair, body):
    a, b = pair
    held = hold(app, a, b, 40)["data"]
    before = snapshot(store)
    answer = app.post(f"/transactions/{held['id']}/void", body,
                      content_type="application/json", status=400).json
    assert answer["status"] == "failed" and answer["msg"]
    assert snapshot(store) == before
    app.post_json(f"/transactions/{held['id']}/void", {}, status=200)


def test_a_void_cancels_a_queued_transfer_which_then_moves_nothing(app, store, pair):
    a, b = pair
    queued = app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 10}).json
    voided = app.post(f"/transactions/{queued['data']['id']}/void", status=200).json["data"]
    assert voided["state"] == "voided"
    assert app.post("/process").json["processed"] == 0
    assert user(app, a) == (100, 0)
    app.post(f"/transactions/{queued['data']['id']}/void", status=200)  # a retry: the same
    assert_sound(store)


def test_retries_answer_the_same_and_the_other_decision_gets_409(app, store, pair):
    a, b = pair
    first, second = hold(app, a, b, 10)["data"], hold(app, a, b, 10)["data"]
    posted = app.post_json(f"/transactions/{first['id']}/post", {"amount": 4}).json
    assert app.post_json(f"/transactions/{first['id']}/post", {"amount": 4}).json == posted
    before = snapshot(store)
    assert "finished: it can no longer be voided" in app.post(
        f"/transactions/{first['id']}/void", status=409).json["msg"]
    assert snapshot(store) == before
    err = app.post_json(f"/transactions/{first['id']}/post", {"amount": 5}, status=409).json
    assert err["status"] == "failed" and "posted with the amount 4" in err["msg"]
    voided = app.post(f"/transactions/{second['id']}/void").json
    assert app.post(f"/transactions/{second['id']}/void").json == voided
    assert "voided" in app.post_json(f"/transactions/{second['id']}/post", {},
                                     status=409).json["msg"]
    assert user(app, a) == (96, 0) and user(app, b) == (4, 0)
    assert_sound(store)


def test_a_post_after_expiry_is_refused_and_a_pass_voids_the_hold(app, store, pair):
    a, b = pair
    held = hold(app, a, b, 25, expires_in=1)["data"]
    assert held["expires"] - held["timestamp"] == pytest.approx(1000, abs=50)
    time.sleep(max(0, held["expires"] - now_ms()) / 1000 + 0.01)
    before = snapshot(store)
    err = app.post_json(f"/transactions/{held['id']}/post", {}, status=409).json
    assert "expired" in err["msg"] and snapshot(store) == before
    done = Recovery(store, TransactionService).run_pass()
    assert [t["id"] for t in done.expired] == [held["id"]]
    shown = app.get(f"/transactions/{held['id']}").json["data"]
    assert (shown["state"], shown["reason"]) == ("voided", "expired")
    assert user(app, a) == (100, 0)
    # The client's void of it answers what happened.
    assert app.post(f"/transactions/{held['id']}/void").json["data"]["reason"] == "expired"
    assert_sound(store)


def test_a_pass_leaves_holds_that_have_not_expired(store):
    users = UserService(store)
    a, b = (users.register(n, 1000)["id"] for n in ("ann", "bob"))
    service = TransactionService(store)
    young, _ = service.hold(a, b, 100)
    old, _ = service.hold(a, b, 200)
    store.update(TRANSACTIONS.name, (old["id"],), {"expires": now_ms() - 1})
    done = Recovery(store, TransactionService, grace=0).run_pass()
    assert [t["id"] for t in done.expired] == [old["id"]]
    assert done.tally["held"][0] == 2
    assert [service.find(t["id"])["state"] for t in (young, old)] == ["held", "voided"]
    assert users.find(a)["held"] == 1
    assert_sound(store)


def test_insufficient_funds_are_refused_at_once(app, store, pair):
    a, b = pair
    hold(app, a, b, 60)
    before = snapshot(store)
    err = hold(app, a, b, 60, status=422)
    assert err["status"] == "failed" and err["msg"] == "insufficient funds"
    assert snapshot(store) == before  # refused on the proven head: nothing recorded
    assert user(app, a) == (40, 60)
    assert_sound(store)


@pytest.mark.parametrize("body", [
    {"hold": True, "expires_in": 0}, {"hold": True, "expires_in": 604801},
    {"hold": True, "expires_in": 1.5}, {"hold": "yes"}, {"expires_in": 10},
    {"hold": False, "expires_in": 10},
])
def test_a_bad_hold_is_refused_and_writes_nothing(app, store, pair, body):
    a, b = pair
    before = snapshot(store)
    err = app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 5, **body},
                        status=400).json
    assert err["status"] == "failed" and err["msg"]
    assert snapshot(store) == before


@pytest.mark.parametrize("body", [{"amount": 0}, {"amount": 30.01}, {"amount": "5"},
                                  {"amount": 1, "x": 1}])
def test_a_bad_post_is_refused_and_writes_nothing(app, store, pair, body):
    a, b = pair
    held = hold(app, a, b, 30)["data"]
    before = snapshot(store)
    assert app.post_json(f"/transactions/{held['id']}/post", body,
                         status=400).json["status"] == "failed"
    assert snapshot(store) == before


def test_post_and_void_of_what_is_no_hold_or_unknown(app, store, pair):
    a, b = pair
    done = app.post_json("/transactions/immediately",
                         {"sender": a, "recipient": b, "amount": 1}).json["data"]
    before = snapshot(store)
    assert "not a hold" in app.post_json(f"/transactions/{done['id']}/post", {},
                                         status=409).json["msg"]
    assert "no longer be voided" in app.post(f"/transactions/{done['id']}/void",
                                             status=409).json["msg"]
    app.post("/transactions/nope/void", status=404)
    app.post("/transactions/nope/post", status=404)
    assert snapshot(store) == before


def test_a_hold_retried_with_its_key_is_one_hold(app, store, pair):
    a, b = pair
    body = {"sender": a, "recipient": b, "amount": 7, "hold": True, "expires_in": 60}
    headers = {"Idempotency-Key": "hold-1"}
    first = app.post_json("/transactions", body, headers=headers, status=201).json["data"]
    again = app.post_json("/transactions", body, headers=headers, status=200).json["data"]
    assert again["id"] == first["id"] and again["state"] == "held"
    app.post_json("/transactions", {**body, "expires_in": 61}, headers=headers, status=409)
    app.post_json("/transactions", {k: v for k, v in body.items()
                                    if k not in ("hold", "expires_in")},
                  headers=headers, status=409)
    assert user(app, a) == (93, 7)
    assert app.get("/transactions", params={"state": "held"}).json["data"][0]["id"] == first["id"]


def test_holds_on_a_hot_account_share_rows(store):
    """A hold's leg is a leg like any other: the legs one process has
    waiting for a user go in one row, holds and debits alike."""
    users = UserService(store)
    hot = users.register("hot", 10_000)["id"]
    others = [users.register(f"r{i}", 0)["id"] for i in range(3)]
    service = TransactionService(store)
    # Recorded as POST /transactions with "hold" records them, not yet run.
    holds = [service._create(hot, others[i % 3], 100 * (i + 1), None, True, None,
                             hold=(None,))[0] for i in range(3)]
    plain = service.create(hot, others[0], 50, claimed=True)[0]
    outcomes = service.appender.append_many(hot, [
        *((t["id"], -t["amount"], t["debit_seq"], "hold", t["amount"]) for t in holds),
        (plain["id"], -50, plain["debit_seq"])])
    assert len({row["seq"] for row, _ in outcomes}) == 1  # one row carries all four
    assert [leg.kind for _, leg in outcomes] == ["hold"] * 3 + ["debit"]
    assert (outcomes[0][0]["balance"], outcomes[0][0]["held"]) == (10_000 - 650, 600)
    ended = [service.complete(service.find(t["id"]))["state"] for t in (*holds, plain)]
    assert ended == ["held"] * 3 + ["finished"]
    assert users.find(hot)["held"] == 6
    assert_sound(store)


def test_the_ini_sets_the_default_and_may_lower_the_maximum(db_path, store):
    from tests.spec import SpecTestApp, app_settings
    from timpe import main
    app = SpecTestApp(main({}, **app_settings(db_path, **{"holds.expires_in": "30",
                                                          "holds.max_expires_in": "60"})))
    a = app.post_json("/users", {"nickname": "ann", "balance": 10}).json["data"]["id"]
    b = app.post_json("/users", {"nickname": "bob"}).json["data"]["id"]
    held = hold(app, a, b, 1)["data"]
    assert held["expires"] - held["timestamp"] == pytest.approx(30_000, abs=1000)
    assert "at most 60 seconds" in hold(app, a, b, 1, status=400, expires_in=61)["msg"]
    hold(app, a, b, 1, expires_in=60)
    for wrong in ({"holds.expires_in": "61", "holds.max_expires_in": "60"},
                  {"holds.max_expires_in": "604801"}, {"holds.expires_in": "0"}):
        with pytest.raises(ValueError):
            main({}, **{"sqlite.path": db_path, **wrong})
