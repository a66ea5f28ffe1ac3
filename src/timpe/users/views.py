from pyramid.view import view_config

from timpe.money import parse_amount
from timpe.web import respond, success


@view_config(route_name="users", request_method="GET")
def list_users(request):
    query = request.validated["query"]
    if request.caller.operator:
        users, more = request.users.all(limit=query.get("limit"), after=query.get("after"))
    else:  # a user's key lists her alone
        users, more = [request.users.find(request.caller.user_id)], None
    if "limit" not in query:  # the seed's shape: every user (after 'after')
        return success(request, users)
    return respond(request, {"status": "success", "data": users, "next": more})


@view_config(route_name="users", request_method="POST")
@view_config(route_name="users_register", request_method="POST")
def register(request):
    body = request.validated["body"]  # checked against the spec (timpe.validation)
    balance = parse_amount(body.get("balance", 0), "balance", allow_zero=True)
    user = request.users.register(body["nickname"], balance)
    return success(request, user, status=201)


@view_config(route_name="user", request_method="GET")
def show_user(request):
    return success(request, request.users.find(request.matchdict["id"]))


@view_config(route_name="user_transactions", request_method="GET")
def statement(request):
    query = request.validated["query"]
    entries, more = request.statements.page(
        request.matchdict["id"], before=query.get("before"), limit=query["limit"])
    return respond(request, {"status": "success", "data": entries, "next": more})
