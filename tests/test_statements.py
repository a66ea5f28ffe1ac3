"""GET /users/{id}/transactions: the account statement, paged by position."""
import pytest

from tests.conftest import snapshot
from tests.counting import Counting
from tests.spec import SpecTestApp, app_settings
from timpe import main
from timpe.ledger import HINT_STRIDE, MAX_LEGS
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService
from timpe.users.statements import Statements


def statement(app, uid, **query):
    return app.get(f"/users/{uid}/transactions", params=query).json


def test_statement_newest_first_with_running_balance(app, register):
    a, b = register("ann", 10), register("bob", 5)
    paid = app.post_json("/transactions/immediately",
                         {"sender": a, "recipient": b, "amount": 2.5}).json["data"]
    queued = app.post_json("/transactions", {"sender": b, "recipient": a, "amount": 1}).json["data"]
    app.post("/process")
    body = statement(app, a)
    assert body["status"] == "success" and body["next"] is None
    assert body["data"] == [
        {"seq": 2, "kind": "credit", "amount": 1, "balance": 8.5, "held": 0, "transaction_id": queued["id"],
         "counterparty": b, "state": "finished", "timestamp": body["data"][0]["timestamp"]},
        {"seq": 1, "kind": "debit", "amount": -2.5, "balance": 7.5, "held": 0, "transaction_id": paid["id"],
         "counterparty": b, "state": "finished", "timestamp": body["data"][1]["timestamp"]},
        {"seq": 0, "kind": "deposit", "amount": 10, "balance": 10, "held": 0, "transaction_id": None,
         "counterparty": None, "state": None, "timestamp": body["data"][2]["timestamp"]},
    ]
    assert body["data"][0]["balance"] == app.get(f"/users/{a}").json["data"]["balance"]
    assert [e["kind"] for e in statement(app, b)["data"]] == ["debit", "credit", "deposit"]


def test_pages_by_seq_show_each_entry_once_while_transfers_go_on(app, register):
    a, b = register("ann", 100), register("bob")
    for _ in range(6):
        app.post_json("/transactions/immediately", {"sender": a, "recipient": b, "amount": 1})
    seen, before = [], None
    while True:
        page = statement(app, a, limit=3, **({} if before is None else {"before": before}))
        seen += [e["seq"] for e in page["data"]]
        # New entries land above the first page: the pages below never shift.
        app.post_json("/transactions/immediately", {"sender": a, "recipient": b, "amount": 1})
        before = page["next"]
        if before is None:
            break
    assert seen == [6, 5, 4, 3, 2, 1, 0]
    # A cursor is a position: a row's seq times MAX_LEGS, plus a leg's place.
    assert [e["seq"] for e in statement(app, a, before=2 * MAX_LEGS)["data"]] == [1, 0]
    assert statement(app, a, before=0) == {"status": "success", "data": [], "next": None}
    top = statement(app, a, before=10 ** 12, limit=2)  # past the head: from the head
    assert [e["seq"] for e in top["data"]] == [9, 8] and top["next"] == 8 * MAX_LEGS


def test_a_transfer_shows_where_money_moved(store, db_path):
    """Recorded (initial): on no statement. Debit written, credit not yet
    (its node died between them): on the sender's only, with its state."""
    users, statements = UserService(store), Statements(UserService(store))
    a, b = users.register("ann", 1000)["id"], users.register("bob", 0)["id"]
    TransactionService(store, users).create(a, b, 100)
    assert [e["kind"] for e in statements.page(a)[0]] == ["deposit"]

    class DiesBeforeTheCredit:
        def __init__(self, store):
            self.store = store

        def __getattr__(self, name):
            return getattr(self.store, name)

        def insert(self, table_name, row):
            if row.get("kind") == "credit":
                raise RuntimeError("node killed")
            return self.store.insert(table_name, row)

    dying = DiesBeforeTheCredit(store)
    with pytest.raises(RuntimeError):
        TransactionService(dying, UserService(dying)).immediately(a, b, 300)
    fresh = Statements(UserService(SQLiteStore(db_path)))
    [debit, _] = fresh.page(a)[0]
    assert (debit["kind"], debit["amount"], debit["balance"], debit["state"]) == \
        ("debit", -3, 7, "in progress")
    assert [e["kind"] for e in fresh.page(b)[0]] == ["deposit"]


# Histories whose head is as far from the users row's hint (the hint
# moves every HINT_STRIDE rows): the cost of the walk from it is the same.
@pytest.mark.parametrize("history", [10, 6 * HINT_STRIDE + 10])
def test_a_page_costs_the_page_not_the_history(store, history):
    users = UserService(store)
    a, b = users.register("ann", history)["id"], users.register("bob", 0)["id"]
    transfers = TransactionService(store, users)
    for _ in range(history):
        transfers.immediately(a, b, 1)
    counting = Counting(store)
    page, next_ = Statements(UserService(counting)).page(a, before=history // 2 * MAX_LEGS,
                                                         limit=5)
    assert [e["seq"] for e in page] == list(range(history // 2 - 1, history // 2 - 6, -1))
    assert next_ == ((history // 2 - 5) * MAX_LEGS or None)  # None: the page reached seq 0
    assert {name for name, _, _ in counting.calls} <= {"get", "get_many", "newest"}
    # The head is proven from the users row's hint, by key: no search.
    assert [c for c in counting.calls if c[0] == "newest"] == []
    # Users row, head (from its hint: a window or two), the page's rows,
    # their transactions.
    assert len(counting.calls) <= 5
    assert sum(keys for _, _, keys in counting.calls) <= 1 + 9 + 16 + 5 + 5


@pytest.mark.parametrize("query, msg", [
    ("limit=0", ">= 1"), ("limit=201", "exceed"), ("before=-1", ">= 0"),
    ("before=x", "whole number"),
])
def test_bad_statement_query_is_400_and_writes_nothing(app, store, register, query, msg):
    a = register("ann", 1)
    before = snapshot(store)
    err = app.get(f"/users/{a}/transactions?{query}", status=400).json
    assert err["status"] == "failed" and msg in err["msg"]
    assert snapshot(store) == before


def test_statement_of_an_unknown_user_is_404(app):
    err = app.get("/users/" + "0" * 40 + "/transactions", status=404).json
    assert err["status"] == "failed" and "unknown user" in err["msg"]


def test_statement_through_a_second_app_on_the_same_file(db_path, app, register):
    """Another node (its own process state) pages the same statement."""
    a, b = register("ann", 3), register("bob")
    app.post_json("/transactions/immediately", {"sender": a, "recipient": b, "amount": 1})
    other = SpecTestApp(main({}, **app_settings(db_path)))
    assert [e["seq"] for e in statement(other, a)["data"]] == [1, 0]
