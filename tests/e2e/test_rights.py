"""Keys and rights through HAProxy on each store: every operation with no
key, another user's key, the owner's key and the operator key
(tests/rights.py); rotation on both nodes; ids scoped per key's owner."""
import time

import requests

from tests import rights
from tests.e2e.api import Api, nick, process_all
from tests.e2e.test_operator_commands import bin_
from timpe.auth import client, identity
from timpe.paths import BIN


def _call(url):
    def call(method, path, key, body):
        answer = requests.request(method, url + path, json=body, headers=client.headers(key),
                                  timeout=60)
        content = answer.json() if answer.headers["Content-Type"] == "application/json" \
            else answer.text
        return answer.status_code, answer.headers, content
    return call


def _world(topology):
    api = topology.api
    owner, owner_key = api.register(nick("own"), 100, key=True)
    other, other_key = api.register(nick("oth"), 100, key=True)
    third = api.register(nick("thd"), 0)
    status, body = api.transfer(owner, third, 1)
    assert status == 201, body
    keyring = {rights.NONE: None, rights.OTHER: other_key, rights.OWNER: owner_key,
               rights.OPERATOR: topology.operator_key}
    def post_json(path, sent):
        status, answer = api.call("POST", path, json=sent)
        assert status == 201, answer
        return answer
    made = rights.holds(post_json, owner, third)
    return {"owner": owner, "other": other, "third": third, "txn": body["data"]["id"],
            **made}, keyring


def test_every_route_refuses_what_it_must(topology):
    names, keyring = _world(topology)
    balances = {who: topology.api.balance(names[who]) for who in ("owner", "other", "third")}
    answered = rights.check_every_route(_call(topology.url), keyring, names)
    # The refused transfers moved nothing: only the owner's and the operator's
    # went through (1 each, besides the one queued before).
    moved = [a for a in answered if a[0] == "POST" and a[1].startswith("/transactions/imm")
             and a[3] == 201]
    assert len(moved) == 2
    rights_of = {(m, p, w): s for m, p, w, s, _ in answered}
    assert rights_of[("POST", "/transactions", rights.OTHER)] == 403
    process_all(topology.api)
    after = {who: topology.api.balance(names[who]) for who in ("owner", "other", "third")}
    sent = 1 + 2 + 2  # queued before, and two each of /transactions and /immediately
    # Of the two holds made before (held, so out of the owner's balance), one
    # was posted to the third, the other voided back to the owner.
    assert after == {"owner": balances["owner"] - sent + 1, "other": balances["other"],
                     "third": balances["third"] + sent + 1}


def test_a_rotated_key_stops_working_on_both_nodes(topology):
    uid, old = topology.api.register(nick("rot"), 0, key=True)
    nodes = [Api(url, key=old) for url in topology.node_urls.values()]
    for node in nodes:
        assert node.call("GET", f"/users/{uid}")[0] == 200
    status, body = Api(topology.url, key=old).call("POST", f"/users/{uid}/key")
    assert status == 200
    new = body["data"]["key"]
    time.sleep(identity.TTL + 0.1)
    for url in topology.node_urls.values():
        assert Api(url, key=old).call("GET", f"/users/{uid}")[0] == 401
        assert Api(url, key=new).call("GET", f"/users/{uid}")[0] == 200


def test_the_same_idempotency_key_from_two_owners_makes_two_transfers(topology):
    api = topology.api
    payee = api.register(nick("idp"), 0)
    payers = [api.register(nick("idk"), 10, key=True) for _ in range(2)]
    made = {}
    for (uid, key), url in zip(payers, topology.node_urls.values()):
        for attempt in range(2):  # a retry of one owner stays one transfer
            status, body = Api(url, key=key).call(
                "POST", "/transactions/immediately", headers={"Idempotency-Key": "same"},
                json={"sender": uid, "recipient": payee, "amount": 3})
            assert status == (201 if attempt == 0 else 200), body
            made.setdefault(uid, set()).add(body["data"]["id"])
    assert all(len(ids) == 1 for ids in made.values())
    assert len(set.union(*made.values())) == 2
    assert api.balance(payee) == 6


def test_bin_api_key_rotates_and_revokes(topology):
    uid, key = topology.api.register(nick("cmd"), 0, key=True)
    rotated = bin_("api_key", "rotate", uid, "--config", str(topology.ini))
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith(f"timpe_{uid}_") and new != key
    revoked = bin_("api_key", "revoke", uid, "--config", str(topology.ini))
    assert revoked.returncode == 0, revoked.stderr
    time.sleep(identity.TTL + 0.1)
    for sent in (key, new):
        assert Api(topology.url, key=sent).call("GET", f"/users/{uid}")[0] == 401
    shown = bin_("api_key", "show", "--config", str(topology.ini))
    assert shown.stdout.strip() == topology.operator_key
    assert bin_("api_key", "revoke", "0" * 40, "--config", str(topology.ini)).returncode != 0
    assert (BIN / "api_key").exists()
