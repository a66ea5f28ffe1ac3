"""The history checker (tests/history.py) finds what it is for: histories
that a sound store could not have produced are refused, each for its
reason, and sound ones pass; and a real load's history passes."""
import pytest

from tests.history import Client, History, answers, check

INITIAL = {"a": 100, "b": 0, "c": 50}


def transfer(txn_id, at, sender="a", recipient="b", amount=10, type="ok", state="finished",
             took=1):
    op = {"f": "transfer", "id": txn_id, "sender": sender, "recipient": recipient,
          "amount": amount, "invoke": at, "complete": at + took, "type": type,
          "answer": {"ok": 201, "fail": 422, "info": 503}[type]}
    if type == "ok":
        op["state"] = state
    return op


def read(user, balance, at, took=1):
    return {"f": "read", "user": user, "balance": balance, "invoke": at, "complete": at + took,
            "type": "ok", "answer": 200}


def state(txn_id, seen, at):
    return {"f": "state", "id": txn_id, "state": seen, "invoke": at, "complete": at + 1,
            "type": "ok", "answer": 200}


#: Two finished transfers of 10 from a to b, the second queued (answered
#: ``initial``) and finished by /process later; reads in between.
SOUND = [
    transfer("t1", 0),
    read("a", 90, 2),
    transfer("t2", 3, state="initial"),
    read("b", 10, 5),          # t2 not yet carried
    read("b", 20, 5),          # or already: either order explains it
    state("t2", "in progress", 6),
    state("t2", "finished", 8),
    state("t9", None, 8),             # no such transfer: none was ever seen
    transfer("t3", 9, type="info"),   # no answer: it may or may not have been recorded
    read("a", 80, 10),
]
FINAL = {"t1": "finished", "t2": "finished", "t3": None}
BALANCES = {"a": 80, "b": 20, "c": 50}


def test_a_sound_history_passes():
    assert check(SOUND, INITIAL, FINAL, BALANCES) == []


def test_an_unanswered_transfer_may_have_taken_effect():
    final = {**FINAL, "t3": "finished"}
    assert check(SOUND, INITIAL, final, {"a": 70, "b": 30, "c": 50}) == []


@pytest.mark.parametrize("history, final, balances, problem", [
    # Acknowledged, then gone.
    (SOUND, {**FINAL, "t2": None}, {"a": 90, "b": 10, "c": 50}, "lost: t2"),
    # Acknowledged, and never ended.
    (SOUND, {**FINAL, "t2": "in progress"}, {"a": 90, "b": 10, "c": 50}, "lost: t2"),
    # Refused with a 4xx, yet recorded.
    (SOUND + [transfer("t4", 11, type="fail")], {**FINAL, "t4": "failed"}, BALANCES,
     "was refused"),
    # A balance no order explains: 15 when every transfer moves 10.
    (SOUND + [read("b", 15, 11)], FINAL, BALANCES, "b read 15"),
    # A read that misses a transfer answered finished before it was sent.
    (SOUND + [read("b", 10, 12)], FINAL, BALANCES, "b read 10"),
    # A read that shows a transfer sent after it was answered.
    ([read("b", 10, 0), transfer("t1", 5)], {"t1": "finished"},
     {"a": 90, "b": 10, "c": 50}, "b read 10"),
    # Negative.
    (SOUND + [read("c", -5, 11)], FINAL, BALANCES, "c read negative"),
    # A state moving back: finished, then in progress.
    (SOUND + [state("t1", "in progress", 12)], FINAL, BALANCES, "t1 went back"),
    # Acknowledged, then not found.
    (SOUND + [state("t1", None, 12)], FINAL, BALANCES, "t1 went back"),
    # Failed, then finished.
    ([transfer("t1", 0, state="failed"), state("t1", "finished", 3)], {"t1": "finished"},
     {"a": 90, "b": 10, "c": 50}, "t1 went back"),
    # The end disagrees with the finished transfers.
    (SOUND, FINAL, {"a": 80, "b": 10, "c": 60}, "b ends at 10"),
    # Money made from nothing.
    (SOUND, FINAL, {"a": 80, "b": 20, "c": 60}, "money not conserved"),
])
def test_a_history_no_sound_store_gives_is_refused(history, final, balances, problem):
    problems = check(history, INITIAL, final, balances)
    assert any(problem in p for p in problems), problems


def test_a_real_load_history_passes(app, register):
    """Through the app: transfers, reads and state reads recorded by the
    client, then checked against the store's end."""
    from tests.e2e.api import Api

    class WebTestApi(Api):  # the Api's calls, on the WSGI app instead of a socket
        def call(self, method, path, **kwargs):
            res = (app.post_json(path, kwargs["json"], expect_errors=True) if method == "POST"
                   else app.get(path, expect_errors=True))
            return res.status_int, res.json

    a, b = register("ann", 100), register("bob", 5)
    history = History()
    client = Client(WebTestApi("http://app"), history)
    for n in range(12):
        sender, recipient = (a, b) if n % 3 else (b, a)
        op = client.transfer(f"h{n}", sender, recipient, 1000, immediately=n % 2 == 0)
        client.read(sender)
        client.state(op["id"])
    app.post("/process")
    ids = [op["id"] for op in history.ops if op["f"] == "transfer"]
    final = {i: client.state(i)["state"] for i in ids}
    balances = {u: client.read(u)["balance"] for u in (a, b)}
    assert check(history.ops, {a: 10000, b: 500}, final, balances) == []
    # Each kind of answer the checker tells apart came up.
    assert {"transfer 201", "transfer 422"} <= set(answers(history.ops))
    assert {"finished", None} <= set(final.values())
