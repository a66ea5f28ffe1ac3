"""Statements and paged listings through HAProxy, on each store (the
session's CrateDB cluster too, where listings are searches)."""
from tests.e2e.api import nick, process_all


def walk(api, path, cursor, **query):
    """Every item of a paged listing, following 'next' to the end."""
    items, at = [], None
    for _ in range(1000):
        params = {**query, **({cursor: at} if at is not None else {})}
        status, body = api.call("GET", path, params=params)
        assert status == 200, body
        items += body["data"]
        at = body["next"]
        if at is None:
            return items
    raise AssertionError(f"{path} did not end")


def test_statement_pages_through_the_ledger(topology):
    api = topology.api
    a, b = api.register(nick("stmt-a"), 100), api.register(nick("stmt-b"), 0)
    for amount in range(1, 8):
        status, body = api.transfer(a, b, amount, immediately=True)
        assert status == 201, body
    status, body = api.transfer(b, a, 3)  # queued: on no statement until processed
    assert status == 201, body
    entries = walk(api, f"/users/{a}/transactions", "before", limit=3)
    assert [e["seq"] for e in entries] == list(range(7, -1, -1))
    assert [e["kind"] for e in entries] == ["debit"] * 7 + ["deposit"]
    for newer, older in zip(entries, entries[1:]):
        assert newer["balance"] == older["balance"] + newer["amount"]
    assert entries[0]["balance"] == api.balance(a) == 100 - 28
    assert {e["counterparty"] for e in entries[:-1]} == {b}
    process_all(api)
    credit = walk(api, f"/users/{a}/transactions", "before", limit=1)[0]
    assert (credit["seq"], credit["kind"], credit["amount"], credit["state"]) == \
        (8, "credit", 3, "finished")


def test_transactions_and_users_page_with_filters(topology):
    api = topology.api
    a, b, c = (api.register(nick(f"list-{p}"), 50) for p in "abc")
    made = {}
    for sender, recipient in [(a, b), (b, c), (a, c), (c, a), (a, b), (a, c)]:
        status, body = api.transfer(sender, recipient, 1, immediately=True)
        assert status == 201, body
        made[body["data"]["id"]] = (sender, recipient)
    from_a = walk(api, "/transactions", "before", sender=a, limit=2)
    assert {t["id"] for t in from_a} == {i for i, (s, _) in made.items() if s == a}
    assert len(from_a) == 4
    keys = [(-t["timestamp"], t["id"]) for t in from_a]
    assert keys == sorted(keys)  # newest first, ties by id
    to_c = walk(api, "/transactions", "before", recipient=c, state="finished", limit=1)
    assert {t["id"] for t in to_c} == {i for i, (_, r) in made.items() if r == c}
    status, everyone = api.call("GET", "/users")
    assert status == 200 and set(everyone) == {"status", "data"}
    assert walk(api, "/users", "after", limit=7) == everyone["data"]
