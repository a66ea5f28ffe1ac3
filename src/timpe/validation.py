"""Requests are checked against the OpenAPI document before any view runs.

A view deriver finds each view's operations in ``timpe.openapi.SPEC`` (by its
route's pattern) at configuration time and compiles their JSON Schemas once;
per request it only runs the compiled validators (about 20 us for a transfer
body, measured: docs/api.rst). The result is ``request.validated``:
``{"body": ..., "query": {...}, "header": {...}}``, defaults applied.
A failure is a 400 in the API's shape naming the field and what is wrong.
"""
import functools
import re
from decimal import Decimal

from jsonschema import Draft202012Validator, ValidationError, validators
from pyramid.interfaces import IRoutesMapper

from timpe.errors import BadRequest
from timpe.openapi import SPEC
from timpe.web import json_body


def _multiple_of(validator, step, instance, schema):
    # Exact, on Decimals: in binary floating point 0.07 is no multiple of 0.01.
    if not validator.is_type(instance, "number"):
        return
    try:
        exact = Decimal(str(instance)) % Decimal(str(step)) == 0
    except ArithmeticError:  # quotient beyond Decimal's precision: far past any maximum
        exact = False
    if not exact:
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


def check(validator, instance):
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
                self.params[where] = (mine, compile_schema(schema), defaults,
                                      bool(schema["required"]))
        body = operation.get("requestBody")
        self.body = body and compile_schema(body["content"]["application/json"]["schema"])

    def __bool__(self):
        return bool(self.params or self.body)

    def __call__(self, request):
        validated = {"body": None}
        if self.body:
            validated["body"] = check(self.body, json_body(request))
        for where, (params, validator, defaults, required) in self.params.items():
            source = _query(request) if where == "query" else request.headers
            given = {p["name"]: _coerce(source[p["name"]], p["schema"])
                     for p in params if p["name"] in source}
            if given or required:  # nothing given, nothing required: nothing to check
                check(validator, given)
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
