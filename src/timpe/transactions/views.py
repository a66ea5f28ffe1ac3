from pyramid.view import view_config

from timpe.errors import BadRequest, InsufficientFunds
from timpe.money import parse_amount
from timpe.transactions.protocol import FAILED
from timpe.transactions.services import transaction_id
from timpe.web import json_body, success

TRANSFER_FIELDS = ("sender", "recipient", "amount")
MAX_LIST = 1000


def _create(request):
    """Phase 1 for the request's body; a replay answers 200 instead of 201."""
    body = json_body(request, required=TRANSFER_FIELDS, optional=("id",))
    for field in ("sender", "recipient"):
        if not isinstance(body[field], str):
            raise BadRequest(f"'{field}' must be a user id (string)")
    amount = parse_amount(body["amount"], "amount")
    txn_id = transaction_id(body.get("id"), request.headers.get("Idempotency-Key"))
    txn, replayed = request.transactions.create(
        body["sender"], body["recipient"], amount, txn_id=txn_id)
    request.response.status = 200 if replayed else 201
    if replayed:
        request.response.headers["Idempotent-Replayed"] = "true"
    return txn


@view_config(route_name="transactions", request_method="POST")
def create(request):
    return success(request.transactions.view(_create(request)))


@view_config(route_name="transactions_immediately", request_method="POST")
def create_immediately(request):
    service = request.transactions
    # Completing also resumes a replayed transfer whose first node died.
    txn = service.complete(_create(request))
    if txn["state"] == FAILED:
        # Recorded, then lost the race for the funds: nothing moved.
        raise InsufficientFunds(txn["reason"], data=service.view(txn))
    return success(service.view(txn))


@view_config(route_name="process", request_method="POST")
@view_config(route_name="transactions_process", request_method="POST")
def process(request):
    limit = _int_param(request, "limit", None)
    done, failed = request.transactions.process(limit=limit)
    return {
        "status": "success",
        "processed": len(done),
        "failed_transactions": [{"id": t["id"], "reason": t["reason"]} for t in failed],
    }


@view_config(route_name="transactions", request_method="GET")
def list_transactions(request):
    limit = _int_param(request, "limit", 100)
    service = request.transactions
    txns = service.latest(state=request.params.get("state"), limit=limit)
    return success([service.view(t) for t in txns])


@view_config(route_name="transaction", request_method="GET")
def show(request):
    service = request.transactions
    return success(service.view(service.find(request.matchdict["id"])))


def _int_param(request, name, default):
    raw = request.params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST * 100:
        raise BadRequest(f"'{name}' must be a whole number from 1 to {MAX_LIST * 100}")
    return int(raw)
