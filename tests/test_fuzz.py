"""Property-based fuzzing of the running API against its own OpenAPI document.

Schemathesis generates requests for every operation from /openapi.json, both
fitting the spec (positive) and breaking it (negative), and calls the WSGI app
in-process. Whatever it sends:
* no 5xx; status, content type and body are the ones the spec documents;
* data the spec forbids is refused with a 4xx;
* every error is JSON {"status": "failed", "msg": "..."};
* a refused request (4xx) writes nothing (a 422 from /transactions/immediately
  that reports a recorded transfer as failed changes that transfer only).

Bounded and derandomized for the suite (about 10 s); for a longer, random run:
TIMPE_FUZZ_EXAMPLES=500 TIMPE_FUZZ_RANDOM=1 pytest tests/test_fuzz.py
"""
import json
import os
import urllib.parse

import pytest
import schemathesis
import simplejson
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection
from webtest import TestApp

from tests.conftest import snapshot
from tests.spec import app_settings, check_response, operator_key, sends
from timpe import main
from timpe.auth import client
from timpe.openapi import SPEC
from timpe.store.sqlite import SQLiteStore

MAX_EXAMPLES = int(os.environ.get("TIMPE_FUZZ_EXAMPLES", "100"))
# Status, content type and body are checked by tests/spec.py against the
# operation Pyramid really dispatched to: GET /users/{id} with id "register"
# is GET /users/register, a 405, which schemathesis' own check would blame on
# /users/{id}. (It also checks amounts exactly, as Decimals.)
CHECKS = [not_a_server_error, negative_data_rejection]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app and store for the whole run: state grows as the fuzzer goes."""
    path = str(tmp_path_factory.mktemp("fuzz") / "timpe.sqlite")
    store = SQLiteStore(path)
    store.setup()
    wsgi = main({}, **app_settings(path))
    client = TestApp(wsgi, extra_environ=sends(operator_key(wsgi)))
    users = [client.post_json("/users", {"nickname": name, "balance": 1000}).json["data"]["id"]
             for name in ("ann", "bob")]
    yield store, wsgi, users
    store.close()


# Loaded at import, as the app serves it (Decimal limits rendered as JSON
# numbers): pytest 9 breaks schemathesis' fixture-based (lazy) loader.
schema = schemathesis.openapi.from_dict(json.loads(simplejson.dumps(SPEC, use_decimal=True)))
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES, deterministic=not os.environ.get("TIMPE_FUZZ_RANDOM"),
    database="none",
)


def _known_users(case, users):
    """Point some generated user ids at real users, so transfers get past the
    404 and reach the ledger. Strings stay strings: a case keeps its validity."""
    if not isinstance(case.body, dict):
        return
    for field in ("sender", "recipient"):
        value = case.body.get(field)
        if isinstance(value, str):
            pick = len(value) % (len(users) + 1)
            if pick < len(users):
                case.body[field] = users[pick]


def _path(response):
    """The path as sent, percent-decoded as the app saw it (WSGI's latin-1)."""
    return urllib.parse.unquote(urllib.parse.urlsplit(response.request.url).path,
                                encoding="latin-1")


@schema.parametrize()
def test_api_under_fuzzing(case, world):
    store, wsgi, users = world
    _known_users(case, users)
    before = snapshot(store)
    if "Authorization" in (case.headers or {}):  # a generated token: the node's real key
        case.headers["Authorization"] = client.headers(operator_key(wsgi))["Authorization"]
    response = case.call(app=wsgi)
    case.validate_response(response, checks=CHECKS)
    check_response(wsgi.registry, case.method, _path(response), response.status_code,
                   response.headers["content-type"][0].split(";")[0], response.content)
    if response.status_code >= 400:
        body = response.json()
        assert body["status"] == "failed" and isinstance(body["msg"], str) and body["msg"]
    if 400 <= response.status_code < 500:
        after = snapshot(store)
        if response.status_code == 422 and "data" in body:
            # Not a rejection but a transfer's outcome: /immediately recorded it
            # (or resumed the one a retry names) and it failed. Only that
            # transaction's row may change, to failed; no money moved.
            assert body["data"]["state"] == "failed"
            assert (after["users"], after["user_transactions"]) == \
                (before["users"], before["user_transactions"])
            changed = set(after["transactions"]) ^ set(before["transactions"])
            assert {row[0] for row in changed} <= {body["data"]["id"]}
        else:
            assert after == before, f"{case.method} {case.path} {response.status_code} wrote"
