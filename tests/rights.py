"""Every operation of the API called with no key, another user's key, the
owner's key and the operator key: what each must answer. Run in-process on
SQLite (tests/test_auth.py) and through HAProxy on each store
(tests/e2e/test_rights.py)."""
import uuid

NONE, OTHER, OWNER, OPERATOR = "no key", "another user's key", "the owner's key", "the operator key"
CALLERS = (NONE, OTHER, OWNER, OPERATOR)


def _nick(who):
    return f"reg-{who.split()[-2]}-{uuid.uuid4().hex[:8]}"


def _each(status):
    return dict.fromkeys(CALLERS, status)


def cases():
    """(method, path pattern, body or body(who, world), {caller: status}).

    ``world``: {"owner", "other", "third": user ids, "txn": a transfer from the
    owner to the third, who is no caller; "hold", "hold2": two holds of the
    owner's for the third}. A post or void that won is answered the same to
    a retry: the operator's comes after the owner's.
    The key's rotation comes last: it changes the owner's key.
    """
    denied = {NONE: 401, OTHER: 403}
    mine = {**denied, OWNER: 200, OPERATOR: 200}
    send = {**denied, OWNER: 201, OPERATOR: 201}
    operator_only = {**denied, OWNER: 403, OPERATOR: 200}
    transfer = lambda who, w: {"sender": w["owner"], "recipient": w["third"], "amount": 1}  # noqa: E731
    return [
        ("GET", "/probe_status", None, _each(200)),
        ("GET", "/probe_store", None, _each(200)),
        ("GET", "/openapi.json", None, _each(200)),
        ("GET", "/metrics", None, _each(200)),
        ("GET", "/users", None, {NONE: 401, OTHER: 200, OWNER: 200, OPERATOR: 200}),
        ("POST", "/users", lambda who, w: {"nickname": _nick(who)}, _each(201)),
        ("POST", "/users", lambda who, w: {"nickname": _nick(who), "balance": 5},
         {**denied, OWNER: 403, OPERATOR: 201}),
        ("POST", "/users/register", lambda who, w: {"nickname": _nick(who)}, _each(201)),
        ("POST", "/users/register", lambda who, w: {"nickname": _nick(who), "balance": 5},
         {**denied, OWNER: 403, OPERATOR: 201}),
        ("GET", "/users/{owner}", None, mine),
        ("GET", "/users/{owner}/transactions", None, mine),
        ("GET", "/transactions?sender={owner}", None, mine),
        ("GET", "/transactions?recipient={owner}", None, mine),
        ("GET", "/transactions", None, {**denied, OWNER: 403, OPERATOR: 200}),
        ("GET", "/transactions/{txn}", None, mine),
        ("POST", "/transactions/{hold}/post", None, mine),
        ("POST", "/transactions/{hold2}/void", None, mine),
        ("POST", "/transactions", transfer, send),
        ("POST", "/transactions/immediately", transfer, send),
        ("POST", "/process", None, operator_only),
        ("POST", "/transactions/process", None, operator_only),
        ("POST", "/users/{owner}/key", None, mine),
    ]


def operations():
    """(method, path without query) of every case: to prove every route has one."""
    paths = {(method, path.split("?")[0]) for method, path, _, _ in cases()}
    return {(method, path.replace("{owner}", "{id}").replace("{txn}", "{id}")
             .replace("{hold}", "{id}").replace("{hold2}", "{id}")) for method, path in paths}


def check_every_route(call, keys, world):
    """``call(method, path, key, body)`` -> (status, headers, json body); ``keys``:
    {caller: key}, updated when the owner's key is rotated. Return what each
    call answered as [(method, path, caller, status, body)]."""
    answered = []
    for method, pattern, body, expected in cases():
        path = pattern.format(**world)
        for who in CALLERS:
            sent = body(who, world) if callable(body) else body
            status, headers, answer = call(method, path, keys[who], sent)
            assert status == expected[who], f"{method} {path} with {who}: {status} {answer}"
            if status in (401, 403):
                assert answer["status"] == "failed" and answer["msg"], answer
            if status == 401:
                assert headers["WWW-Authenticate"].startswith("Bearer"), headers
            if pattern.endswith("/key") and status == 200:
                keys[OWNER] = answer["data"]["key"]
            answered.append((method, path, who, status, answer))
    return answered


def holds(post_json, owner, third):
    """Two holds of 1 from ``owner`` to ``third``, made by ``post_json(path,
    body)`` (the operator's): their ids as world's "hold" and "hold2"."""
    body = {"sender": owner, "recipient": third, "amount": 1, "hold": True}
    return {name: post_json("/transactions", body)["data"]["id"] for name in ("hold", "hold2")}
