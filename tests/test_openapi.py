"""The OpenAPI document: served, valid, and describing exactly what is routed."""
import pytest
from openapi_spec_validator import validate
from pyramid.interfaces import IRoutesMapper

from tests.conftest import snapshot
from tests.spec import check_response
from timpe.openapi import SPEC

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_served_document_is_valid_openapi(app):
    served = app.get("/openapi.json").json
    assert served["openapi"].startswith("3.1")
    validate(served)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_route_is_in_the_spec_and_vice_versa(app):
    registry = app.app.registry
    patterns = {r.name: r.pattern for r in registry.getUtility(IRoutesMapper).get_routes()}
    routed = set()
    for item in registry.introspector.get_category("views"):
        view = item["introspectable"]
        if view["route_name"] is None:  # exception and not-found views
            continue
        # A view without a method would answer every method the spec leaves out.
        assert view["request_methods"], f"route {view['route_name']} has a view for any method"
        methods = view["request_methods"]
        for method in [methods] if isinstance(methods, str) else methods:
            routed.add((patterns[view["route_name"]], method.lower()))
    specified = {(path, method) for path, item in SPEC["paths"].items()
                 for method in item if method in METHODS}
    assert routed == specified


def test_response_check_can_fail(app):
    """The check that runs on every API test's responses does catch a mismatch."""
    registry = app.app.registry
    check_response(registry, "GET", "/users", 200, "application/json",
                   b'{"status": "success", "data": []}')
    bad = [
        (200, "application/json", b'{"status": "success", "data": [{"id": "x"}]}'),
        (200, "application/json", b'{"status": "failed", "msg": "x"}'),
        (201, "application/json", b'{"status": "success", "data": []}'),
        (200, "text/html", b"<p>ok</p>"),
        (400, "application/json", b'{"status": "failed"}'),
    ]
    for status, content_type, body in bad:
        with pytest.raises(AssertionError):
            check_response(registry, "GET", "/users", status, content_type, body)


@pytest.mark.parametrize("headers, body, msg", [
    ({"Idempotency-Key": ""}, None, "Idempotency-Key"),
    ({"Idempotency-Key": "k" * 201}, None, "Idempotency-Key"),
    ({"Idempotency-Key": "tab\there"}, None, "Idempotency-Key"),
    ({}, {"id": ""}, "'id'"),
    ({}, {"id": "x" * 65}, "'id'"),
    ({}, {"id": "no spaces"}, "'id'"),
    ({}, {"id": 7}, "'id'"),
    ({}, {"id": "abc\n"}, "'id'"),  # Python's "$" matches before a final newline
    ({}, {"id": "process"}, "'id'"),  # GET /transactions/process could never show it
    ({}, {"id": "immediately"}, "'id'"),
])
@pytest.mark.parametrize("path", ["/transactions", "/transactions/immediately"])
def test_client_ids_and_keys_follow_the_spec(app, store, register, path, headers, body, msg):
    a, b = register("ann", 10), register("bob")
    before = snapshot(store)
    transfer = {"sender": a, "recipient": b, "amount": 1, **(body or {})}
    err = app.post_json(path, transfer, headers=headers, status=400).json
    assert err["status"] == "failed" and msg in err["msg"]
    assert snapshot(store) == before


@pytest.mark.parametrize("query, msg", [
    ("limit=0", ">= 1"), ("limit=100001", "exceed"), ("limit=1.5", "whole number"),
    ("limit=" + "9" * 30, "whole number"), ("state=done", "one of"),
    ("limit=x&limit=1", "more than once"), ("limit=1&limit=2", "more than once"),
    ("state=initial&state=finished", "more than once"),
])
def test_query_parameters_follow_the_spec(app, query, msg):
    err = app.get(f"/transactions?{query}", status=400).json
    assert err["status"] == "failed" and msg in err["msg"]


def test_process_limit_follows_the_spec(app):
    for path in ("/process", "/transactions/process"):
        assert "'limit'" in app.post(f"{path}?limit=0", status=400).json["msg"]
        assert "more than once" in app.post(f"{path}?limit=x&limit=1", status=400).json["msg"]


def test_every_undocumented_method_is_405_with_allow(app):
    """TRACE, OPTIONS and the rest on every path: 405 in the error shape,
    with the Allow header RFC 9110 asks for, naming what the spec offers."""
    for path, item in SPEC["paths"].items():
        documented = {m.upper() for m in item if m in METHODS}
        allow = documented | ({"HEAD"} if "GET" in documented else set())
        for method in sorted({m.upper() for m in METHODS} - allow):
            res = app.request(path.replace("{id}", "x"), method=method, expect_errors=True)
            assert res.status_int == 405, (method, path)
            if method != "HEAD":  # a HEAD answer has no body
                assert res.json["status"] == "failed" and method in res.json["msg"]
            assert res.headers["Allow"] == ", ".join(sorted(allow)), (method, path)
