"""Request bodies mean one thing: a key given twice in one object is refused."""
import pytest

from tests.conftest import snapshot


@pytest.mark.parametrize("path, raw", [
    ("/users", b'{"nickname": "ann", "nickname": "bob"}'),
    ("/users", b'{"nickname": "ann", "balance": 1, "balance": 1}'),  # even the same value
    ("/users", b'{"nickname": "ann", "x": [{"k": 1, "k": 2}]}'),  # at any depth
    ("/transactions", b'{"sender": "A", "recipient": "B", "amount": 1, "amount": 9}'),
    ("/transactions/immediately", b'{"sender": "A", "recipient": "B", "recipient": "A", '
                                  b'"amount": 1}'),
])
def test_a_key_given_twice_is_400_and_changes_nothing(app, store, register, path, raw):
    a, b = register("payer", 10), register("payee")
    raw = raw.replace(b'"A"', f'"{a}"'.encode()).replace(b'"B"', f'"{b}"'.encode())
    before = snapshot(store)
    err = app.post(path, raw, content_type="application/json", status=400).json
    assert err["status"] == "failed" and "more than once" in err["msg"]
    assert snapshot(store) == before


def test_the_same_key_in_different_objects_is_no_duplicate():
    from timpe.web import _DECODER
    assert _DECODER.decode('{"a": {"k": 1}, "b": [{"k": 2}, {"k": 3}]}') == \
        {"a": {"k": 1}, "b": [{"k": 2}, {"k": 3}]}
