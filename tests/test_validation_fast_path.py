"""Requests are accepted by a predicate compiled from the spec's schemas;
jsonschema runs only on what it refuses. The predicate must say exactly what
jsonschema says, on every instance: generated here, valid and invalid."""
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from timpe.openapi import SPEC
from timpe.validation import compile_schema, fast_check, operations


def request_schemas():
    found = []
    for path in SPEC["paths"]:
        for method, op in operations(path).items():
            if op.body:
                found.append((f"{method} {path} body", op.body))
            for where, (_, validator, *_) in op.params.items():
                found.append((f"{method} {path} {where}", validator))
    return found


SCHEMAS = request_schemas()
NAMES = sorted({name for _, v in SCHEMAS for name in v.schema.get("properties", {})})

edge_numbers = st.sampled_from([
    0, 1, -1, 2**70, Decimal("0.01"), Decimal("0.001"), Decimal("-0.01"), Decimal("0"),
    Decimal("1E+9"), Decimal("1000000000.00"), Decimal("1000000000.01"), Decimal("1E+40"),
    Decimal("1E-40"), Decimal("12345678901234567890123456789.01"), 0.07, 1.0, 1e9,
    float("inf"), float("-inf"), float("nan"), 100000, 100001,
])
edge_strings = st.sampled_from([
    "", " ", "a", "immediately", "process", "initial", "finished", "abc\n", "x" * 64,
    "x" * 65, "é", "\x00", "\ud800", "key with spaces", " lead", "~" * 200, "~" * 201,
    "a-b_C9",
])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), edge_numbers, edge_strings, st.text(max_size=80),
    st.decimals(allow_nan=False, allow_infinity=False), st.floats(),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=5)
# Objects with the spec's field names, their values biased to the edges.
objects = st.dictionaries(st.sampled_from(NAMES + ["junk"]),
                          st.one_of(edge_strings, edge_numbers, values), max_size=len(NAMES) + 1)
instances = st.one_of(objects, values)


def test_every_request_schema_has_a_fast_path():
    assert SCHEMAS
    for name, validator in SCHEMAS:
        assert fast_check(validator.schema) is not None, name


@pytest.mark.parametrize("name,validator", SCHEMAS, ids=[n for n, _ in SCHEMAS])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances)
@example(instance={"sender": "a", "recipient": "b", "amount": Decimal("0.01")})
@example(instance={"nickname": "bob", "balance": Decimal("10.5")})
@example(instance={"limit": 100, "state": "finished"})
@example(instance={"nickname": "x" * 64})
@example(instance={"nickname": "x" * 65})
@example(instance={"limit": 100000})
@example(instance={"limit": 100001})
@example(instance={"Idempotency-Key": "~" * 200})
@example(instance={"Idempotency-Key": "~" * 201})
def test_the_fast_path_says_what_jsonschema_says(name, validator, instance):
    assert fast_check(validator.schema)(instance) == validator.is_valid(instance)


@pytest.mark.parametrize("schema", [
    {"type": "object", "patternProperties": {"^x": {}}},
    {"anyOf": [{"type": "string"}]},
    {"enum": [1, "a"]},
    {"additionalProperties": {"type": "string"}},
])
def test_a_keyword_it_does_not_know_means_no_fast_path(schema):
    assert fast_check(compile_schema(schema).schema) is None
