"""Checks a response against the OpenAPI document: status, content type, body.

``SpecTestApp`` runs the check on every response of the API tests, so each
call they make is also a test that the spec describes the implementation.
"""
from decimal import Decimal
from pathlib import Path

import simplejson
from pyramid.interfaces import IRoutesMapper
from webtest import TestApp

from timpe.auth import client, keys
from timpe.openapi import SPEC
from timpe.validation import compile_schema

_validators = {}


def _validator(schema):
    key = id(schema)
    if key not in _validators:
        _validators[key] = compile_schema(schema)
    return _validators[key]


def spec_path(registry, path):
    """The route pattern Pyramid dispatches ``path`` to (routes in their order)."""
    for route in registry.getUtility(IRoutesMapper).get_routes():
        if route.match(path) is not None:
            return route.pattern
    return None


def check_response(registry, method, path, status, content_type, body):
    """Raise AssertionError unless the spec documents this response."""
    pattern = spec_path(registry, path)
    # HEAD is answered by the GET view (Pyramid), as HTTP allows.
    operation = SPEC["paths"].get(pattern, {}).get("get" if method == "HEAD" else method.lower())
    if operation is None:  # no such endpoint or method: the error shape, 404/405
        assert status in (404, 405), f"{method} {path}: {status} from an undocumented operation"
        documented = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    else:
        documented = operation["responses"].get(str(status))
        assert documented, f"{method} {pattern}: status {status} is not in the spec"
    media = documented["content"].get(content_type)
    assert media, f"{method} {path} {status}: content type {content_type} is not in the spec"
    if method == "HEAD":  # the GET answer's headers, without its body
        return
    if content_type == "application/json":
        value = simplejson.loads(body, parse_float=Decimal)
    else:
        value = body.decode("utf-8")
    errors = sorted(_validator(media["schema"]).iter_errors(value), key=str)
    assert not errors, f"{method} {path} {status}: {errors[0].message} at {list(errors[0].path)}"


def app_settings(db_path, **more):
    """A node's settings on the SQLite file ``db_path``, with an operator key
    of its own in a file beside it."""
    key_file = Path(f"{db_path}.operator.key")
    keys.ensure_operator_key(key_file)
    return {"sqlite.path": str(db_path), "auth.operator_key_file": str(key_file), **more}


def operator_key(wsgi):
    """The operator key of ``wsgi``, a node made with app_settings."""
    return keys.read_operator_key(wsgi.registry.settings["auth.operator_key_file"])


def sends(key):
    """WebTest's extra_environ that sends ``key`` (None: no key at all)."""
    return {"HTTP_AUTHORIZATION": client.headers(key).get("Authorization", "")}


class SpecTestApp(TestApp):
    """Sends the node's operator key unless told otherwise (``extra_environ``
    or ``headers`` of a request: see ``sends``)."""

    def __init__(self, app, extra_environ=None, **kwargs):
        extra_environ = extra_environ or {}
        if "HTTP_AUTHORIZATION" not in extra_environ:
            extra_environ = {**sends(operator_key(app)), **extra_environ}
        super().__init__(app, extra_environ=extra_environ, **kwargs)

    def do_request(self, req, status=None, expect_errors=None):
        res = super().do_request(req, status=status, expect_errors=expect_errors)
        # The raw PATH_INFO: req.path_info raises on a path that is not UTF-8.
        check_response(self.app.registry, req.method, req.environ["PATH_INFO"], res.status_int,
                       res.content_type, res.body)
        return res
