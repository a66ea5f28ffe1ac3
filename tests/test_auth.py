"""Keys and rights, in-process on SQLite (tests/e2e/test_rights.py runs the
same table of calls through HAProxy on each store)."""
import hashlib
import os
import stat
import time

import pytest

from tests import rights
from tests.conftest import snapshot
from tests.spec import SpecTestApp, app_settings, operator_key, sends
from timpe import main
from timpe.auth import identity, keys
from timpe.auth import rights as authz
from timpe.errors import Forbidden, NotFound
from timpe.openapi import SPEC
from timpe.store.schema import USERS


@pytest.fixture
def world(app):
    owner = app.post_json("/users", {"nickname": "ann", "balance": 100}).json["data"]
    other = app.post_json("/users", {"nickname": "bob", "balance": 100}).json["data"]
    third = app.post_json("/users", {"nickname": "dan"}).json["data"]["id"]
    txn = app.post_json("/transactions", {"sender": owner["id"], "recipient": third,
                                          "amount": 1}).json["data"]["id"]
    keyring = {rights.NONE: None, rights.OTHER: other["key"], rights.OWNER: owner["key"],
               rights.OPERATOR: operator_key(app.app)}
    made = rights.holds(lambda path, body: app.post_json(path, body).json, owner["id"], third)
    return {"owner": owner["id"], "other": other["id"], "third": third, "txn": txn,
            **made}, keyring


def call(app):
    def call(method, path, key, body):
        kwargs = {"extra_environ": sends(key), "expect_errors": True}
        if body is not None:
            res = app.post_json(path, body, **kwargs)
        else:
            res = getattr(app, method.lower())(path, **kwargs)
        answer = res.json if res.content_type == "application/json" else res.text
        return res.status_int, res.headers, answer
    return call


def test_every_operation_is_in_the_table_of_calls():
    documented = {(method.upper(), path) for path, item in SPEC["paths"].items()
                  for method in item if method != "parameters"}
    assert rights.operations() == documented


def test_every_route_refuses_what_it_must_and_a_refusal_writes_nothing(app, store, world):
    names, keyring = world
    before = snapshot(store)
    refused = []

    def refusing(method, path, key, body):
        nonlocal before
        answer = call(app)(method, path, key, body)
        if answer[0] in (401, 403):
            refused.append(path)
            assert snapshot(store) == before, f"{method} {path} {answer[0]} wrote"
        before = snapshot(store)
        return answer

    answered = rights.check_every_route(refusing, keyring, names)
    assert len(refused) >= 30
    listed = {who: body["data"] for _, path, who, status, body in answered
              if path == "/users" and status == 200 and isinstance(body, dict)
              and isinstance(body.get("data"), list)}
    assert [u["id"] for u in listed[rights.OWNER]] == [names["owner"]]  # herself alone
    assert [u["id"] for u in listed[rights.OTHER]] == [names["other"]]
    assert len(listed[rights.OPERATOR]) > 2  # the seed's whole list


def test_a_user_lists_her_own_transfers(app, world):
    names, keyring = world
    res = app.get(f"/transactions?sender={names['owner']}",
                  extra_environ=sends(keyring[rights.OWNER]))
    assert sorted(t["id"] for t in res.json["data"]) == sorted(
        [names["txn"], names["hold"], names["hold2"]])
    res = app.get(f"/transactions?sender={names['other']}",
                  extra_environ=sends(keyring[rights.OTHER]))
    assert res.json["data"] == []


def test_registration_answers_the_key_once_and_stores_only_its_hash(app, store):
    data = app.post_json("/users", {"nickname": "cat"}, extra_environ=sends(None)).json["data"]
    owner, secret = data["key"].split("_", 2)[1:]
    assert owner == data["id"] and len(secret) == 43  # 256 bits, base64url
    row = store.get(USERS.name, (data["id"],))
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(store.sql("SELECT * FROM users")[1])
    assert "key" not in app.get(f"/users/{data['id']}").json["data"]
    app.get(f"/users/{data['id']}", extra_environ=sends(data["key"]), status=200)


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer timpe_operator_" + "A" * 43,
    "Bearer timpe_" + "0" * 40 + "_" + "A" * 43,
])
def test_a_bad_or_unknown_key_is_401_with_a_challenge(app, header):
    res = app.get("/users", headers={"Authorization": header}, status=401)
    assert res.headers["WWW-Authenticate"] == 'Bearer realm="TiMPE", error="invalid_token"'
    assert res.json["status"] == "failed"
    # Registration takes no key, but a key sent must be valid.
    app.post_json("/users", {"nickname": "eve"}, headers={"Authorization": header}, status=401)


def test_no_key_is_401_with_a_plain_challenge(app):
    res = app.get("/users", extra_environ=sends(None), status=401)
    assert res.headers["WWW-Authenticate"] == 'Bearer realm="TiMPE"'


def test_a_rotated_key_stops_working_within_the_ttl_on_every_node(app, db_path, world):
    names, keyring = world
    other_node = SpecTestApp(main({}, **app_settings(db_path)))
    old = keyring[rights.OWNER]
    for node in (app, other_node):  # both have verified the old key
        node.get(f"/users/{names['owner']}", extra_environ=sends(old), status=200)
    new = app.post_json(f"/users/{names['owner']}/key", {},
                        extra_environ=sends(old)).json["data"]["key"]
    assert new != old
    time.sleep(identity.TTL + 0.05)
    for node in (app, other_node):
        node.get(f"/users/{names['owner']}", extra_environ=sends(old), status=401)
        node.get(f"/users/{names['owner']}", extra_environ=sends(new), status=200)


def test_the_operator_key_is_read_again_when_its_file_changes(app):
    path = app.app.registry.settings["auth.operator_key_file"]
    old = keys.read_operator_key(path)
    new = keys.rotate_operator_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    time.sleep(identity.TTL + 0.05)
    app.post_json("/process", {}, extra_environ=sends(old), status=401)
    app.post_json("/process", {}, extra_environ=sends(new), status=200)


def test_a_revoked_key_is_refused_and_the_user_keeps_her_money(app, store, world):
    names, keyring = world
    from timpe.users.services import UserService
    before = app.get(f"/users/{names['owner']}").json["data"]
    UserService(store).revoke_key(names["owner"])
    time.sleep(identity.TTL + 0.05)
    app.get(f"/users/{names['owner']}", extra_environ=sends(keyring[rights.OWNER]), status=401)
    assert app.get(f"/users/{names['owner']}").json["data"] == before


def test_the_same_idempotency_key_from_two_owners_makes_two_transfers(app, world):
    names, keyring = world
    third = app.post_json("/users", {"nickname": "cy", "balance": 10}).json["data"]
    made = []
    for sender, key in ((names["owner"], keyring[rights.OWNER]), (third["id"], third["key"])):
        res = app.post_json("/transactions/immediately",
                            {"sender": sender, "recipient": names["other"], "amount": 2},
                            headers={"Idempotency-Key": "order-1"}, extra_environ=sends(key),
                            status=201)
        made.append(res.json["data"]["id"])
    assert made[0] != made[1]
    assert made[0] == f"{names['owner']}.key.{hashlib.sha1(b'order-1').hexdigest()}"
    # From one owner it stays a retry.
    again = app.post_json("/transactions/immediately",
                          {"sender": names["owner"], "recipient": names["other"], "amount": 2},
                          headers={"Idempotency-Key": "order-1"},
                          extra_environ=sends(keyring[rights.OWNER]), status=200)
    assert again.json["data"]["id"] == made[0]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_client_id_cannot_take_another_owners_or_a_keys_transfer(app, world):
    names, keyring = world
    body = {"sender": names["owner"], "recipient": names["other"], "amount": 1}
    keyed = app.post_json("/transactions", body, headers={"Idempotency-Key": "k"},
                          extra_environ=sends(keyring[rights.OWNER])).json["data"]["id"]
    # The operator's client id that spells the key's id, and the user's own id
    # that spells it without its scope: each is a transfer of its own.
    for key, client_id in ((keyring[rights.OPERATOR], keyed.split(".", 1)[1].replace(".", "-")),
                           (keyring[rights.OWNER], "key-" + keyed.rsplit(".", 1)[1])):
        made = app.post_json("/transactions", {**body, "id": client_id},
                             extra_environ=sends(key), status=201).json["data"]["id"]
        assert made != keyed
    # A user's ids are hers: the operator's id "x" and ann's "x" are two transfers.
    ops = app.post_json("/transactions", {**body, "id": "x"}, status=201).json["data"]["id"]
    ann = app.post_json("/transactions", {**body, "id": "x"},
                        extra_environ=sends(keyring[rights.OWNER]), status=201).json["data"]["id"]
    assert (ops, ann) == ("x", f"{names['owner']}.x")


def test_auth_disabled_is_the_seeds_open_api(db_path, store):
    app = SpecTestApp(main({}, **app_settings(db_path, **{"auth.enabled": "false"})),
                      extra_environ=sends(None))
    uid = app.post_json("/users", {"nickname": "ann", "balance": 5}, status=201).json["data"]["id"]
    other = app.post_json("/users", {"nickname": "bob"}).json["data"]["id"]
    app.post_json("/transactions/immediately", {"sender": uid, "recipient": other, "amount": 1},
                  status=201)
    app.post_json("/process", {}, status=200)
    assert len(app.get("/users").json["data"]) == 2


def test_a_missing_operator_key_file_lets_no_one_act_as_operator(db_path, store, tmp_path):
    settings = app_settings(db_path, **{"auth.operator_key_file": str(tmp_path / "none")})
    app = SpecTestApp(main({}, **app_settings(db_path)))
    node = SpecTestApp(main({}, **settings), extra_environ=sends(operator_key(app.app)))
    node.post_json("/process", {}, status=401)


@pytest.mark.parametrize("who, allowed", [(rights.OWNER, True), (rights.OPERATOR, True),
                                          (rights.OTHER, False)])
def test_the_rule_for_what_only_a_transfers_sender_may_do(app, world, who, allowed):
    """transaction_sender (a hold's post and void), on a transfer of any kind."""
    from pyramid.interfaces import IRequestFactory

    names, keyring = world
    registry = app.app.registry
    request = registry.queryUtility(IRequestFactory).blank(f"/transactions/{names['txn']}")
    request.registry, request.matchdict = registry, {"id": names["txn"]}
    request.caller = registry.authenticator.caller(f"Bearer {keyring[who]}")
    if allowed:
        assert authz.transaction_sender(request) is None
    else:
        with pytest.raises(Forbidden):
            authz.transaction_sender(request)
    request.matchdict = {"id": "no-such-transfer"}
    if who != rights.OPERATOR:
        with pytest.raises(NotFound):
            authz.transaction_sender(request)
