from pyramid.view import view_config

from timpe.errors import BadRequest, InsufficientFunds
from timpe.money import parse_amount
from timpe.transactions.protocol import FAILED, RESTING, is_hold
from timpe.transactions.services import transaction_id
from timpe.web import respond, success

# Bodies and query parameters arrive checked against the OpenAPI document
# (timpe.validation): fields, types and limits are stated there once.


def _create(request, create):
    """``create`` (a service method) for the request's body; a replay
    answers 200 instead of 201. A body with ``"hold": true`` makes a hold
    (timpe.transactions.holds) instead, on either route."""
    body = request.validated["body"]
    amount = parse_amount(body["amount"], "amount")
    client_id, key = body.get("id"), request.headers.get("Idempotency-Key")
    options = {}
    if body.get("hold"):
        create = request.transactions.hold
        options["expires_in"] = body.get("expires_in")
    elif "expires_in" in body:
        raise BadRequest("'expires_in' is for a hold: send it with \"hold\": true")
    txn, replayed = create(body["sender"], body["recipient"], amount,
                           txn_id=transaction_id(client_id, key, request.caller.scope),
                           retry_key=key if client_id is not None else None, **options)
    request.response.status = 200 if replayed else 201
    if replayed:
        request.response.headers["Idempotent-Replayed"] = "true"
    return txn


@view_config(route_name="transactions", request_method="POST")
def create(request):
    service = request.transactions
    txn = _create(request, service.create)
    if txn["state"] == FAILED and is_hold(txn):
        raise InsufficientFunds(txn["reason"], data=service.view(txn))
    return success(request, service.view(txn))


@view_config(route_name="transactions_immediately", request_method="POST")
def create_immediately(request):
    service = request.transactions
    txn = _create(request, service.immediately)
    if txn["state"] == FAILED:
        # Recorded, then lost the race for the funds: nothing moved.
        raise InsufficientFunds(txn["reason"], data=service.view(txn))
    if txn["state"] not in RESTING:
        # Recorded, and still pending after as many lost races as one call
        # may meet: /process (or recovery) ends it.
        request.response.status = 202
    return success(request, service.view(txn))


@view_config(route_name="transaction_post", request_method="POST")
def post(request):
    body = request.validated["body"]
    amount = body.get("amount")
    service = request.transactions
    txn = service.post(request.matchdict["id"],
                       None if amount is None else parse_amount(amount, "amount"))
    return success(request, service.view(txn))


@view_config(route_name="transaction_void", request_method="POST")
def void(request):
    service = request.transactions
    return success(request, service.view(service.void(request.matchdict["id"])))


@view_config(route_name="process", request_method="POST")
@view_config(route_name="transactions_process", request_method="POST")
def process(request):
    done, failed, more = request.transactions.process(
        limit=request.validated["query"].get("limit"))
    return respond(request, {
        "status": "success",
        "processed": len(done),
        "more": more,
        "failed_transactions": [{"id": t["id"], "reason": t["reason"]} for t in failed],
    })


@view_config(route_name="transactions", request_method="GET")
def list_transactions(request):
    query = request.validated["query"]
    service = request.transactions
    txns, more = service.latest(state=query.get("state"), limit=query["limit"],
                                before=query.get("before"), sender=query.get("sender"),
                                recipient=query.get("recipient"))
    return respond(request, {"status": "success", "data": [service.view(t) for t in txns],
                             "next": more})


@view_config(route_name="transaction", request_method="GET")
def show(request):
    service = request.transactions
    return success(request, service.view(service.find(request.matchdict["id"])))
