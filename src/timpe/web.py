"""HTTP plumbing shared by every feature: JSON in, JSON out, errors as JSON."""
import functools
import logging
from decimal import Decimal

import simplejson
from pyramid.decorator import reify
from pyramid.exceptions import URLDecodeError
from pyramid.httpexceptions import HTTPException
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, notfound_view_config, view_config

from timpe.errors import ApiError, BadRequest, PayloadTooLarge

log = logging.getLogger(__name__)

#: Bodies larger than this are refused with 413 before being parsed.
MAX_BODY = 64 * 1024


def _reject_constant(name):
    raise BadRequest(f"{name} is not a number")


def _unique_keys(pairs):
    """An object's members as a dict, refusing a key given twice (at any
    depth): JSON leaves it to each parser which one counts, so a proxy or a
    client library could read another body than this node does."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise BadRequest(f"request body has the key {key!r} more than once in one object")
            seen.add(key)
    return obj


# Built once: simplejson.loads/dumps with options build a new one per call.
_DECODER = simplejson.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant,
                                  object_pairs_hook=_unique_keys)
_ENCODER = simplejson.JSONEncoder(use_decimal=True)


def respond(request, payload, status=None):
    """``payload`` as the JSON response (simplejson: Decimals stay exact).

    Views return this instead of a dict for a renderer: Pyramid's renderer
    path (system values, a BeforeRender event, a text round trip) cost
    about 9 us more per response, measured.
    """
    response = request.response
    if status is not None:
        response.status = status
    response.content_type = "application/json"
    response.body = _ENCODER.encode(payload).encode("utf-8")
    return response


def success(request, data, status=None):
    return respond(request, {"status": "success", "data": data}, status)


def failure(request, status, msg, **extra):
    return respond(request, {"status": "failed", "msg": msg, **extra}, status)


def json_body(request):
    """The request's body as a JSON object; its fields are the spec's business
    (``timpe.validation``).

    Numbers are decoded as Decimal, so no amount ever passes a binary float.
    """
    length = request.content_length
    if length is None:  # chunked: read no more than one byte past the limit
        raw = request.body_file.read(MAX_BODY + 1)
    elif length <= MAX_BODY:  # read once: nothing needs a seekable copy
        raw = request.body_file.read(length)
    else:  # a declared length over the limit is refused without reading
        raw = None
    if raw is None or len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"request body larger than {MAX_BODY} bytes")
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # [[[[...]]]] within the size limit: the parser's stack
        raise BadRequest("request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


@view_config(route_name="probe_status", request_method="GET")
def probe_status(request):
    return Response("OK", content_type="text/plain")


@exception_view_config(ApiError)
def api_error(exc, request):
    response = failure(request, exc.status, exc.msg, **exc.extra)
    response.headers.update(exc.headers)
    return response


@notfound_view_config()
def not_found(request):
    if request.matched_route is not None:  # the path exists, not for this method
        response = failure(request, 405, f"{request.method} is not allowed on {request.path}")
        # RFC 9110: a 405 says what the resource does allow.
        response.headers["Allow"] = ", ".join(allowed_methods(request.registry,
                                                              request.matched_route.name))
        return response
    return failure(request, 404, f"no such endpoint: {request.method} {request.path}")


def allowed_methods(registry, route_name):
    """The methods a route has views for, sorted; HEAD with GET, which
    Pyramid answers with the GET view. Read from the configuration once."""
    table = getattr(registry, "timpe_allowed_methods", None)
    if table is None:
        table = {}
        for item in registry.introspector.get_category("views"):
            view = item["introspectable"]
            methods = view["request_methods"]
            if view["route_name"] is not None and methods:
                table.setdefault(view["route_name"], set()).update(
                    [methods] if isinstance(methods, str) else methods)
        for methods in table.values():
            if "GET" in methods:
                methods.add("HEAD")
        registry.timpe_allowed_methods = table
    return sorted(table.get(route_name, ()))


@exception_view_config(HTTPException)
def http_error(exc, request):
    # Pyramid's own answers (405, 400 ...) in the API's shape, not HTML.
    return failure(request, exc.status_int, exc.explanation or exc.title)


@exception_view_config(URLDecodeError)
def bad_url(exc, request):
    # /users/%ff: the router cannot decode the path, so no route matched yet.
    return failure(request, 400, "the path is not valid UTF-8 (percent-encoded)")


@exception_view_config(Exception)
def internal_error(exc, request):
    # The raw PATH_INFO: request.path would re-raise on a path that cannot decode.
    log.exception("unhandled error on %s %r", request.method, request.environ.get("PATH_INFO"))
    return failure(request, 500, "internal error")


def includeme(config):
    config.add_route("probe_status", "/probe_status")
    config.scan("timpe.web")
    # The app's own request class: features give it their attributes with
    # config.add_request_attribute (request.store, request.users ...).
    request_class = type("Request", (Request,), {"__module__": __name__})
    config.set_request_factory(request_class)
    config.add_directive("add_request_attribute",
                         functools.partial(_add_request_attribute, request_class))


def _add_request_attribute(request_class, config, factory, name):
    """Give every request the attribute ``name``, ``factory(request)``, made
    on first use and kept for the request, like Pyramid's
    ``add_request_method(factory, name, reify=True)``. It is set on the
    app's request class once, at configuration: Pyramid's own makes a new
    class for every request, which cost about 14 us per request, measured.
    """
    def attribute(request):
        return factory(request)
    attribute.__name__ = name
    setattr(request_class, name, reify(attribute))
