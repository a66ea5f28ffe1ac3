"""Every value reaches SQL as a bound parameter: hostile strings are stored
verbatim or refused, and every table survives."""
from urllib.parse import quote

import pytest

from tests.conftest import snapshot

HOSTILE = [
    "Robert'); DROP TABLE users;--",
    "' OR '1'='1",
    "x\"; DELETE FROM transactions; --",
    "1; UPDATE user_transactions SET balance = 1000000",
    "%s %d ? :name $1",
]


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_strings_in_every_field(app, store, register, evil):
    a, b = register("alice", 100), register("bob", 0)
    made = app.post_json("/users", {"nickname": evil, "balance": 1}, status=201).json["data"]
    assert app.get(f"/users/{made['id']}").json["data"]["nickname"] == evil
    before = snapshot(store)
    for body in ({"sender": evil, "recipient": b, "amount": 1},
                 {"sender": a, "recipient": evil, "amount": 1},
                 {"sender": a, "recipient": b, "amount": evil},
                 {"sender": a, "recipient": b, "amount": 1, "id": evil}):
        for path in ("/transactions", "/transactions/immediately"):
            res = app.post_json(path, body, expect_errors=True)
            assert res.status_int in (400, 404) and res.json["status"] == "failed"
    q = quote(evil, safe="")
    for url in (f"/transactions?state={q}", f"/transactions?limit={q}", f"/process?limit={q}"):
        assert app.request(url, method="POST" if "process" in url else "GET",
                           expect_errors=True).status_int == 400
    assert app.get("/users/" + q, expect_errors=True).status_int == 404
    assert app.get("/transactions/" + q, expect_errors=True).status_int == 404
    assert snapshot(store) == before
    # An Idempotency-Key is hashed into the id, so any printable text is safe.
    res = app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 1},
                        headers={"Idempotency-Key": evil}, status=201)
    assert app.get(f"/transactions/{res.json['data']['id']}").json["data"]["amount"] == 1
    assert [u["nickname"] for u in app.get("/users").json["data"]] == sorted(["alice", "bob", evil])
