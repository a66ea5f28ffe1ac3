"""The app's request class: what features hang on a request is made once per
request, on one class made at configuration (not a new class per request)."""
from pyramid.interfaces import IRequestExtensions, IRequestFactory

from timpe import main
from timpe.store.interfaces import IStore
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService


def _request(wsgi):
    request = wsgi.registry.queryUtility(IRequestFactory).blank("/probe_status")
    request.registry = wsgi.registry
    return request


def test_request_attributes_are_made_once_per_request(store, db_path):
    wsgi = main({}, **{"sqlite.path": db_path})
    # Pyramid would build a class per request for anything registered here.
    assert wsgi.registry.queryUtility(IRequestExtensions) is None
    first, second = _request(wsgi), _request(wsgi)
    assert type(first) is type(second)
    assert first.store is second.store is wsgi.registry.getUtility(IStore)
    assert isinstance(first.users, UserService) and isinstance(first.transactions, TransactionService)
    assert first.transactions is first.transactions     # kept for the request
    assert first.transactions is not second.transactions  # each request its own


def test_each_app_has_its_own_request_class(tmp_path):
    one = main({}, **{"sqlite.path": str(tmp_path / "one.sqlite")})
    two = main({}, **{"sqlite.path": str(tmp_path / "two.sqlite")})
    assert type(_request(one)) is not type(_request(two))
    assert _request(one).store.path != _request(two).store.path
