"""Nicknames are RFC 8265 usernames (UsernameCasePreserved): look-alikes are one."""
import hashlib
import unicodedata

import pytest

from tests.conftest import snapshot
from timpe.store.schema import USERS
from timpe.users.nicknames import prepare


def sha1(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("first, second", [
    ("José", unicodedata.normalize("NFD", "José")),    # composed, then decomposed
    (unicodedata.normalize("NFD", "Ärger"), "Ärger"),  # the other way round
    ("bob", "ｂｏｂ"),                                   # fullwidth
    ("ﾊﾟﾝ", "パン"),                                    # halfwidth katakana
])
def test_a_look_alike_of_a_taken_nickname_is_409(app, store, first, second):
    created = app.post_json("/users", {"nickname": first, "balance": 1}, status=201).json["data"]
    prepared = unicodedata.normalize("NFKC", first)
    assert created["nickname"] == prepared and created["id"] == sha1(prepared)
    before = snapshot(store)
    err = app.post_json("/users", {"nickname": second}, status=409).json
    assert err["status"] == "failed" and "already registered" in err["msg"]
    assert snapshot(store) == before


@pytest.mark.parametrize("nickname, msg", [
    (" bob ", "begin or end with a space"),
    ("bob ", "begin or end with a space"),
    ("bob\u200b", "invisible characters (zero-width, bidi controls and other ignorables) "
                  "(U+200B at position 3)"),
    ("\u202ebob", "invisible characters"),       # right-to-left override
    ("b\u2066ob", "invisible characters"),       # left-to-right isolate
    ("\u00adbob", "invisible characters"),       # soft hyphen
    ("bob  smith", "two spaces in a row"),
    ("bob\u00a0smith", "compatibility forms"),   # no-break space
    ("bob\u3000smith", "compatibility forms"),   # ideographic space
    ("tab\there", "control characters (U+0009 at position 3)"),
    ("Zoë 🚀", "symbols or emoji (U+1F680 at position 4)"),
    ("\ufb01sh", "compatibility forms"),         # the "fi" ligature
    ("\U0001d400bc", "compatibility forms"),     # mathematical bold A
    ("\ue000", "private-use"),
    ("\u0378x", "unassigned"),
    ("\u05d0a", "right-to-left and left-to-right"),  # Hebrew and Latin in one part
    ("", "must not be empty"),
    ("x" * 65, "at most 64 characters"),
])
def test_each_refusal_is_a_clear_400_and_writes_nothing(app, store, nickname, msg):
    before = snapshot(store)
    err = app.post_json("/users", {"nickname": nickname}, status=400).json
    assert err["status"] == "failed" and msg in err["msg"], err["msg"]
    assert snapshot(store) == before


def test_ascii_nicknames_are_unchanged():
    """Every printable ASCII character, and single spaces between parts:
    prepared to themselves, so their ids stay the seed's."""
    for code in range(0x21, 0x7F):
        for nickname in (chr(code), f"a{chr(code)}b", f"x {chr(code)} y"):
            assert prepare(nickname) == nickname


def test_unicode_that_is_already_prepared_keeps_its_form(app):
    for nickname in ("Zoë Ångström", "שלום עולם", "日本語", "Ωμέγα", "ä ｂ"):
        body = app.post_json("/users", {"nickname": nickname}, status=201).json["data"]
        prepared = unicodedata.normalize("NFKC", nickname)
        assert (body["nickname"], body["id"]) == (prepared, sha1(prepared))


def test_a_user_registered_before_keeps_id_and_nickname(app, store, register):
    """Rows registered under the old rule (the raw nickname's SHA-1) are
    served and paid as they are."""
    legacy = unicodedata.normalize("NFD", "José ") + "🚀"
    store.insert(USERS.name, {"id": sha1(legacy), "nickname": legacy, "initial_balance": 500,
                              "head_seq": 0, "timestamp": 1})
    assert app.get(f"/users/{sha1(legacy)}").json["data"] == {
        "id": sha1(legacy), "nickname": legacy, "balance": 5, "held": 0}
    bob = register("bob")
    app.post_json("/transactions/immediately",
                  {"sender": sha1(legacy), "recipient": bob, "amount": 2}, status=201)
    assert app.get(f"/users/{sha1(legacy)}").json["data"]["balance"] == 3


def test_the_setup_reserves_the_prepared_form_of_a_nickname_registered_before(app, store):
    from timpe.users import legacy
    nfd, nfc = unicodedata.normalize("NFD", "José"), "José"
    for nickname in (nfd, "plain", unicodedata.normalize("NFD", "Zoë 🚀")):
        store.insert(USERS.name, {"id": sha1(nickname), "nickname": nickname,
                                  "initial_balance": 0, "head_seq": 0, "timestamp": 1})
    # Without the reservation the look-alike would be a second user.
    assert legacy.setup(store) == ([], 1)  # only José: plain is prepared, Zoë 🚀 refused
    assert store.get("nicknames", (sha1(nfc),))["user_id"] == sha1(nfd)
    assert legacy.reserve(store) == 0  # re-running writes nothing new
    before = snapshot(store)
    for look_alike in (nfc, nfd):
        err = app.post_json("/users", {"nickname": look_alike}, status=409).json
        assert "already registered" in err["msg"]
    assert snapshot(store) == before
    assert app.post_json("/users", {"nickname": "Josи"}, status=201)
