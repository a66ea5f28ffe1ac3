import hashlib

import pytest

from tests.conftest import snapshot
from tests.counting import Counting


def test_register_and_list_in_seed_shape(app):
    created = app.post_json("/users", {"nickname": "zoe", "balance": 5}, status=201).json
    key = created["data"].pop("key")  # the new user's API key, shown this once
    assert key.startswith(f"timpe_{hashlib.sha1(b'zoe').hexdigest()}_")
    assert created == {"status": "success", "data": {
        "id": hashlib.sha1(b"zoe").hexdigest(), "nickname": "zoe", "balance": 5, "held": 0}}
    app.post_json("/users", {"nickname": "adam"}, status=201)  # balance defaults to 0
    listed = app.get("/users").json
    assert listed == {"status": "success", "data": [
        {"id": hashlib.sha1(b"adam").hexdigest(), "nickname": "adam", "balance": 0, "held": 0},
        {"id": hashlib.sha1(b"zoe").hexdigest(), "nickname": "zoe", "balance": 5, "held": 0},
    ]}


def test_register_alias_and_unicode_nickname(app):
    body = app.post_json("/users/register", {"nickname": "Zoë Ångström", "balance": 1.25}).json
    assert body["data"]["id"] == hashlib.sha1("Zoë Ångström".encode()).hexdigest()
    assert app.get(f"/users/{body['data']['id']}").json["data"]["balance"] == 1.25


def test_get_user_and_unknown_user(app, register):
    uid = register("ann", 10)
    assert app.get(f"/users/{uid}").json == {
        "status": "success", "data": {"id": uid, "nickname": "ann", "balance": 10, "held": 0}}
    missing = app.get("/users/" + "0" * 40, status=404).json
    assert missing["status"] == "failed" and "unknown user" in missing["msg"]


def test_duplicate_nickname_is_409_and_keeps_the_first(app, store, register):
    register("ann", 10)
    before = snapshot(store)
    err = app.post_json("/users", {"nickname": "ann", "balance": 99}, status=409).json
    assert err["status"] == "failed" and "already registered" in err["msg"]
    assert snapshot(store) == before


@pytest.mark.parametrize("body", [
    {}, {"balance": 5}, {"nickname": ""}, {"nickname": "   "}, {"nickname": 7},
    {"nickname": None}, {"nickname": ["a"]}, {"nickname": "x" * 65},
    {"nickname": "tab\there"}, {"nickname": "nul\x00"}, {"nickname": "lone \ud800"},
    {"nickname": "bob\n"}, {"nickname": "\u00a0\u2003"}, {"nickname": "nel\u0085"},
    {"nickname": "bob", "balance": -1}, {"nickname": "bob", "balance": "5"},
    {"nickname": "bob", "balance": True}, {"nickname": "bob", "balance": 0.001},
    {"nickname": "bob", "balance": None}, {"nickname": "bob", "extra": 1},
])
def test_bad_registration_is_400_and_writes_nothing(app, store, body):
    before = snapshot(store)
    err = app.post_json("/users", body, status=400).json
    assert err["status"] == "failed" and err["msg"]
    assert snapshot(store) == before


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"[1, 2]", b'"ann"', b"null", b'{"nickname": "a", "balance": NaN}',
    b'{"nickname": "a", "balance": Infinity}', b"\xff\xfe", b'{"nickname": "a"',
])
def test_malformed_body_is_400(app, store, raw):
    before = snapshot(store)
    err = app.post("/users", raw, content_type="application/json", status=400).json
    assert err["status"] == "failed" and err["msg"]
    assert snapshot(store) == before


@pytest.mark.parametrize("path", ["/users", "/transactions", "/transactions/immediately"])
@pytest.mark.parametrize("raw", [
    b"[" * 30000 + b"]" * 30000,
    b'{"nickname": ' + b"[" * 20000 + b"]" * 20000 + b"}",
    b'{"a":' * 10000 + b"1" + b"}" * 10000,
])
def test_deeply_nested_body_is_400(app, store, path, raw):
    """Found by hand after fuzzing: the parser's recursion limit was a 500."""
    before = snapshot(store)
    err = app.post(path, raw, content_type="application/json", status=400).json
    assert err["status"] == "failed" and "nested" in err["msg"]
    assert snapshot(store) == before


def test_oversized_body_is_413(app, store):
    before = snapshot(store)
    body = b'{"nickname": "' + b"a" * 70000 + b'"}'
    err = app.post("/users", body, content_type="application/json", status=413).json
    assert err["status"] == "failed"
    assert snapshot(store) == before


def test_unknown_path_and_wrong_method_are_json(app):
    assert app.get("/nowhere", status=404).json["status"] == "failed"
    assert app.delete("/users", status=405).json["status"] == "failed"


@pytest.mark.parametrize("url", [
    "/users/%ff", "/transactions/%ff%fe", "/transactions?state=%ff", "/transactions?limit=%c3",
])
def test_url_that_is_not_utf8_is_400(app, url):
    """Both were a 500: webob's and Pyramid's decoding errors escaped."""
    err = app.get(url, status=400).json
    assert err["status"] == "failed" and "UTF-8" in err["msg"]


def test_probe_status(app):
    res = app.get("/probe_status")
    assert res.text == "OK" and res.content_type == "text/plain"


def test_balance_read_does_not_grow_with_history(app, store, register):
    """A balance read walks from the head hint: a bounded number of gets."""
    from timpe.ledger import HINT_STRIDE
    from timpe.users.services import UserService
    a, b = register("a", 1000), register("b", 0)
    for _ in range(200):
        app.post_json("/transactions/immediately", {"sender": a, "recipient": b, "amount": 1})
    counted = CountingStore(store)
    assert UserService(counted).find(a)["balance"] == 800
    assert counted.gets <= HINT_STRIDE + 2


class CountingStore:
    def __init__(self, store):
        self.store, self.gets = store, 0

    def get(self, *args):
        self.gets += 1
        return self.store.get(*args)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_nickname_check_is_linear_time(app, store):
    """No catastrophic backtracking on a body at the size limit."""
    import time
    for nickname in (" " * 60000 + "\x00", "a" * 60000 + "\x00", "a " * 30000 + "\x01"):
        started = time.perf_counter()
        app.post_json("/users", {"nickname": nickname}, status=400)
        assert time.perf_counter() - started < 1


def test_a_user_id_that_is_no_string_is_not_found_without_a_lookup(store):
    # The services are called in-process too, where no schema checked the id.
    from timpe.errors import NotFound
    from timpe.users.services import UserService
    users = UserService(store)
    bob = users.register("bob", 1)["id"]
    for odd in (["x"], {"id": bob}, 7, None):
        with pytest.raises(NotFound):
            users.get_many(bob, odd)


def test_list_users_pages_with_limit_and_after(app, register):
    ids = {name: register(name, 1) for name in ("dora", "ann", "cid", "bob", "eve")}
    everyone = app.get("/users").json
    assert set(everyone) == {"status", "data"}  # the seed's shape, every user
    assert [u["nickname"] for u in everyone["data"]] == ["ann", "bob", "cid", "dora", "eve"]
    seen, after = [], None
    while True:
        body = app.get("/users", params={"limit": 2, **({"after": after} if after else {})}).json
        seen += body["data"]
        after = body["next"]
        if after is None:
            break
    assert seen == everyone["data"]
    assert [u["nickname"] for u in app.get(f"/users?after={ids['cid']}").json["data"]] == \
        ["dora", "eve"]
    last = app.get(f"/users?after={ids['cid']}&limit=2").json
    assert [u["nickname"] for u in last["data"]] == ["dora", "eve"] and last["next"] is None
    for bad in ("limit=0", "limit=x", "limit=2&limit=1", f"after={ids['cid']}&after="):
        assert app.get(f"/users?{bad}", status=400).json["status"] == "failed"
    for unknown in ("0" * 40, ""):
        err = app.get(f"/users?after={unknown}", status=404).json
        assert err["status"] == "failed" and "'after' names no user" in err["msg"]


def test_a_page_of_users_proves_their_balances_in_one_look_up(store):
    from timpe.money import to_api
    from timpe.users.services import UserService
    users = UserService(store)
    for i in range(30):
        users.register(f"u{i:02d}", i)

    counting = Counting(store)
    page, more = UserService(counting).all(limit=20)
    assert [u["balance"] for u in page] == [to_api(i) for i in range(20)]
    assert more == page[-1]["id"]
    # The page, its users' hint rows at once, then their heads at once: no
    # search per user (a hint lags its head by less than the first window).
    assert [call[:2] for call in counting.calls] == [
        ("scan", "users"), ("get_many", "user_transactions"), ("get_many", "user_transactions")]
