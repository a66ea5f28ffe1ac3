"""docs/api.rst states the limits the code enforces (and the spec is built from)."""
from pathlib import Path

from timpe.money import MAX_AMOUNT, SCALE
from timpe.openapi import SPEC
from timpe.transactions.services import DEFAULT_LIMIT, MAX_LIMIT
from timpe.users.nicknames import MAX_NICKNAME
from timpe.web import MAX_BODY

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "api.rst").read_text()


def test_limits_on_the_page_are_the_code_s():
    for stated in (f"**{MAX_BODY} bytes**", f"**1 to {MAX_NICKNAME} characters**",
                   f"**at most {SCALE} decimal places**", f"**at most {MAX_AMOUNT}**",
                   f"**1 to {MAX_LIMIT}**", f"defaults to **{DEFAULT_LIMIT}**"):
        assert stated in PAGE, stated


def test_every_path_is_on_the_page():
    for path in SPEC["paths"]:
        assert f"``{path}``" in PAGE, path
