"""Requests are checked against the OpenAPI document before any view runs.

A view deriver finds each view's operations in ``timpe.openapi.SPEC`` (by its
route's pattern) at configuration time and compiles their JSON Schemas once;
per request it runs a predicate compiled from the same schema (about 2 us
for a transfer body), and jsonschema only for what it refuses, to say why. The result is ``request.validated``:
``{"body": ..., "query": {...}, "header": {...}}``, defaults applied.
A failure is a 400 in the API's shape naming the field and what is wrong.
"""
import functools
import numbers
import re
from decimal import Decimal

from jsonschema import Draft202012Validator, ValidationError, validators
from pyramid.interfaces import IRoutesMapper

from timpe.errors import BadRequest
from timpe.openapi import SPEC
from timpe.web import json_body


@functools.lru_cache(maxsize=None)
def _exact(step):
    return Decimal(str(step))


def _is_multiple(number, step):
    # Exact, on Decimals: in binary floating point 0.07 is no multiple of 0.01.
    try:
        exact = number if isinstance(number, Decimal) else Decimal(str(number))
        return exact % _exact(step) == 0
    except ArithmeticError:  # quotient beyond Decimal's precision: far past any maximum
        return False


def _multiple_of(validator, step, instance, schema):
    if validator.is_type(instance, "number") and not _is_multiple(instance, step):
        yield ValidationError(f"{instance} is not a multiple of {step}")


@functools.lru_cache(maxsize=None)
def _regex(pattern):
    # ECMA 262 (the spec's dialect): a final "$" is the end of the input. In
    # Python it also matches before a final newline: "abc\n" would pass.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 (OpenAPI 3.1's dialect), with exact multipleOf and ECMA "$".
#: Decimal is a "number" to it; bool is not.
Validator = validators.extend(Draft202012Validator,
                              {"multipleOf": _multiple_of, "pattern": _pattern})


def inline(schema, schemas=SPEC["components"]["schemas"]):
    """``schema`` with every local $ref replaced by its target (none recurse)."""
    if isinstance(schema, list):
        return [inline(s, schemas) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return inline({**target, **rest}, schemas)
    return {k: inline(v, schemas) for k, v in schema.items()}


def compile_schema(schema):
    return Validator(inline(schema))


# -- the fast path: a predicate equal to Validator.is_valid --------------------
# jsonschema walks a schema per instance (~17 us for a transfer body). The
# spec's schemas use a few keywords, so each is also compiled once into
# nested closures (~2 us) that say exactly what is_valid would say; only an
# invalid instance goes on to jsonschema, for the message. A schema with any
# other keyword gets no predicate. tests/test_validation_fast_path.py checks
# the equality on generated instances.

_TYPE_CHECKS = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    # Draft 2020-12: bool is no number; 1.0 is an integer. The usual number
    # types first: the ABC check is slow.
    "number": lambda x: (isinstance(x, (int, Decimal, float)) or isinstance(x, numbers.Number))
    and not isinstance(x, bool),
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)
                          or isinstance(x, float) and x.is_integer()),
}
_IS_NUMBER = _TYPE_CHECKS["number"]
_ANNOTATIONS = {"description", "default", "title", "examples"}


def _every(checks):
    """One predicate: all of ``checks`` (no generator: this runs per request)."""
    if len(checks) == 1:
        return checks[0]

    def every(x):
        for check in checks:
            if not check(x):
                return False
        return True
    return every


def _keyword_check(keyword, value, schema):
    """The predicate of one keyword, or None when it has none."""
    if keyword == "type":
        kinds = [value] if isinstance(value, str) else value
        if not all(k in _TYPE_CHECKS for k in kinds):
            return None
        checks = [_TYPE_CHECKS[k] for k in kinds]
        return checks[0] if len(checks) == 1 else (lambda x: any(c(x) for c in checks))
    if keyword == "pattern":
        search = _regex(value).search
        return lambda x: not isinstance(x, str) or search(x) is not None
    if keyword in ("minLength", "maxLength"):
        test = {"minLength": lambda x: len(x) >= value,
                "maxLength": lambda x: len(x) <= value}[keyword]
        return lambda x: not isinstance(x, str) or test(x)
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        # The negation of jsonschema's own test, so that NaN fares the same.
        test = {"minimum": lambda x: not x < value, "maximum": lambda x: not x > value,
                "exclusiveMinimum": lambda x: not x <= value,
                "exclusiveMaximum": lambda x: not x >= value,
                "multipleOf": lambda x: _is_multiple(x, value)}[keyword]
        return lambda x: not _IS_NUMBER(x) or test(x)
    if keyword == "enum":
        if not all(isinstance(e, str) for e in value):
            return None  # other values need jsonschema's own equality
        allowed = frozenset(value)
        return lambda x: isinstance(x, str) and x in allowed
    if keyword == "not":
        inner = fast_check(value)
        return inner and (lambda x: not inner(x))
    if keyword == "required":
        names = tuple(value)
        return lambda x: not isinstance(x, dict) or all(name in x for name in names)
    if keyword == "additionalProperties":
        if value is not False:
            return None
        known = frozenset(schema.get("properties", ()))
        return lambda x: not isinstance(x, dict) or known.issuperset(x)
    if keyword == "properties":
        inner = [(name, fast_check(sub)) for name, sub in value.items()]
        if any(check is None for _, check in inner):
            return None

        def properties(x):
            if isinstance(x, dict):
                for name, check in inner:
                    if name in x and not check(x[name]):
                        return False
            return True
        return properties
    return None


def fast_check(schema):
    """A predicate equal to ``Validator(schema).is_valid`` (``schema``
    inlined), or None when the schema uses a keyword it does not know."""
    if schema is True or schema == {}:
        return lambda x: True
    if not isinstance(schema, dict):
        return None
    checks = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _keyword_check(keyword, value, schema)
        if check is None:
            return None
        checks.append(check)
    return _every(checks)


# -- messages: which field, what is wrong ------------------------------------

_PRIORITY = ("type", "const", "enum", "minLength", "maxLength", "exclusiveMinimum",
             "minimum", "maximum", "exclusiveMaximum", "multipleOf", "pattern", "not")
_TYPES = {"integer": "a whole number", "number": "a number", "string": "a string",
          "object": "a JSON object", "array": "an array", "boolean": "true or false"}


def _rank(error):
    kw = error.validator
    return (list(error.absolute_path), _PRIORITY.index(kw) if kw in _PRIORITY else len(_PRIORITY))


def _what(error):
    kw, value, schema = error.validator, error.validator_value, error.schema
    bound = {"exclusiveMinimum": ">", "minimum": ">=", "exclusiveMaximum": "<"}
    if kw in bound:
        return f"must be {bound[kw]} {value}"
    if kw == "maximum":
        return f"must not exceed {value}"
    if kw == "multipleOf":
        step = Decimal(str(value))
        places = -step.as_tuple().exponent
        if step == Decimal(1).scaleb(-places):
            return f"may have at most {places} decimal places"
        return f"must be a multiple of {value}"
    if kw == "minLength":
        return "must not be empty" if value == 1 else f"must have at least {value} characters"
    if kw == "maxLength":
        return f"may have at most {value} characters"
    if kw == "enum":
        return "must be one of: " + ", ".join(map(str, value))
    if "description" in schema:
        return f"must be {schema['description']}"
    if kw == "type":
        kinds = [value] if isinstance(value, str) else value
        return "must be " + " or ".join(_TYPES.get(k, k) for k in kinds)
    return f"is invalid ({error.message})"


def message(errors):
    """One readable message for a non-empty list of validation errors."""
    for error in errors:
        if error.validator == "required" and not error.absolute_path:
            missing = [f for f in error.validator_value if f not in error.instance]
            return f"missing field(s): {', '.join(missing)}"
    for error in errors:
        if error.validator == "additionalProperties" and not error.absolute_path:
            unknown = sorted(set(error.instance) - set(error.schema.get("properties", ())))
            return f"unknown field(s): {', '.join(unknown)}"
    error = min(errors, key=_rank)
    if not error.absolute_path:
        return f"request body {_what(error)}"
    field = ".".join(map(str, error.absolute_path))
    return f"'{field}' {_what(error)}"


def check(validator, instance, fast=None):
    """``instance``, if valid; else BadRequest saying what is wrong."""
    if fast is not None and fast(instance):
        return instance
    errors = list(validator.iter_errors(instance))
    if errors:
        raise BadRequest(message(errors))
    return instance


# -- operations --------------------------------------------------------------

_INTEGER = re.compile(r"-?[0-9]{1,20}")


def _coerce(raw, schema):
    """A query or header string as its schema's type, or as is (and then refused)."""
    if schema.get("type") == "integer" and _INTEGER.fullmatch(raw):
        return int(raw)
    return raw


def _query(request):
    try:
        return request.GET
    except UnicodeDecodeError:  # webob decodes %ff as UTF-8 and fails
        raise BadRequest("query string is not valid UTF-8 (percent-encoded)") from None


def _once(query, given):
    """Refuse a parameter given more than once: each is one value in the
    spec, and which of several to take would be a guess (webob's is the
    last)."""
    for name in given:
        if len(query.getall(name)) > 1:
            raise BadRequest(f"query parameter {name!r} is given more than once")


def _empty(request):
    """Whether the request came without a body."""
    return request.content_length == 0 or (
        request.content_length is None and "chunked" not in
        request.headers.get("Transfer-Encoding", "").lower())


class Operation:
    """One path + method of the spec, its validators compiled."""

    def __init__(self, path_item, operation):
        params = path_item.get("parameters", []) + operation.get("parameters", [])
        self.params = {}
        for where in ("query", "header"):
            mine = [p for p in params if p["in"] == where]
            if mine:
                schema = {
                    "type": "object",
                    "properties": {p["name"]: p["schema"] for p in mine},
                    "required": [p["name"] for p in mine if p.get("required")],
                }
                defaults = {p["name"]: p["schema"]["default"]
                            for p in mine if "default" in p["schema"]}
                validator = compile_schema(schema)
                self.params[where] = (mine, validator, fast_check(validator.schema),
                                      defaults, bool(schema["required"]))
        body = operation.get("requestBody")
        self.body = body and compile_schema(body["content"]["application/json"]["schema"])
        self.body_required = bool(body and body.get("required"))
        self.body_fast = self.body and fast_check(self.body.schema)

    def __bool__(self):
        return bool(self.params or self.body)

    def __call__(self, request):
        validated = {"body": None}
        if self.body and (self.body_required or not _empty(request)):
            validated["body"] = check(self.body, json_body(request), self.body_fast)
        elif self.body:
            validated["body"] = {}  # an optional body left out
        for where, (params, validator, fast, defaults, required) in self.params.items():
            source = _query(request) if where == "query" else request.headers
            given = {p["name"]: _coerce(source[p["name"]], p["schema"])
                     for p in params if p["name"] in source}
            if where == "query":
                _once(source, given)
            if given or required:  # nothing given, nothing required: nothing to check
                check(validator, given, fast)
            validated[where] = {**defaults, **given}
        return validated


def operations(path):
    """{HTTP method: Operation} for a spec path; {} for a path it lacks."""
    path_item = SPEC["paths"].get(path, {})
    ops = {method.upper(): Operation(path_item, op)
           for method, op in path_item.items() if method != "parameters"}
    return {method: op for method, op in ops.items() if op}


def validate_request(view, info):
    """View deriver: validate against the route's operation, then call the view."""
    route_name = info.options.get("route_name")
    if route_name is None or info.exception_only:
        return view
    route = info.registry.getUtility(IRoutesMapper).get_route(route_name)
    ops = operations(route.pattern)
    if not ops:
        return view

    def validated_view(context, request):
        op = ops.get(request.method)
        if op is not None:
            request.validated = op(request)
        return view(context, request)

    return validated_view


def includeme(config):
    config.add_view_deriver(validate_request)
