"""What a store can do to a request besides answering it: a statement the
client sent twice, a row gone from under a running node, a transfer that
runs out of steps. The client gets a 2xx, a 4xx or a 503, never a 500."""
import pytest

from tests.meddling import MeddlingStore, delete, resent
from tests.spec import SpecTestApp, app_settings
from timpe import main
from timpe.transactions import protocol
from timpe.transactions.services import TransactionService


@pytest.fixture
def meddled(db_path, store):
    """(the app, the store an app made, to meddle with)."""
    MeddlingStore.made.clear()
    app = SpecTestApp(main({}, **app_settings(db_path,
                                              **{"timpe.store": "tests.meddling.MeddlingStore"})))
    return app, MeddlingStore.made[-1]


def register(app, nickname, balance, status=201):
    return app.post_json("/users", {"nickname": nickname, "balance": balance},
                         status=status).json


def test_a_registration_the_client_sent_twice_answers_201_to_its_maker(meddled):
    app, store = meddled
    store.before("insert", "users", resent)
    made = register(app, "ann", 12)["data"]
    assert made["nickname"] == "ann" and made["balance"] == 12
    assert app.get(f"/users/{made['id']}").json["data"]["balance"] == 12


@pytest.mark.parametrize("balance", [12, 13])
def test_another_registration_of_the_nickname_is_still_409(meddled, balance):
    """Only the maker's own row answers 201: the same nickname asked for
    again (the same balance too) by another request is taken."""
    app, store = meddled
    register(app, "ann", 12)
    store.before("insert", "users", resent)
    assert "already registered" in register(app, "ann", balance, status=409)["msg"]


def test_a_transfer_that_runs_out_of_steps_is_202_and_process_ends_it(meddled, monkeypatch):
    app, _ = meddled
    a, b = register(app, "ann", 100)["data"]["id"], register(app, "bob", 0)["data"]["id"]
    monkeypatch.setattr(protocol, "MAX_STEPS", 1)  # one step: the debit, not the credit
    body = {"sender": a, "recipient": b, "amount": 10}
    taken = app.post_json("/transactions/immediately", body, status=202).json["data"]
    assert taken["state"] == "in progress"
    monkeypatch.setattr(protocol, "MAX_STEPS", 1000)
    app.post("/process")
    assert app.get(f"/transactions/{taken['id']}").json["data"]["state"] == "finished"
    assert app.get(f"/users/{b}").json["data"]["balance"] == 10


def lost(response):
    assert response.json["status"] == "failed" and "lost" in response.json["msg"], response.json


def test_a_claim_past_the_proven_head_answers_503(meddled, store):
    """The ledger rows a claim was made after are gone (a store wiped and
    filled again): the transfer cannot go on, and says why."""
    app, _ = meddled
    a, b = register(app, "ann", 100)["data"]["id"], register(app, "bob", 0)["data"]["id"]
    service = TransactionService(store)
    for _ in range(3):
        service.immediately(a, b, 10)
    service.create(a, b, 10, claimed=True)
    store.sql("DELETE FROM user_transactions WHERE seq > 0")
    lost(app.post("/process", status=503))


def test_a_transfer_gone_before_its_end_answers_503(meddled):
    app, store = meddled
    a, b = register(app, "ann", 100)["data"]["id"], register(app, "bob", 0)["data"]["id"]
    store.before("update", "transactions", delete("transactions", "1 = 1"))
    lost(app.post_json("/transactions/immediately",
                       {"sender": a, "recipient": b, "amount": 10}, status=503))


def test_a_transfer_gone_when_its_claim_is_set_answers_503(meddled):
    app, store = meddled
    a, b = register(app, "ann", 100)["data"]["id"], register(app, "bob", 0)["data"]["id"]
    app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 10}, status=201)
    store.before("cas", "transactions", delete("transactions", "1 = 1"))
    lost(app.post("/process", status=503))
