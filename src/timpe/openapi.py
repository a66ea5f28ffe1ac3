"""The API's OpenAPI 3.1 document: the one description of every route.

Built here from the rules' own constants (money, nicknames, list limits), so
no limit is written twice; served at ``GET /openapi.json``; compiled once per
operation into the request validators of ``timpe.validation``.
"""
from pyramid.view import view_config

from timpe.auth.keys import KEY
from timpe.money import CENT, MAX_AMOUNT, SCALE
from timpe.transactions.holds import EXPIRES_IN, MAX_EXPIRES_IN
from timpe.transactions.protocol import STATES
from timpe.transactions.services import (
    CLIENT_ID, DEFAULT_LIMIT, IDEMPOTENCY_KEY, MAX_LIMIT, PROCESS_SECONDS,
)
from timpe.users.nicknames import MAX_NICKNAME, NICKNAME_RULE
from timpe.users.statements import DEFAULT_PAGE, KINDS, MAX_PAGE
from timpe.web import MAX_BODY, respond




def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _amount(minimum_key, what):
    # Request amounts are exact: multipleOf is checked on Decimals, never floats.
    return {
        "type": "number", minimum_key: 0, "maximum": MAX_AMOUNT, "multipleOf": CENT,
        "description": f"a number {'>' if minimum_key == 'exclusiveMinimum' else '>='} 0 "
                       f"({what}), at most {SCALE} decimal places, at most {MAX_AMOUNT}",
    }


SCHEMAS = {
    # No pattern: RFC 8265's rules (Unicode properties, width mapping, NFC,
    # the bidi rule) are no regex, least of all one every ECMA-262 engine
    # reads alike; the service enforces them and says why (400).
    "Nickname": {
        "type": "string", "minLength": 1, "maxLength": MAX_NICKNAME,
        "description": NICKNAME_RULE,
    },
    "UserId": {"type": "string", "description": "a user id (string)"},
    "Amount": _amount("exclusiveMinimum", "the amount to transfer"),
    "InitialBalance": _amount("minimum", "the initial balance"),
    "ClientTransactionId": {
        "type": "string", "pattern": f"^{CLIENT_ID.pattern}$",
        # "not" and the description's end: below, once PATHS exist.
    },
    "NewUser": {
        "type": "object", "additionalProperties": False, "required": ["nickname"],
        "properties": {"nickname": ref("Nickname"), "balance": ref("InitialBalance")},
    },
    "NewTransaction": {
        "type": "object", "additionalProperties": False,
        "required": ["sender", "recipient", "amount"],
        "properties": {
            "sender": ref("UserId"), "recipient": ref("UserId"), "amount": ref("Amount"),
            "id": ref("ClientTransactionId"),
            "hold": {"type": "boolean", "description":
                     "true: reserve the amount on the sender's ledger at once (state "
                     "'held', or 422 for want of funds) until a post or a void "
                     "decides, or it expires"},
            "expires_in": {"type": "integer", "minimum": 1, "maximum": MAX_EXPIRES_IN,
                           "description":
                           "with hold: seconds until the background passes void the hold "
                           f"(default holds.expires_in, {EXPIRES_IN} in etc/app.ini; at "
                           f"most holds.max_expires_in, which may lower the maximum)"},
        },
    },
    "Post": {
        "type": "object", "additionalProperties": False,
        "properties": {"amount": {**ref("Amount"), "description":
                                  "at most the amount held (default: all of it); the "
                                  "rest returns to the sender"}},
    },
    # A void says nothing more: a body, if sent, is an empty object, so that
    # a client's mistake is refused, not taken for a void.
    "Void": {"type": "object", "additionalProperties": False, "properties": {}},
    # Responses carry amounts as exact JSON numbers; clients parse them as they
    # like (multipleOf is left out here: a float parser could not check it).
    # No maximum: MAX_AMOUNT bounds what one request may carry, and a balance
    # sums many of them.
    "Money": {"type": "number", "minimum": 0},
    "Entry": {
        "type": "object",
        "required": ["seq", "kind", "amount", "balance", "transaction_id", "counterparty",
                     "state", "timestamp"],
        "properties": {
            "seq": {"type": "integer", "minimum": 0,
                    "description": "the ledger row that carries the entry, from 0 (a row "
                                   "may carry the entries of many transfers)"},
            "kind": {"enum": list(KINDS), "description":
                     "deposit (the initial balance, seq 0), debit or credit; a hold's: "
                     "hold (the amount leaves the balance for 'held'), then void (it "
                     "comes back) or post (it leaves 'held'; what was not posted comes "
                     "back, and the recipient's credit is what was)"},
            "amount": {"type": "number", "description": "signed: a debit is negative"},
            "balance": ref("Money"),
            "held": {**ref("Money"), "description": "the user's open holds after the entry"},
            "transaction_id": {"type": ["string", "null"], "description": "null for the deposit"},
            "counterparty": {"type": ["string", "null"], "description":
                             "the other user's id: the recipient of a debit, the sender "
                             "of a credit; null for the deposit"},
            "state": {"enum": [*STATES, None], "description":
                      "the transaction's state; a debit shows before its credit is written"},
            "timestamp": {"type": "integer", "description": "written, ms since the epoch"},
        },
    },
    "User": {
        "type": "object", "required": ["id", "nickname", "balance", "held"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{40}$",
                   "description": "SHA-1 hex digest of the UTF-8 nickname as prepared "
                                  "(RFC 8265)"},
            "nickname": {"type": "string"},
            "balance": {**ref("Money"), "description": "what the user can spend"},
            "held": {**ref("Money"), "description":
                     "the sum of the user's open holds: reserved, no longer spendable"},
        },
    },
    "UserKey": {
        "type": "object", "required": ["id", "key"],
        "properties": {"id": {"type": "string"}, "key": ref("ApiKey")},
    },
    "ApiKey": {
        "type": "string", "pattern": f"^{KEY.pattern}$",
        "description": "the user's API key, shown once: send it as "
                       "'Authorization: Bearer <key>'",
    },
    "Transaction": {
        "type": "object",
        "required": ["id", "sender", "recipient", "amount", "state", "timestamp", "updated"],
        "properties": {
            "id": {"type": "string", "description":
                   "the client's id; else 'key.' and the SHA-1 hex of the Idempotency-Key; "
                   "else a UUIDv7 in 32 hex digits, drawn by the service. A user's own "
                   "ids (not the operator's) are prefixed with her user id and '.'"},
            "sender": {"type": "string"},
            "recipient": {"type": "string"}, "amount": ref("Money"),
            "state": {"enum": list(STATES)},
            "timestamp": {"type": "integer", "description": "created, ms since the epoch"},
            "updated": {"type": "integer", "description": "last change, ms since the epoch"},
            "reason": {"type": "string", "description":
                       "why it failed, or 'expired': why a hold was voided"},
            "expires": {"type": "integer", "description":
                        "a hold's: when it expires, ms since the epoch"},
            "posted": {**ref("Money"), "description": "a posted hold's: the amount posted"},
        },
    },
    "Error": {
        "type": "object", "required": ["status", "msg"],
        "properties": {
            "status": {"const": "failed"}, "msg": {"type": "string", "minLength": 1},
            "data": ref("Transaction"),
        },
    },
    "ProcessResult": {
        "type": "object", "required": ["status", "processed", "failed_transactions", "more"],
        "properties": {
            "status": {"const": "success"},
            "processed": {"type": "integer", "minimum": 0},
            "more": {"type": "boolean", "description":
                     "the call stopped at its limit or its time budget: call again"},
            "failed_transactions": {"type": "array", "items": {
                "type": "object", "required": ["id", "reason"],
                "properties": {"id": {"type": "string"}, "reason": {"type": "string"}},
            }},
        },
    },
}


SCHEMAS["NewUserKey"] = {**SCHEMAS["User"], "required": [*SCHEMAS["User"]["required"], "key"],
                         "properties": {**SCHEMAS["User"]["properties"], "key": ref("ApiKey")}}


def _success(data_schema):
    return {"type": "object", "required": ["status", "data"],
            "properties": {"status": {"const": "success"}, "data": data_schema}}


def _page(items, cursor, required=True):
    """A page of a listing: ``next`` is the ``cursor`` of the next page, null on the last."""
    return {"type": "object", "required": ["status", "data"] + (["next"] if required else []),
            "properties": {"status": {"const": "success"},
                           "data": {"type": "array", "items": items},
                           "next": {**cursor, "type": [cursor["type"], "null"]}}}


def _json(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description):
    return _json(description, ref("Error"))


ERRORS = {
    "400": _error("bad input: malformed JSON, a key given twice in one object, a "
                  "missing, unknown or invalid field, query parameter or header, a "
                  "nickname that is no RFC 8265 username, sender equal to recipient, "
                  "or a URL that is not valid UTF-8"),
    "404": _error("unknown id (a listing's cursor included)"),
    "409": _error("conflict: the nickname (or one it looks alike, once prepared per "
                  "RFC 8265) is taken, or the transaction id or Idempotency-Key was used "
                  "with another body"),
    "409-decided": _error("conflict: the transaction was decided otherwise (a post meets "
                          "a void, a void a post, a post another amount), the hold "
                          "expired, failed or is no hold, or a transfer left 'initial'; "
                          "nothing moved"),
    "413": _error(f"request body larger than {MAX_BODY} bytes"),
    "422": _error("insufficient funds (the failed transaction is in 'data')"),
    "503": _error("the store did not answer; the request may be retried"),
    "401": {**_error("no API key, or one that is unknown or revoked"),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"},
                                             "description": "Bearer (RFC 6750)"}}},
    "403": _error("the key is valid but has not the right (another user's data, money or "
                  "transfer, or what only the operator may do)"),
    "414": _error("request URI longer than 4,000 bytes (HAProxy)"),
    "429": {**_error("too many requests from this address or with this key (HAProxy): "
                     "retry after the seconds Retry-After gives"),
            "headers": {"Retry-After": {"schema": {"type": "string"}}}},
}


def _errors(*codes):
    """These errors, and what HAProxy may answer any request: 414 (a URI
    too long for the nodes) and 429 (over the rate limits)."""
    return {code: ERRORS[code] for code in (*codes, "414", "429")}


#: Who may call an operation (timpe.auth.rights decides): a key, or none.
BEARER = [{"bearer": []}]
OPTIONAL_KEY = [{}, {"bearer": []}]
NO_KEY = []


def _body(name):
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
SEQ = {"type": "integer", "minimum": 0, "maximum": 2 ** 63 - 1}
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY.pattern}$",
               "description": "1-200 printable ASCII characters, the first not a space"},
    "description": "Makes the request safe to retry: a retry with the same key returns "
                   "the first outcome, the same key with another body is a 409. With a "
                   "body 'id' too, the id names the transaction and a retry must repeat "
                   "both",
}


def _links(**operations):
    """OpenAPI links: the ``id`` of the answer's ``data`` goes to these operations."""
    return {name: {"operationId": op, "parameters": {"id": "$response.body#/data/id"}}
            for name, op in operations.items()}


def _register(alias=""):
    return {
        "operationId": "register" + alias, "summary": "Register a user",
        "requestBody": _body("NewUser"),
        "security": OPTIONAL_KEY,
        "description": "Without a key, or with a user's, the balance must be 0; only the "
                       "operator key registers a user with money. The answer holds the new "
                       "user's API key, which no later answer shows.",
        "responses": {"201": {**_json("registered", _success(ref("NewUserKey"))),
                              "links": _links(user="show_user", statement="statement")},
                      **_errors("400", "401", "403", "409", "413", "503")},
    }


def _transfer(immediately=False):
    summary = ("Record a transfer and run it to the end at once (phases 1 and 2)"
               if immediately else "Record a transfer as 'initial' (phase 1)")
    errors = _errors("400", "401", "403", "404", "409", "413", "422", "503")
    accepted = {}
    if immediately:
        accepted["202"] = _json("recorded, and not yet at its end after as many lost races "
                                "as one request may meet: /process ends it",
                                _success(ref("Transaction")))
    else:
        errors["422"] = _error("insufficient funds")
    return {
        "operationId": "transfer_immediately" if immediately else "transfer",
        "summary": summary,
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": _body("NewTransaction"),
        "responses": {
            "201": {**_json("recorded" + (" and finished" if immediately else "") +
                            "; with \"hold\": true, recorded and held",
                            _success(ref("Transaction"))),
                    "links": _links(transaction="show_transaction")},
            "200": {**_json("a retry (same id or Idempotency-Key, same body): the first "
                            "attempt's transaction", _success(ref("Transaction"))),
                    "headers": {"Idempotent-Replayed": {"schema": {"const": "true"}}}},
            **accepted,
            **errors,
        },
    }


def _process(alias=""):
    return {
        "operationId": "process" + alias,
        "summary": "Phase 2 for pending transactions, oldest first, for about "
                   f"{PROCESS_SECONDS} s at most",
        "parameters": [{"name": "limit", "in": "query", "required": False, "schema": LIMIT,
                        "description": "at most this many transactions (default: all)"}],
        "description": "The operator key only.",
        "responses": {"200": _json("processed", ref("ProcessResult")),
                      **_errors("400", "401", "403", "503")},
    }


PATHS = {
    "/users": {
        "get": {"operationId": "list_users",
                "summary": "Every user with balance, by nickname; pages with 'limit'",
                "parameters": [
                    {"name": "after", "in": "query", "required": False, "schema": ref("UserId"),
                     "description": "only users listed after this one: the previous page's "
                                    "'next'"},
                    {"name": "limit", "in": "query", "required": False, "schema": LIMIT,
                     "description": "a page of at most this many, with 'next' (default: "
                                    "every user, in the seed's shape)"},
                ],
                "responses": {"200": _json("users; 'next' only with 'limit'", _page(
                    ref("User"), {"type": "string", "description": "a user id"},
                    required=False)), **_errors("400", "401", "404", "503")}},
        "post": _register(),
    },
    "/users/register": {"post": _register("_alias")},
    "/users/{id}": {
        "parameters": [ID_PARAM],
        "get": {"operationId": "show_user", "summary": "One user with balance",
                "responses": {"200": _json("the user", _success(ref("User"))),
                              **_errors("400", "401", "403", "404", "503")}},
    },
    "/users/{id}/key": {
        "parameters": [ID_PARAM],
        "post": {"operationId": "rotate_key",
                 "summary": "A new API key for the user; the old one stops working within "
                            "a second or two on every node",
                 "responses": {"200": _json("the new key, shown this once",
                                            _success(ref("UserKey"))),
                               **_errors("401", "403", "404", "503")}},
    },
    "/users/{id}/transactions": {
        "parameters": [ID_PARAM],
        "get": {
            "operationId": "statement",
            "summary": "The user's account statement: ledger entries, newest first",
            "parameters": [
                {"name": "before", "in": "query", "required": False, "schema": SEQ,
                 "description": "only entries placed below this position (a row's seq "
                                "and its legs): the previous page's 'next'"},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE,
                            "default": DEFAULT_PAGE}},
            ],
            "responses": {"200": _json("a page of the statement", _page(ref("Entry"), SEQ)),
                          **_errors("400", "401", "403", "404", "503")},
        },
    },
    "/transactions": {
        "get": {
            "operationId": "list_transactions", "summary": "Newest transactions first",
            "parameters": [
                {"name": "state", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(STATES)}},
                {"name": "sender", "in": "query", "required": False, "schema": ref("UserId"),
                 "description": "only transfers from this user"},
                {"name": "recipient", "in": "query", "required": False, "schema": ref("UserId"),
                 "description": "only transfers to this user"},
                {"name": "before", "in": "query", "required": False,
                 "schema": {"type": "string", "description": "a transaction id"},
                 "description": "only transactions listed after this one: the previous "
                                "page's 'next'"},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {**LIMIT, "default": DEFAULT_LIMIT}},
            ],
            "responses": {"200": _json("a page of transactions", _page(
                ref("Transaction"), {"type": "string", "description": "a transaction id"})),
                **_errors("400", "401", "403", "404", "503")},
        },
        "post": _transfer(),
    },
    "/transactions/immediately": {"post": _transfer(immediately=True)},
    "/transactions/process": {"post": _process("_alias")},
    "/transactions/{id}": {
        "parameters": [ID_PARAM],
        "get": {"operationId": "show_transaction", "summary": "One transaction, with its state",
                "responses": {"200": _json("the transaction", _success(ref("Transaction"))),
                              **_errors("400", "401", "403", "404", "503")}},
    },
    "/transactions/{id}/post": {
        "parameters": [ID_PARAM],
        "post": {
            "operationId": "post_hold",
            "summary": "Post a hold: move the amount held (or part of it) to the recipient",
            "description": "Decided once with the void (the other gets 409); a retry "
                           "with the same amount answers the same.",
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": ref("Post")}}},
            "responses": {"200": _json("posted: the transfer is finished",
                                       _success(ref("Transaction"))),
                          **_errors("400", "401", "403", "404", "413", "503"),
                          "409": ERRORS["409-decided"]},
        },
    },
    "/transactions/{id}/void": {
        "parameters": [ID_PARAM],
        "post": {
            "operationId": "void",
            "summary": "Void a hold (the amount held returns to the sender), or cancel "
                       "an 'initial' transfer before phase 2",
            "description": "Decided once with the post (the other gets 409); a retry "
                           "answers the same.",
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": ref("Void")}}},
            "responses": {"200": _json("voided", _success(ref("Transaction"))),
                          **_errors("400", "401", "403", "404", "413", "503"),
                          "409": ERRORS["409-decided"]},
        },
    },
    "/process": {"post": _process()},
    "/probe_status": {
        "get": {"operationId": "probe_status", "summary": "Health check for HAProxy",
                "security": NO_KEY,
                "responses": {"200": {"description": "the node is up", "content": {
                    "text/plain": {"schema": {"const": "OK"}}}}, **_errors()}},
    },
    "/probe_store": {
        "get": {"operationId": "probe_store", "summary": "Health check for HAProxy of a node "
                "that takes the writes of ledger legs: the node reaches its store",
                "security": NO_KEY,
                "responses": {"200": {"description": "the node read from its store", "content": {
                    "text/plain": {"schema": {"const": "OK"}}}}, **_errors("503")}},
    },
    "/metrics": {
        "get": {"operationId": "metrics", "summary": "The node's metrics for Prometheus "
                "(docs/metrics.rst): scrape each node, not HAProxy",
                "security": NO_KEY,
                "responses": {
                    "200": {"description": "Prometheus text format 0.0.4", "content": {
                        "text/plain": {"schema": {"type": "string"}}}},
                    "403": _error("through HAProxy, to a client that is not local"),
                    "404": _error("metrics are turned off on this node (metrics.enabled)"),
                    **_errors(),
                }},
    },
    "/openapi.json": {
        "get": {"operationId": "openapi", "summary": "This document", "security": NO_KEY,
                "responses": {"200": _json("OpenAPI 3.1 document", {"type": "object"}),
                              **_errors()}},
    },
}



def literal_children(prefix):
    """Segments under ``prefix`` that literal routes take (/transactions/process):
    Pyramid dispatches those before ``prefix{id}``, so they can never be ids."""
    return sorted(path[len(prefix):] for path in PATHS if path.startswith(prefix)
                  and path != prefix and not set("{/") & set(path[len(prefix):]))


# A client-chosen id "process" would be stored, then unreachable at
# GET /transactions/process: reserve the literal segments.
_RESERVED = literal_children("/transactions/")
SCHEMAS["ClientTransactionId"].update({
    "not": {"enum": _RESERVED},
    "description": "a transaction id of 1-64 characters from A-Z a-z 0-9 _ -, but not "
                   f"{' or '.join(_RESERVED)}; a retry with the same id returns the first "
                   "outcome (with an Idempotency-Key too, a retry repeats both)",
})


SPEC = {
    "openapi": "3.1.0",
    "info": {
        "title": "TiMPE",
        "version": "1.0.0",
        "description": (
            "User-to-user transfers on a shared-nothing store. JSON in, JSON out: every "
            "success carries \"status\": \"success\"; every error \"status\": \"failed\" "
            "and a readable \"msg\". A rejected request writes nothing. Request bodies "
            f"are at most {MAX_BODY} bytes; unknown fields are rejected. Every request "
            "but the health check, the metrics, this document and a registration "
            "without money sends an API key: 'Authorization: Bearer <key>'. A user's key "
            "acts on her own user, money and transfers; the operator key on all."
        ),
    },
    "security": BEARER,
    "paths": PATHS,
    "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "an API key: timpe_<user id>_<secret>, or the operator's, "
                       "timpe_operator_<secret>"}}},
}


@view_config(route_name="openapi", request_method="GET")
def openapi_json(request):
    return respond(request, SPEC)


def includeme(config):
    config.add_route("openapi", "/openapi.json")
    config.scan("timpe.openapi")
