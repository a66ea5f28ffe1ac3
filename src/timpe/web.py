"""HTTP plumbing shared by every feature: JSON in, JSON out, errors as JSON."""
import logging
from decimal import Decimal

import simplejson
from pyramid.exceptions import URLDecodeError
from pyramid.httpexceptions import HTTPException
from pyramid.renderers import JSON
from pyramid.response import Response
from pyramid.view import exception_view_config, notfound_view_config, view_config

from timpe.errors import ApiError, BadRequest, PayloadTooLarge

log = logging.getLogger(__name__)

#: Bodies larger than this are refused with 413 before being parsed.
MAX_BODY = 64 * 1024


def success(data):
    return {"status": "success", "data": data}


def failure(request, status, msg, **extra):
    request.response.status = status
    return {"status": "failed", "msg": msg, **extra}


def _reject_constant(name):
    raise BadRequest(f"{name} is not a number")


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
        body = simplejson.loads(raw.decode("utf-8"), parse_float=Decimal,
                                parse_constant=_reject_constant)
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


@exception_view_config(ApiError, renderer="json")
def api_error(exc, request):
    return failure(request, exc.status, exc.msg, **exc.extra)


@notfound_view_config(renderer="json")
def not_found(request):
    if request.matched_route is not None:  # the path exists, not for this method
        return failure(request, 405, f"{request.method} is not allowed on {request.path}")
    return failure(request, 404, f"no such endpoint: {request.method} {request.path}")


@exception_view_config(HTTPException, renderer="json")
def http_error(exc, request):
    # Pyramid's own answers (405, 400 ...) in the API's shape, not HTML.
    return failure(request, exc.status_int, exc.explanation or exc.title)


@exception_view_config(URLDecodeError, renderer="json")
def bad_url(exc, request):
    # /users/%ff: the router cannot decode the path, so no route matched yet.
    return failure(request, 400, "the path is not valid UTF-8 (percent-encoded)")


@exception_view_config(Exception, renderer="json")
def internal_error(exc, request):
    # The raw PATH_INFO: request.path would re-raise on a path that cannot decode.
    log.exception("unhandled error on %s %r", request.method, request.environ.get("PATH_INFO"))
    return failure(request, 500, "internal error")


def includeme(config):
    renderer = JSON(serializer=simplejson.dumps, use_decimal=True)
    config.add_renderer("json", renderer)
    config.add_renderer(None, renderer)  # the default for every view
    config.add_route("probe_status", "/probe_status")
    config.scan("timpe.web")
