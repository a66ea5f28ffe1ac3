"""Who may call what: one table, route and method to a rule, enforced by
two view derivers around request validation.

``authenticate`` runs first: it finds the caller (``request.caller``) and
answers 401 to a request without a valid key, before its body is read.
``authorize`` runs once the request is validated, so a rule may look at
the body or the query; a caller without the right gets 403. Neither
writes anything. A route that is not in the table is the operator's: a
new route is closed until its line here says otherwise.
"""
from timpe.auth.identity import OPERATOR as OPERATOR_CALLER
from timpe.errors import Forbidden, Unauthorized


# -- rules: each raises Forbidden (or Unauthorized, for a caller with no key) --

def public(request):
    """No key is looked at (health checks, the spec, the metrics, which
    HAProxy answers to local clients only)."""


def user(request):
    """Any valid key; the view shows only what the caller may see."""


def operator(request):
    if not _caller(request).operator:
        raise Forbidden("only the operator key may do this")


def owner(request):
    """The user the path names, or the operator."""
    caller = _caller(request)
    if not caller.operator and request.matchdict["id"] != caller.user_id:
        raise Forbidden("a key may only act on its own user")


def funding(request):
    """Anyone registers a user with a zero balance; only the operator with money."""
    if request.validated["body"].get("balance", 0) > 0:
        operator(request)


def sender(request):
    """A transfer is sent by the key's user; the operator sends for anyone."""
    caller = _caller(request)
    if not caller.operator and request.validated["body"]["sender"] != caller.user_id:
        raise Forbidden("a key may only send its own user's money: 'sender' must be "
                        f"{caller.user_id}")


def own_listing(request):
    """A user lists the transfers she sent or received, and says which."""
    caller, query = _caller(request), request.validated["query"]
    if not caller.operator and caller.user_id not in (query.get("sender"),
                                                      query.get("recipient")):
        raise Forbidden("a key lists its own user's transfers only: give 'sender' or "
                        f"'recipient' {caller.user_id}")


def transaction_party(request):
    """The transaction's sender or recipient, or the operator."""
    caller = _caller(request)
    if not caller.operator:
        txn = request.transactions.find(request.matchdict["id"])
        if caller.user_id not in (txn["sender"], txn["recipient"]):
            raise Forbidden("a key may only see its own user's transactions")


def transaction_sender(request):
    """The transaction's sender, or the operator (a hold's post and void)."""
    caller = _caller(request)
    if not caller.operator:
        txn = request.transactions.find(request.matchdict["id"])
        if caller.user_id != txn["sender"]:
            raise Forbidden("only the sender's key may do this to a transaction")


def _caller(request):
    caller = request.caller
    if caller is None:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'",
                           invalid=False)
    return caller


#: (route name, method) -> rule.
RIGHTS = {
    ("probe_status", "GET"): public,
    ("probe_store", "GET"): public,
    ("openapi", "GET"): public,
    ("metrics", "GET"): public,
    ("users", "GET"): user,  # the operator gets every user, a user herself
    ("users", "POST"): funding,
    ("users_register", "POST"): funding,
    ("user", "GET"): owner,
    ("user_transactions", "GET"): owner,
    ("user_key", "POST"): owner,
    ("transactions", "GET"): own_listing,
    ("transactions", "POST"): sender,
    ("transactions_immediately", "POST"): sender,
    ("transaction", "GET"): transaction_party,
    ("transaction_post", "POST"): transaction_sender,
    ("transaction_void", "POST"): transaction_sender,
    ("process", "POST"): operator,
    ("transactions_process", "POST"): operator,
}


#: Rules that take a request without a key (a key sent must still be valid).
KEY_OPTIONAL = (funding,)


def rule(route_name, method):
    return RIGHTS.get((route_name, method), operator)


# -- the view derivers ---------------------------------------------------------

def _rules(info):
    """{method: rule} of a view, or None where no rule applies."""
    route_name = info.options.get("route_name")
    if route_name is None or info.exception_only:
        return None
    methods = info.options.get("request_method") or ()
    methods = (methods,) if isinstance(methods, str) else methods
    rules = {m: rule(route_name, m) for m in methods}
    rules["HEAD"] = rules.get("GET", operator)
    return rules


def authenticate(view, info):
    rules = _rules(info)
    if rules is None:
        return view
    auth = info.registry.authenticator

    def authenticated(context, request):
        checked = rules.get(request.method, operator)
        if auth is None:  # auth.enabled = false: the seed's open API
            request.caller = OPERATOR_CALLER
        elif checked is public:
            request.caller = None
        else:
            header = request.headers.get("Authorization")
            optional = not header and checked in KEY_OPTIONAL
            request.caller = None if optional else auth.caller(header)
        return view(context, request)

    return authenticated


def authorize(view, info):
    rules = _rules(info)
    if rules is None:
        return view

    def authorized(context, request):
        rules.get(request.method, operator)(request)
        return view(context, request)

    return authorized

