"""Nicknames are usernames per RFC 8265 (PRECIS), profile
UsernameCasePreserved, so that two nicknames that look alike are one.

A nickname is prepared before anything else sees it: fullwidth and
halfwidth forms mapped to their usual width (``ｂｏｂ`` is ``bob``), then
Unicode NFC (``José`` typed as ``e`` + combining acute is the same ``José``).
What is left must be letters, digits and ASCII punctuation: no controls, no
invisible characters (zero-width, bidi overrides), no symbols or emoji, no
compatibility forms, and no mix of right-to-left and left-to-right text
that may display misleadingly (RFC 5893's bidi rule). Spaces are allowed
between parts, one at a time, never first or last: RFC 8265 (3.5) lets an
application take a username as userparts separated by spaces, each part
enforced by the profile on its own.

The prepared nickname is stored and shown, and its SHA-1 is the user's id,
so a second registration of anything that prepares to a taken nickname is
the same insert-if-absent on the same id: a 409. An ASCII nickname that was
valid before prepares to itself: its id is unchanged.
"""
import precis_i18n

from timpe.errors import BadRequest

MAX_NICKNAME = 64
NICKNAME_RULE = (f"1-{MAX_NICKNAME} characters, a username per RFC 8265 (PRECIS "
                 "UsernameCasePreserved): letters, digits and ASCII punctuation, parts "
                 "separated by single spaces")

_PROFILE = precis_i18n.get_profile("UsernameCasePreserved")

# What the profile's reasons mean, for the client.
_REFUSALS = {
    "controls": "may not contain control characters",
    "precis_ignorable_properties": "may not contain invisible characters "
                                   "(zero-width, bidi controls and other ignorables)",
    "spaces": "may contain no other space than U+0020",
    "symbols": "may not contain symbols or emoji",
    "punctuation": "may not contain punctuation other than ASCII's",
    "has_compat": "may not contain compatibility forms (ligatures, styled, circled "
                  "or super-/subscript letters, other spaces)",
    "unassigned": "may not contain unassigned code points",
    "other": "may not contain private-use, surrogate or other disallowed code points",
    "old_hangul_jamo": "may not contain old Hangul jamo",
    "bidi_rule": "mixes right-to-left and left-to-right text in a way that may "
                 "display misleadingly (RFC 5893)",
    "zero_width_joiner": "may contain a zero-width joiner only after a virama",
    "zero_width_nonjoiner": "may contain a zero-width non-joiner only where a script joins",
}


def prepare(nickname):
    """``nickname`` as stored: prepared per RFC 8265, or BadRequest saying
    what is wrong."""
    if not isinstance(nickname, str) or not nickname:
        raise BadRequest(f"'nickname' must be {NICKNAME_RULE}")
    if len(nickname) > MAX_NICKNAME:
        raise BadRequest(f"'nickname' may have at most {MAX_NICKNAME} characters")
    if nickname != nickname.strip(" "):
        raise BadRequest("'nickname' may not begin or end with a space")
    parts, offset = [], 0
    for part in nickname.split(" "):
        if not part:
            raise BadRequest("'nickname' may not have two spaces in a row")
        parts.append(_enforce(part, offset, nickname))
        offset += len(part) + 1
    prepared = " ".join(parts)
    if len(prepared) > MAX_NICKNAME:  # NFC lengthens a few characters
        raise BadRequest(f"'nickname' may have at most {MAX_NICKNAME} characters once prepared")
    return prepared


def _enforce(part, offset, nickname):
    try:
        return _PROFILE.enforce(part)
    except UnicodeEncodeError as exc:
        reason = exc.reason.split("/", 1)[-1]
        what = _REFUSALS.get(reason, f"is not a valid username (RFC 8265: {reason})")
        if reason != "bidi_rule" and 0 <= exc.start < len(part):  # that one is the part's
            what += f" (U+{ord(part[exc.start]):04X} at position {offset + exc.start})"
        raise BadRequest(f"'nickname' {what}") from None
